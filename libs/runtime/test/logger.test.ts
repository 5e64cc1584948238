import { test } from 'node:test'
import assert from 'node:assert/strict'
import { M2msecError } from '@m2msec/errors'
import { isSecretFieldName, sanitizeForLog } from '../src/index.ts'
import { captureLogger } from './helpers.ts'

const SECRETS = [
  'tok-3f9a7c-SECRET',
  'pw-hunter2-SECRET',
  'pin-0000-SECRET',
  'bearer-abc-SECRET',
  'material-SECRET',
  'plain-SECRET',
  'deep-SECRET',
  'child-SECRET',
  'cause-SECRET',
  'apikey-SECRET',
]

test('secrets placed in log calls never reach the output, at any depth or in child bindings', () => {
  const { log, text, lines } = captureLogger()
  const child = log.child({ apiKey: 'apikey-SECRET', tenant: 'acme' })
  child.info(
    {
      keyId: 'k-1',
      token: 'tok-3f9a7c-SECRET',
      user: { password: 'pw-hunter2-SECRET', name: 'alice' },
      metadata: { authorization: 'Bearer bearer-abc-SECRET' },
      request: { items: [{ deeper: { even: { deeper: { userPin: 'pin-0000-SECRET' } } } }] },
      keyMaterial: 'material-SECRET',
      plaintext: 'plain-SECRET',
      nested: { config: { clientSecret: 'deep-SECRET' } },
      header: 'Bearer child-SECRET',
    },
    'did things',
  )
  const err = new M2msecError(
    'ERR_INTERNAL',
    'boom',
    { keyId: 'k-2' },
    { cause: Object.assign(new Error('inner'), { token: 'cause-SECRET' }) },
  )
  child.error({ err }, 'failed')
  const out = text()
  for (const s of SECRETS) assert.ok(!out.includes(s), `${s} leaked: ${out}`)
  const [first, second] = lines()
  assert.ok(first && second)
  assert.equal(first['keyId'], 'k-1')
  assert.equal(first['token'], '[REDACTED]')
  assert.deepEqual(first['user'], { password: '[REDACTED]', name: 'alice' })
  assert.equal(first['apiKey'], '[REDACTED]')
  assert.equal(first['tenant'], 'acme')
  assert.equal(first['service'], 'test')
  assert.equal(first['level'], 'info')
  assert.equal(first['msg'], 'did things')
  const loggedErr = second['err'] as Record<string, unknown>
  assert.equal(loggedErr['message'], 'boom: inner') // pino appends cause messages
  assert.equal(loggedErr['code'], 'ERR_INTERNAL')
  assert.match(String(loggedErr['stack']), /M2msecError: boom/)
})

test('bytes are logged as their length, never their content', () => {
  const { log, text, lines } = captureLogger()
  const bytes = Buffer.from('0123456789abcdef0123456789abcdef', 'hex')
  log.info({ blob: bytes, wrapped: { data: new Uint8Array([1, 2, 3]) }, ab: new ArrayBuffer(5) }, 'bytes')
  const line = lines()[0]
  assert.ok(line)
  assert.equal(line['blob'], '<16 bytes>')
  assert.deepEqual(line['wrapped'], { data: '<3 bytes>' })
  assert.equal(line['ab'], '<5 bytes>')
  assert.ok(!text().includes('"type":"Buffer"'))
})

test('secret-looking names: suffix match, identifiers stay', () => {
  for (const n of [
    'key',
    'masterKey',
    'api_key',
    'x-api-key',
    'clientSecret',
    'Authorization',
    'pin',
    'userPin',
    'keyMaterial',
    'privateKey',
    'psk',
    'refreshToken',
    'password',
  ]) {
    assert.equal(isSecretFieldName(n), true, n)
  }
  for (const n of [
    'keyId',
    'tokenId',
    'secretRef',
    'keyVersion',
    'tenant',
    'principal',
    'pinAttempts',
    'authorizationDecision',
  ]) {
    assert.equal(isSecretFieldName(n), false, n)
  }
})

test('sanitizeForLog survives cycles and keeps dates', () => {
  const a: Record<string, unknown> = { when: new Date(0) }
  a['self'] = a
  const out = sanitizeForLog(a) as Record<string, unknown>
  assert.equal(out['self'], '[Circular]')
  assert.ok(out['when'] instanceof Date)
})

test('levels below the configured one are dropped', () => {
  const { log, lines } = captureLogger('info')
  log.debug('hidden')
  log.info('shown')
  assert.deepEqual(
    lines().map((l) => l['msg']),
    ['shown'],
  )
})
