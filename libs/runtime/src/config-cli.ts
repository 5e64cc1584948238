/**
 * The command-line front of every service's configuration: `--help`, `--print-config`,
 * `--check-config`, and a clear non-zero exit on bad configuration.
 */
import type { z } from 'zod'
import { isM2msecError } from '@m2msec/errors'
import { describeConfig, loadConfig, redactConfig, type LoadConfigOptions } from './config.ts'

/** What `--help` says about the program. */
export interface ConfigCliInfo {
  /** Program name, e.g. `m2msec-kms`. */
  readonly name: string
  /** One paragraph on what it does. */
  readonly description: string
}

/** Output and exit, injectable for tests. Defaults to the process's. */
export interface ConfigCliIo {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly exit: (code: number) => never
}

const processIo: ConfigCliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  exit: (code) => process.exit(code),
}

/**
 * The `--help` text: usage, then every setting with its environment variable, type, default
 * and description.
 *
 * @example
 * ```ts
 * console.log(formatConfigHelp(schema, { envPrefix: 'M2MSEC_KMS_' }, { name: 'm2msec-kms', description: 'KMS' }))
 * ```
 */
export function formatConfigHelp(
  schema: z.ZodType,
  opts: Pick<LoadConfigOptions, 'envPrefix'>,
  info: ConfigCliInfo,
): string {
  const lines = [
    `${info.name}: ${info.description}`,
    '',
    `usage: ${info.name} [--config <file.yaml|file.json>] [--print-config | --check-config | --help]`,
    '',
    'Options:',
    '  --config <path>   YAML or JSON config file (also ' + opts.envPrefix + 'CONFIG_FILE)',
    '  --print-config    print the effective configuration (secrets redacted) and exit',
    '  --check-config    validate the configuration, exit 0 when valid, 1 otherwise',
    '  --help            this text',
    '',
    'Precedence: defaults < config file < environment variables.',
    '',
    'Settings (config file path / environment variable):',
  ]
  for (const f of describeConfig(schema, opts.envPrefix)) {
    const flags = [f.required ? 'required' : undefined, f.secret ? 'secret' : undefined].filter(Boolean).join(', ')
    lines.push(`  ${f.path}`)
    lines.push(`      env:     ${f.env}`)
    lines.push(`      type:    ${f.type}${flags === '' ? '' : ` (${flags})`}`)
    if (f.default !== undefined) lines.push(`      default: ${f.default}`)
    if (f.description !== undefined) lines.push(`      ${f.description}`)
  }
  return lines.join('\n') + '\n'
}

/**
 * Loads the configuration like {@link loadConfig} and handles the standard flags:
 * `--help` (exit 0), `--print-config` (redacted JSON, exit 0), `--check-config` (exit 0/1).
 * A bad configuration prints every bad field to stderr and exits 1. Otherwise returns the
 * configuration and the service starts.
 *
 * @example
 * ```ts
 * const config = runConfigCli(kmsConfigSchema, { envPrefix: 'M2MSEC_KMS_' },
 *   { name: 'm2msec-kms', description: 'Key management service' })
 * ```
 */
export function runConfigCli<S extends z.ZodType>(
  schema: S,
  opts: LoadConfigOptions,
  info: ConfigCliInfo,
  io: ConfigCliIo = processIo,
): z.output<S> {
  const argv = opts.argv ?? process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout(formatConfigHelp(schema, opts, info))
    return io.exit(0)
  }
  let config: z.output<S>
  try {
    config = loadConfig(schema, { ...opts, argv })
  } catch (err) {
    const message = isM2msecError(err) ? err.message : 'cannot load configuration'
    io.stderr(`${info.name}: ${message}\n`)
    return io.exit(1)
  }
  if (argv.includes('--print-config')) {
    io.stdout(JSON.stringify(redactConfig(schema, config), jsonReplacer, 2) + '\n')
    return io.exit(0)
  }
  if (argv.includes('--check-config')) {
    io.stdout(`${info.name}: configuration is valid\n`)
    return io.exit(0)
  }
  return config
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value
}
