/**
 * Runs benchmarks, one process each, one after the other: `npm run bench` runs every
 * `bench/<name>.ts`, `npm run bench -- kms acp` the named ones. Options after a name go to that
 * benchmark: `npm run bench -- kms --seconds 2`. Exits non-zero if any benchmark failed.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const available = readdirSync(here)
  .filter((f) => /^[a-z0-9][a-z0-9-]*\.ts$/.test(f) && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort()

/** `[name, options…]` groups from the command line; every benchmark when none is named. */
function plan(argv: readonly string[]): Array<{ name: string; args: string[] }> {
  const out: Array<{ name: string; args: string[] }> = []
  for (const a of argv) {
    if (available.includes(a)) out.push({ name: a, args: [] })
    else if (out.length > 0 && a.startsWith('-')) out.at(-1)?.args.push(a)
    else if (out.length > 0 && out.at(-1)?.args.at(-1)?.startsWith('--') === true) out.at(-1)?.args.push(a)
    else throw new Error(`unknown benchmark "${a}"; available: ${available.join(', ')}`)
  }
  return out.length > 0 ? out : available.map((name) => ({ name, args: [] }))
}

let failed = 0
for (const { name, args } of plan(process.argv.slice(2))) {
  console.log(`\n=== bench/${name}.ts ${args.join(' ')}`.trimEnd())
  const r = spawnSync(process.execPath, ['--import', 'tsx', `${here}${name}.ts`, ...args], { stdio: 'inherit' })
  if (r.status !== 0) {
    failed++
    console.error(`bench/${name}.ts failed (${r.signal ?? `exit ${r.status}`})`)
  }
}
process.exitCode = failed === 0 ? 0 : 1
