/**
 * Test runner front end: Node 20's `--test` does not expand globs, so this finds the test
 * files and hands them to node:test (through tsx). Usage:
 *
 *   node --import tsx scripts/test.ts            every test (unit, contract, service, platform)
 *   node --import tsx scripts/test.ts --unit     unit tests only (no external processes)
 *   node --import tsx scripts/test.ts libs/bus   only tests under the given folders (or these test files)
 */
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { spawnSync } from 'node:child_process'

const root = join(import.meta.dirname, '..')
const args = process.argv.slice(2)
if (args.includes('--help')) {
  console.log('usage: npm test [-- --unit] [folder ...]')
  process.exit(0)
}
const unitOnly = args.includes('--unit')
const folders = args.filter((a) => !a.startsWith('--'))
const roots = folders.length > 0 ? folders : ['libs', 'services', 'test']

function findTests(dir: string): string[] {
  if (dir.endsWith('.test.ts')) return statSync(dir, { throwIfNoEntry: false })?.isFile() === true ? [dir] : []
  let entries: string[]
  try {
    entries = readdirSync(dir, { recursive: true, encoding: 'utf8' })
  } catch {
    return []
  }
  return entries
    .filter((p) => p.endsWith('.test.ts') && !p.split('/').includes('node_modules'))
    .map((p) => join(dir, p))
    .filter((p) => statSync(p).isFile())
}

const files = roots
  .flatMap((r) => findTests(join(root, r)))
  .map((f) => relative(root, f))
  // The fast set: library tests and service unit tests, without the interop tests (python peers).
  .filter((f) => !unitOnly || (/^libs\/[^/]+\/test\/|^services\/[^/]+\/test\/unit\//.test(f) && !/interop/.test(f)))
  .sort()

if (files.length === 0) {
  console.error(`no test files found under ${roots.join(', ')}`)
  process.exit(1)
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  cwd: root,
  stdio: 'inherit',
})
process.exit(result.status ?? 1)
