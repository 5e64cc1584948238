/**
 * Writes each service's configuration table into its README, between
 * `<!-- config:start -->` and `<!-- config:end -->`, from the service's zod schema.
 *
 *   node --import tsx scripts/docs-config.ts          rewrite the READMEs
 *   node --import tsx scripts/docs-config.ts --check  exit 1 if a README is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { z } from 'zod'
import { describeConfig } from '@m2msec/runtime'
import { kmsConfigSchema } from '../services/kms/src/config.ts'
import { authnConfigSchema } from '../services/authn/src/config.ts'
import { authzConfigSchema } from '../services/authz/src/config.ts'
import { bootstrapConfigSchema } from '../services/bootstrap/src/config.ts'
import { groupsConfigSchema } from '../services/groups/src/config.ts'

const root = join(import.meta.dirname, '..')
const SERVICES: Array<{ readme: string; schema: z.ZodType; envPrefix: string }> = [
  { readme: 'services/kms/README.md', schema: kmsConfigSchema, envPrefix: 'M2MSEC_KMS_' },
  { readme: 'services/authn/README.md', schema: authnConfigSchema, envPrefix: 'M2MSEC_AUTHN_' },
  { readme: 'services/authz/README.md', schema: authzConfigSchema, envPrefix: 'M2MSEC_AUTHZ_' },
  { readme: 'services/bootstrap/README.md', schema: bootstrapConfigSchema, envPrefix: 'M2MSEC_BOOTSTRAP_' },
  { readme: 'services/groups/README.md', schema: groupsConfigSchema, envPrefix: 'M2MSEC_GROUPS_' },
]

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ')

export function configTable(schema: z.ZodType, envPrefix: string): string {
  const rows = describeConfig(schema, envPrefix).map(
    (f) =>
      `| \`${f.path}\` | \`${f.env}\` | ${cell(f.type)} | ${f.default === undefined ? (f.required ? 'required' : '') : `\`${cell(f.default)}\``} | ${cell(f.description ?? '')}${f.secret ? ' (secret)' : ''} |`,
  )
  return ['| setting | environment variable | type | default | description |', '|---|---|---|---|---|', ...rows].join(
    '\n',
  )
}

let stale = false
for (const s of SERVICES) {
  const path = join(root, s.readme)
  const text = readFileSync(path, 'utf8')
  const start = text.indexOf('<!-- config:start -->')
  const end = text.indexOf('<!-- config:end -->')
  if (start < 0 || end < start) throw new Error(`${s.readme} has no config:start/config:end markers`)
  const next = `${text.slice(0, start)}<!-- config:start -->\n${configTable(s.schema, s.envPrefix)}\n${text.slice(end)}`
  if (next === text) continue
  if (process.argv.includes('--check')) {
    console.error(`${s.readme}: configuration table is out of date; run npm run docs:config`)
    stale = true
  } else {
    writeFileSync(path, next)
    console.log(`updated ${s.readme}`)
  }
}
process.exit(stale ? 1 : 0)
