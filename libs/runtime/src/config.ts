/**
 * Schema-validated configuration: defaults < YAML/JSON file < environment variables.
 *
 * Environment mapping: `<envPrefix><SECTION>__<FIELD>`. Each path segment is the schema key in
 * UPPER_SNAKE_CASE (`maxMessageBytes` -> `MAX_MESSAGE_BYTES`) and segments are joined with a
 * double underscore. With `envPrefix: 'M2MSEC_KMS_'`:
 *
 * | schema path              | environment variable                 |
 * |--------------------------|--------------------------------------|
 * | `grpc.port`              | `M2MSEC_KMS_GRPC__PORT=7001`         |
 * | `grpc.tls.certFile`      | `M2MSEC_KMS_GRPC__TLS__CERT_FILE=…`  |
 * | `log.level`              | `M2MSEC_KMS_LOG__LEVEL=debug`        |
 * | (config file)            | `M2MSEC_KMS_CONFIG_FILE=/etc/kms.yaml` or `--config /etc/kms.yaml` |
 *
 * Environment values are strings; the loader converts them by the schema's leaf type: numbers,
 * booleans (`true/false/1/0/yes/no/on/off`), arrays (JSON `[...]` or comma-separated) and
 * objects (JSON). An environment variable with the prefix that names no setting is an error,
 * as is an unknown key in the file: typos fail at start instead of being ignored.
 *
 * Nested sections with defaults should use `.prefault({})` (zod 4's `.default({})` returns the
 * default object as is, without applying the defaults of its fields).
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { M2msecError } from '@m2msec/errors'

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Prefix of every environment variable, e.g. `M2MSEC_KMS_`. */
  readonly envPrefix: string
  /** Command-line arguments (default `process.argv.slice(2)`); only `--config` is read here. */
  readonly argv?: readonly string[]
  /** Environment (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Config file path; overrides `--config` and `<PREFIX>CONFIG_FILE`. */
  readonly file?: string
}

/** One setting of a schema, as listed by `--help` and config documentation. */
export interface ConfigField {
  /** Dotted schema path, e.g. `grpc.port`. */
  readonly path: string
  /** Environment variable that sets it. */
  readonly env: string
  /** Human-readable type, e.g. `integer`, `boolean`, `"debug" | "info"`. */
  readonly type: string
  /** JSON of the default value, or undefined when there is none. */
  readonly default: string | undefined
  readonly required: boolean
  readonly secret: boolean
  readonly description: string | undefined
}

const secretRegistry = z.registry<{ secret: true }>()

/**
 * Tags a schema as secret: `--print-config` and {@link redactConfig} replace its value.
 * The tag survives `.describe()`, `.optional()` and `.default()`.
 *
 * @example
 * ```ts
 * const schema = z.object({ adminToken: secret(z.string()).describe('static admin token') })
 * ```
 */
export function secret<S extends z.ZodType>(schema: S): S {
  secretRegistry.add(schema, { secret: true })
  return schema
}

/** Placeholder written instead of a secret value. */
export const REDACTED = '[REDACTED]'

/** Reserved variable suffix naming the config file (`<PREFIX>CONFIG_FILE`). */
const CONFIG_FILE_ENV = 'CONFIG_FILE'

interface LooseDef {
  readonly type: string
  readonly innerType?: z.ZodType
  readonly in?: z.ZodType
  readonly shape?: Readonly<Record<string, z.ZodType>>
  readonly element?: z.ZodType
  readonly defaultValue?: unknown
  readonly entries?: Readonly<Record<string, string | number>>
  readonly values?: readonly unknown[]
  readonly options?: readonly z.ZodType[]
  readonly catchall?: z.ZodType
  readonly checks?: readonly { _zod: { def: { check?: string; format?: string } } }[]
  readonly format?: string
}

function defOf(schema: z.ZodType): LooseDef {
  return schema._zod.def as unknown as LooseDef
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional'])

/** The wrappers from outside in, ending with the first non-wrapper schema. */
function unwrapChain(schema: z.ZodType): z.ZodType[] {
  const chain: z.ZodType[] = [schema]
  let current = schema
  for (;;) {
    const def = defOf(current)
    const next = WRAPPERS.has(def.type) ? def.innerType : def.type === 'pipe' ? def.in : undefined
    if (next === undefined) return chain
    chain.push(next)
    current = next
  }
}

function baseOf(schema: z.ZodType): z.ZodType {
  const chain = unwrapChain(schema)
  return chain[chain.length - 1] ?? schema
}

/** True when the schema (or a schema it wraps) was tagged with {@link secret}. */
export function isSecretSchema(schema: z.ZodType): boolean {
  return unwrapChain(schema).some((s) => secretRegistry.get(s)?.secret === true)
}

function envSegment(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase()
}

/**
 * The environment variable for a schema path.
 *
 * @example
 * ```ts
 * envName('M2MSEC_KMS_', ['grpc', 'maxMessageBytes']) // 'M2MSEC_KMS_GRPC__MAX_MESSAGE_BYTES'
 * ```
 */
export function envName(envPrefix: string, path: readonly string[]): string {
  return envPrefix + path.map(envSegment).join('__')
}

interface Leaf {
  readonly path: readonly string[]
  readonly schema: z.ZodType
}

/** Object schemas are walked into; everything else (arrays, records, scalars) is a leaf. */
function collectLeaves(schema: z.ZodType, path: readonly string[], out: Leaf[]): void {
  const base = baseOf(schema)
  const def = defOf(base)
  if (def.type === 'object' && def.shape !== undefined) {
    for (const [key, child] of Object.entries(def.shape)) collectLeaves(child, [...path, key], out)
    return
  }
  out.push({ path, schema })
}

function typeName(schema: z.ZodType): string {
  const base = baseOf(schema)
  const def = defOf(base)
  switch (def.type) {
    case 'number': {
      const isInt =
        (def.format !== undefined && def.format.includes('int')) ||
        (def.checks ?? []).some((c) => c._zod.def.format?.includes('int') === true)
      return isInt ? 'integer' : 'number'
    }
    case 'enum':
      return Object.values(def.entries ?? {})
        .map((v) => JSON.stringify(v))
        .join(' | ')
    case 'literal':
      return (def.values ?? []).map((v) => JSON.stringify(v)).join(' | ')
    case 'array':
      return def.element === undefined ? 'array' : `${typeName(def.element)}[]`
    case 'union':
      return (def.options ?? []).map(typeName).join(' | ')
    default:
      return def.type
  }
}

function defaultOf(schema: z.ZodType): unknown {
  for (const s of unwrapChain(schema)) {
    const def = defOf(s)
    if (def.type === 'default' || def.type === 'prefault') return def.defaultValue
  }
  return undefined
}

function descriptionOf(schema: z.ZodType): string | undefined {
  for (const s of unwrapChain(schema)) {
    const d = s.description
    if (d !== undefined) return d
  }
  return undefined
}

/**
 * Lists every setting of a schema with its environment variable, type, default and
 * description (the data behind `--help` and generated config tables).
 *
 * @example
 * ```ts
 * for (const f of describeConfig(schema, 'M2MSEC_KMS_')) console.log(f.env, f.type, f.default)
 * ```
 */
export function describeConfig(schema: z.ZodType, envPrefix: string): ConfigField[] {
  const leaves: Leaf[] = []
  collectLeaves(schema, [], leaves)
  return leaves.map(({ path, schema: s }) => {
    const secretField = isSecretSchema(s)
    const dflt = defaultOf(s)
    return {
      path: path.join('.'),
      env: envName(envPrefix, path),
      type: typeName(s),
      default: dflt === undefined ? undefined : secretField ? REDACTED : JSON.stringify(dflt),
      required: !s.safeParse(undefined).success,
      secret: secretField,
      description: descriptionOf(s),
    }
  })
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on'])
const FALSE_WORDS = new Set(['false', '0', 'no', 'off'])
const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i

/** Converts an environment string by the leaf's base type; unconvertible input stays a string. */
function coerceEnvValue(schema: z.ZodType, raw: string): unknown {
  const def = defOf(baseOf(schema))
  const text = raw.trim()
  switch (def.type) {
    case 'number':
      return NUMBER_RE.test(text) ? Number(text) : raw
    case 'bigint':
      return /^[+-]?\d+$/.test(text) ? BigInt(text) : raw
    case 'boolean': {
      const lower = text.toLowerCase()
      return TRUE_WORDS.has(lower) ? true : FALSE_WORDS.has(lower) ? false : raw
    }
    case 'literal': {
      const hit = (def.values ?? []).find((v) => String(v) === text)
      return hit ?? raw
    }
    case 'array': {
      if (text.startsWith('[')) return tryJson(text) ?? raw
      const items = text === '' ? [] : text.split(',').map((s) => s.trim())
      return def.element === undefined ? items : items.map((s) => coerceEnvValue(def.element as z.ZodType, s))
    }
    case 'object':
    case 'record':
      return tryJson(text) ?? raw
    default:
      return raw
  }
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (isPlainObject(next)) {
      node = next
    } else {
      const fresh: Record<string, unknown> = {}
      node[key] = fresh
      node = fresh
    }
  }
  const last = path[path.length - 1]
  if (last !== undefined) node[last] = value
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    const existing = out[k]
    out[k] = isPlainObject(existing) && isPlainObject(v) ? deepMerge(existing, v) : v
  }
  return out
}

/** Keys in the file that the schema does not declare (zod would silently strip them). */
function unknownKeys(schema: z.ZodType, value: unknown, path: readonly string[], out: string[][]): void {
  const def = defOf(baseOf(schema))
  if (def.type !== 'object' || def.shape === undefined || !isPlainObject(value)) return
  const open = def.catchall !== undefined && defOf(def.catchall).type !== 'never'
  for (const [key, child] of Object.entries(value)) {
    const childSchema = def.shape[key]
    if (childSchema === undefined) {
      if (!open) out.push([...path, key])
    } else {
      unknownKeys(childSchema, child, [...path, key], out)
    }
  }
}

function configFileFrom(
  opts: LoadConfigOptions,
  argv: readonly string[],
  env: LoadConfigOptions['env'],
): string | undefined {
  if (opts.file !== undefined) return opts.file
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--config') return argv[i + 1]
    if (arg?.startsWith('--config=') === true) return arg.slice('--config='.length)
  }
  const fromEnv = env?.[opts.envPrefix + CONFIG_FILE_ENV]
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else out += out === '' ? String(seg) : `.${String(seg)}`
  }
  return out === '' ? '(root)' : out
}

/** The schema at an object path (through wrappers), or undefined past a non-object. */
function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let node: z.ZodType | undefined = schema
  for (const seg of path) {
    if (node === undefined) return undefined
    const def = defOf(baseOf(node))
    node = def.type === 'object' && typeof seg === 'string' ? def.shape?.[seg] : undefined
  }
  return node
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root
  for (const seg of path) {
    if (typeof node !== 'object' || node === null) return undefined
    node = (node as Record<PropertyKey, unknown>)[seg]
  }
  return node
}

/**
 * Loads and validates configuration. Never prints values; on failure throws
 * `ERR_CONFIG_INVALID` whose message lists every bad field with its source and the reason.
 *
 * @example
 * ```ts
 * const config = loadConfig(kmsConfigSchema, { envPrefix: 'M2MSEC_KMS_' })
 * // M2MSEC_KMS_GRPC__PORT=7001 -> config.grpc.port === 7001
 * ```
 */
export function loadConfig<S extends z.ZodType>(schema: S, opts: LoadConfigOptions): z.output<S> {
  const argv = opts.argv ?? process.argv.slice(2)
  const env = opts.env ?? process.env
  const problems: string[] = []
  const badPaths: string[] = []
  const sources = new Map<string, string>()

  let fileValue: Record<string, unknown> = {}
  const file = configFileFrom(opts, argv, env)
  if (file !== undefined) {
    try {
      const parsed: unknown = parseYaml(readFileSync(file, 'utf8'))
      if (parsed === null || parsed === undefined) fileValue = {}
      else if (isPlainObject(parsed)) fileValue = parsed
      else problems.push(`config file ${file}: top level must be a mapping`)
    } catch (err) {
      // Only the first line: YAML errors quote the offending source line, which may hold a value.
      const reason = err instanceof Error ? (err.message.split('\n')[0] ?? err.name) : 'unreadable'
      problems.push(`config file ${file}: ${reason}`)
    }
    const unknown: string[][] = []
    unknownKeys(schema, fileValue, [], unknown)
    for (const p of unknown) {
      badPaths.push(p.join('.'))
      problems.push(`${p.join('.')} (file ${file}): unknown setting`)
    }
  }

  const leaves: Leaf[] = []
  collectLeaves(schema, [], leaves)
  const byEnv = new Map(leaves.map((l) => [envName(opts.envPrefix, l.path), l]))
  const envValue: Record<string, unknown> = {}
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(opts.envPrefix) || raw === undefined) continue
    if (name === opts.envPrefix + CONFIG_FILE_ENV) continue
    const leaf = byEnv.get(name)
    if (leaf === undefined) {
      badPaths.push(name)
      problems.push(`${name}: unknown environment variable (no such setting; see --help)`)
      continue
    }
    setPath(envValue, leaf.path, coerceEnvValue(leaf.schema, raw))
    sources.set(leaf.path.join('.'), `env ${name}`)
  }

  const input = deepMerge(fileValue, envValue)
  const result = schema.safeParse(input)
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = formatPath(issue.path)
      const dotted = issue.path.map(String).join('.')
      let source = sources.get(dotted)
      if (source === undefined && file !== undefined && valueAt(fileValue, issue.path) !== undefined) {
        source = `file ${file}`
      }
      const missing = valueAt(input, issue.path) === undefined && issue.code === 'invalid_type'
      if (!missing) {
        badPaths.push(path)
        problems.push(`${path}${source === undefined ? '' : ` (${source})`}: ${issue.message}`)
        continue
      }
      // A missing section: name each required setting inside it, not just the section.
      const at = schemaAt(schema, issue.path)
      const required: Leaf[] = []
      if (at !== undefined) collectLeaves(at, issue.path.map(String), required)
      const names = required.filter((l) => !l.schema.safeParse(undefined).success).map((l) => l.path)
      for (const leafPath of names.length > 0 ? names : [issue.path.map(String)]) {
        const dottedLeaf = leafPath.join('.')
        badPaths.push(dottedLeaf)
        problems.push(
          `${dottedLeaf}: required; set ${envName(opts.envPrefix, leafPath)}` +
            (file === undefined ? ' or use a config file' : ` or ${dottedLeaf} in ${file}`),
        )
      }
    }
  }
  if (problems.length > 0) {
    throw new M2msecError(
      'ERR_CONFIG_INVALID',
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
      { fields: badPaths.join(','), count: problems.length },
    )
  }
  return (result as { data: z.output<S> }).data
}

/**
 * A copy of a loaded configuration with every {@link secret}-tagged field replaced by
 * `[REDACTED]` (what `--print-config` prints).
 *
 * @example
 * ```ts
 * log.info({ config: redactConfig(schema, config) }, 'starting')
 * ```
 */
export function redactConfig(schema: z.ZodType, value: unknown): unknown {
  if (value === undefined || value === null) return value
  if (isSecretSchema(schema)) return REDACTED
  const def = defOf(baseOf(schema))
  if (def.type === 'object' && def.shape !== undefined && isPlainObject(value)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const child = def.shape[k]
      out[k] = child === undefined ? v : redactConfig(child, v)
    }
    return out
  }
  if (def.type === 'array' && def.element !== undefined && Array.isArray(value)) {
    const element = def.element
    return value.map((v: unknown) => redactConfig(element, v))
  }
  return value
}

/**
 * Reads a secret (token, PIN, password) from a file, as mounted by Kubernetes or Docker
 * secrets. Trailing newlines are removed. Errors name the file, never its contents.
 *
 * @example
 * ```ts
 * const pin = await readSecretFile(config.hsm.pinFile)
 * ```
 */
export async function readSecretFile(path: string): Promise<string> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new M2msecError('ERR_CONFIG_INVALID', `cannot read secret file ${path}: ${code}`, {
      path,
      reason: code,
    })
  }
  const value = text.replace(/[\r\n]+$/, '')
  if (value === '') {
    throw new M2msecError('ERR_CONFIG_INVALID', `secret file ${path} is empty`, {
      path,
      reason: 'empty',
    })
  }
  return value
}
