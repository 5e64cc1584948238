import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import type { M2msecError } from '@m2msec/errors'
import {
  describeConfig,
  envName,
  formatConfigHelp,
  grpcServerConfigSchema,
  loadConfig,
  logConfigSchema,
  readSecretFile,
  redactConfig,
  runConfigCli,
  secret,
  type ConfigCliIo,
} from '../src/index.ts'

const schema = z.object({
  grpc: grpcServerConfigSchema({ port: 7001 }).prefault({}),
  log: logConfigSchema.prefault({}),
  store: z
    .object({
      bucket: z.string().min(1).describe('JetStream KV bucket'),
      replicas: z.number().int().min(1).max(5).default(1).describe('KV replicas'),
      servers: z.array(z.url()).default(['nats://127.0.0.1:4222']).describe('NATS servers'),
    })
    .describe('key store'),
  adminToken: secret(z.string().min(16)).optional().describe('static admin token'),
  apiKeys: z.array(secret(z.string())).default([]).describe('accepted API keys'),
})

const PREFIX = 'M2MSEC_KMS_'
const TOKEN_VALUE = 'super-secret-admin-token-value'

function load(env: Record<string, string>, file?: string): z.output<typeof schema> {
  return loadConfig(schema, {
    envPrefix: PREFIX,
    argv: [],
    env,
    ...(file === undefined ? {} : { file }),
  })
}

function configError(fn: () => unknown): M2msecError {
  try {
    fn()
  } catch (err) {
    return err as M2msecError
  }
  assert.fail('expected ERR_CONFIG_INVALID')
}

describe('loadConfig', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'm2msec-runtime-config-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('env names: UPPER_SNAKE segments joined by a double underscore', () => {
    assert.equal(envName(PREFIX, ['grpc', 'port']), 'M2MSEC_KMS_GRPC__PORT')
    assert.equal(envName(PREFIX, ['grpc', 'maxMessageBytes']), 'M2MSEC_KMS_GRPC__MAX_MESSAGE_BYTES')
    assert.equal(envName(PREFIX, ['grpc', 'tls', 'certFile']), 'M2MSEC_KMS_GRPC__TLS__CERT_FILE')
  })

  test('defaults apply and env vars are coerced by the schema type', () => {
    const c = load({
      M2MSEC_KMS_STORE__BUCKET: 'kms-keys',
      M2MSEC_KMS_GRPC__PORT: '7101',
      M2MSEC_KMS_GRPC__REFLECTION: 'false',
      M2MSEC_KMS_STORE__SERVERS: 'nats://a:4222, nats://b:4222',
      M2MSEC_KMS_GRPC__TLS__CERT_FILE: '/tls/cert.pem',
      M2MSEC_KMS_GRPC__TLS__KEY_FILE: '/tls/key.pem',
      M2MSEC_KMS_GRPC__TLS__REQUIRE_CLIENT_CERT: 'no',
      OTHER_VAR: 'ignored',
    })
    assert.equal(c.grpc.port, 7101)
    assert.equal(c.grpc.reflection, false)
    assert.equal(c.grpc.host, '127.0.0.1')
    assert.equal(c.grpc.maxMessageBytes, 4 * 1024 * 1024)
    assert.deepEqual(c.grpc.tls, {
      certFile: '/tls/cert.pem',
      keyFile: '/tls/key.pem',
      requireClientCert: false,
    })
    assert.equal(c.log.level, 'info')
    assert.deepEqual(c.store, {
      bucket: 'kms-keys',
      replicas: 1,
      servers: ['nats://a:4222', 'nats://b:4222'],
    })
  })

  test('precedence: defaults < file (--config or <PREFIX>CONFIG_FILE) < env', async () => {
    const file = join(dir, 'kms.yaml')
    await writeFile(file, 'grpc:\n  port: 7200\n  host: 127.0.0.2\nstore:\n  bucket: from-file\n  replicas: 3\n')
    const viaArg = loadConfig(schema, {
      envPrefix: PREFIX,
      argv: ['--config', file],
      env: { M2MSEC_KMS_GRPC__PORT: '7300' },
    })
    assert.equal(viaArg.grpc.port, 7300)
    assert.equal(viaArg.grpc.host, '127.0.0.2')
    assert.equal(viaArg.store.replicas, 3)
    assert.equal(viaArg.grpc.shutdownGraceMs, 10_000)
    const viaEnv = loadConfig(schema, {
      envPrefix: PREFIX,
      argv: [],
      env: { M2MSEC_KMS_CONFIG_FILE: file },
    })
    assert.equal(viaEnv.store.bucket, 'from-file')
    const json = join(dir, 'kms.json')
    await writeFile(json, JSON.stringify({ store: { bucket: 'json' } }))
    assert.equal(loadConfig(schema, { envPrefix: PREFIX, argv: [`--config=${json}`], env: {} }).store.bucket, 'json')
  })

  test('every bad field is listed with its source and reason, never its value', async () => {
    const file = join(dir, 'bad.yaml')
    await writeFile(file, 'grpc:\n  prot: 1\nstore:\n  replicas: 9\n')
    const err = configError(() =>
      load(
        {
          M2MSEC_KMS_GRPC__PORT: '70000',
          M2MSEC_KMS_LOG__LEVEL: 'loud',
          M2MSEC_KMS_GRPC__REFLECTION: 'maybe',
          M2MSEC_KMS_ADMIN_TOKEN: 'short',
          M2MSEC_KMS_STORE__BUCKKET: 'typo',
        },
        file,
      ),
    )
    assert.equal(err.code, 'ERR_CONFIG_INVALID')
    const m = err.message
    assert.match(m, /grpc\.prot \(file .*bad\.yaml\): unknown setting/)
    assert.match(m, /M2MSEC_KMS_STORE__BUCKKET: unknown environment variable/)
    assert.match(m, /grpc\.port \(env M2MSEC_KMS_GRPC__PORT\): Too big/)
    assert.match(m, /log\.level \(env M2MSEC_KMS_LOG__LEVEL\): Invalid option/)
    assert.match(m, /grpc\.reflection \(env M2MSEC_KMS_GRPC__REFLECTION\): .*expected boolean/)
    assert.match(m, /adminToken \(env M2MSEC_KMS_ADMIN_TOKEN\): Too small/)
    assert.match(m, /store\.bucket: required; set M2MSEC_KMS_STORE__BUCKET/)
    assert.match(m, /store\.replicas \(file .*bad\.yaml\): Too big/)
    assert.match(m, /invalid configuration \(8 problems\)/)
    for (const value of ['short', 'loud', 'maybe', '70000', 'typo'])
      assert.ok(!m.includes(value), `${value} not echoed`)
    assert.equal(err.details['count'], 8)
  })

  test('an unreadable or malformed file is reported, as a config error', async () => {
    assert.match(configError(() => load({}, join(dir, 'missing.yaml'))).message, /config file .*missing\.yaml: ENOENT/)
    const bad = join(dir, 'broken.yaml')
    await writeFile(bad, 'store: [unclosed\n')
    assert.equal(configError(() => load({}, bad)).code, 'ERR_CONFIG_INVALID')
    const scalar = join(dir, 'scalar.yaml')
    await writeFile(scalar, '42\n')
    assert.match(
      configError(() => load({ M2MSEC_KMS_STORE__BUCKET: 'b' }, scalar)).message,
      /top level must be a mapping/,
    )
  })

  test('redactConfig hides secret-tagged fields, including inside arrays and after .optional()/.describe()', () => {
    const c = load({
      M2MSEC_KMS_STORE__BUCKET: 'b',
      M2MSEC_KMS_ADMIN_TOKEN: TOKEN_VALUE,
      M2MSEC_KMS_API_KEYS: 'k1-secret,k2-secret',
    })
    assert.equal(c.adminToken, TOKEN_VALUE)
    const redacted = JSON.stringify(redactConfig(schema, c))
    assert.ok(!redacted.includes(TOKEN_VALUE))
    assert.ok(!redacted.includes('k1-secret'))
    assert.match(redacted, /"adminToken":"\[REDACTED\]"/)
    assert.match(redacted, /"apiKeys":\["\[REDACTED\]","\[REDACTED\]"\]/)
    assert.match(redacted, /"bucket":"b"/)
  })

  test('describeConfig lists every leaf with env name, type, default, description, secret flag', () => {
    const fields = new Map(describeConfig(schema, PREFIX).map((f) => [f.path, f]))
    assert.deepEqual(fields.get('grpc.port'), {
      path: 'grpc.port',
      env: 'M2MSEC_KMS_GRPC__PORT',
      type: 'integer',
      default: '7001',
      required: false,
      secret: false,
      description: 'listen port (0 = any free port)',
    })
    assert.equal(fields.get('log.level')?.type, '"fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent"')
    assert.equal(fields.get('store.bucket')?.required, true)
    assert.equal(fields.get('adminToken')?.secret, true)
    assert.equal(fields.get('adminToken')?.description, 'static admin token')
    assert.equal(fields.get('grpc.tls.caFile')?.env, 'M2MSEC_KMS_GRPC__TLS__CA_FILE')
  })
})

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}

function fakeIo(): { io: ConfigCliIo; out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return {
    out,
    err,
    io: {
      stdout: (t) => void out.push(t),
      stderr: (t) => void err.push(t),
      exit: (code) => {
        throw new Exit(code)
      },
    },
  }
}

function runCli(
  argv: string[],
  env: Record<string, string>,
): { code: number | undefined; out: string; err: string; config?: unknown } {
  const { io, out, err } = fakeIo()
  try {
    const config = runConfigCli(
      schema,
      { envPrefix: PREFIX, argv, env },
      { name: 'm2msec-kms', description: 'key management' },
      io,
    )
    return { code: undefined, out: out.join(''), err: err.join(''), config }
  } catch (e) {
    if (e instanceof Exit) return { code: e.code, out: out.join(''), err: err.join('') }
    throw e
  }
}

describe('runConfigCli', () => {
  const good = { M2MSEC_KMS_STORE__BUCKET: 'kms', M2MSEC_KMS_ADMIN_TOKEN: TOKEN_VALUE }

  test('--help lists every setting with env var, type, default and description, and exits 0', () => {
    const r = runCli(['--help'], {})
    assert.equal(r.code, 0)
    assert.match(r.out, /^m2msec-kms: key management/)
    for (const f of describeConfig(schema, PREFIX)) assert.ok(r.out.includes(f.env), `${f.env} listed`)
    assert.match(
      r.out,
      /grpc\.port\n\s+env:\s+M2MSEC_KMS_GRPC__PORT\n\s+type:\s+integer\n\s+default: 7001\n\s+listen port/,
    )
    assert.match(r.out, /adminToken\n\s+env:\s+M2MSEC_KMS_ADMIN_TOKEN\n\s+type:\s+string \(secret\)/)
    assert.match(r.out, /store\.bucket\n\s+env:\s+M2MSEC_KMS_STORE__BUCKET\n\s+type:\s+string \(required\)/)
    assert.equal(
      formatConfigHelp(schema, { envPrefix: PREFIX }, { name: 'm2msec-kms', description: 'key management' }),
      r.out,
    )
  })

  test('--print-config prints redacted JSON and exits 0', () => {
    const r = runCli(['--print-config'], good)
    assert.equal(r.code, 0)
    const printed = JSON.parse(r.out) as { adminToken: string; store: { bucket: string } }
    assert.equal(printed.adminToken, '[REDACTED]')
    assert.equal(printed.store.bucket, 'kms')
    assert.ok(!r.out.includes(TOKEN_VALUE))
  })

  test('--check-config exits 0 when valid and 1 listing every bad field when not', () => {
    assert.equal(runCli(['--check-config'], good).code, 0)
    const bad = runCli(['--check-config'], {
      M2MSEC_KMS_GRPC__PORT: 'abc',
      M2MSEC_KMS_LOG__LEVEL: 'x',
    })
    assert.equal(bad.code, 1)
    assert.match(bad.err, /grpc\.port/)
    assert.match(bad.err, /log\.level/)
    assert.match(bad.err, /store\.bucket/)
  })

  test('without flags: returns the config when valid, exits 1 with every bad field when not', () => {
    const ok = runCli([], good)
    assert.equal(ok.code, undefined)
    assert.equal((ok.config as { store: { bucket: string } }).store.bucket, 'kms')
    const bad = runCli([], { M2MSEC_KMS_ADMIN_TOKEN: 'short-secret' })
    assert.equal(bad.code, 1)
    assert.match(bad.err, /adminToken .*Too small/)
    assert.match(bad.err, /store\.bucket: required/)
    assert.ok(!bad.err.includes('short-secret'))
  })
})

describe('readSecretFile', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'm2msec-runtime-secret-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('returns the contents without the trailing newline', async () => {
    const f = join(dir, 'pin')
    await writeFile(f, '1234-5678\n', { mode: 0o600 })
    assert.equal(await readSecretFile(f), '1234-5678')
    await writeFile(f, 'crlf\r\n')
    assert.equal(await readSecretFile(f), 'crlf')
  })

  test('a missing or empty file is ERR_CONFIG_INVALID naming the file, not the contents', async () => {
    await assert.rejects(
      readSecretFile(join(dir, 'nope')),
      (err: M2msecError) => err.code === 'ERR_CONFIG_INVALID' && /nope: ENOENT/.test(err.message),
    )
    const empty = join(dir, 'empty')
    await writeFile(empty, '\n')
    await assert.rejects(
      readSecretFile(empty),
      (err: M2msecError) => err.code === 'ERR_CONFIG_INVALID' && /is empty/.test(err.message),
    )
  })
})
