import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeToken, encodeToken, isValidKvKey, kvKey, parseKvKey, subjects } from '../src/index.ts'

const SAMPLES = ['acme', '', '=', 'a.b', '*', '>', 'a b', 'dev:42', 'ÄÖ €', '😀', 'x/y_z-1', '=41', '%2E']

test('encodeToken/decodeToken round-trip and produce single safe tokens', () => {
  for (const s of SAMPLES) {
    const t = encodeToken(s)
    assert.match(t, /^[-/=_A-Za-z0-9]+$/, `token for ${JSON.stringify(s)}`)
    assert.equal(decodeToken(t), s)
  }
  assert.equal(encodeToken('acme.corp'), 'acme=2Ecorp')
  assert.equal(encodeToken(''), '=')
  assert.equal(encodeToken('a=b'), 'a=3Db')
  // Distinct inputs never share a token.
  assert.equal(new Set(SAMPLES.map(encodeToken)).size, SAMPLES.length)
})

test('decodeToken rejects tokens encodeToken cannot produce', () => {
  for (const bad of ['a.b', 'a=', 'a=4', '=41', 'a=zz', '=C3', 'a b', '*', '']) {
    assert.throws(() => decodeToken(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad)
  }
})

test('kvKey joins encoded parts; parseKvKey reverses it', () => {
  const key = kvKey('acme.corp', 'device:42', '')
  assert.equal(key, 'acme=2Ecorp.device=3A42.=')
  assert.ok(isValidKvKey(key))
  assert.deepEqual(parseKvKey(key), ['acme.corp', 'device:42', ''])
  assert.throws(() => kvKey(), { code: 'ERR_INVALID_ARGUMENT' })
  assert.ok(!isValidKvKey('a..b'))
  assert.ok(!isValidKvKey('a.*'))
  // Longer keys would push the NATS protocol line past max_control_line (4096): refused.
  assert.ok(isValidKvKey('a'.repeat(2048)))
  assert.ok(!isValidKvKey('a'.repeat(2049)))
  assert.ok(!isValidKvKey(encodeToken('!'.repeat(700))))
})

test('subjects.event escapes the tenant; parseEvent reverses it', () => {
  assert.equal(subjects.event('kms', 'acme', 'key.rotated'), 'm2msec.evt.kms.acme.key.rotated')
  const s = subjects.event('kms', 'evil.>', 'key.rotated')
  assert.equal(s, 'm2msec.evt.kms.evil=2E=3E.key.rotated')
  assert.deepEqual(subjects.parseEvent(s), { area: 'kms', tenant: 'evil.>', name: 'key.rotated' })
  assert.equal(subjects.eventAllTenants('authn', 'token.revoked'), 'm2msec.evt.authn.*.token.revoked')
  assert.equal(subjects.eventsOf('groups', 't 1'), 'm2msec.evt.groups.t=201.>')
  assert.throws(() => subjects.event('KMS', 't', 'x'), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => subjects.event('kms', 't', 'a.*'), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => subjects.parseEvent('other.subject'), { code: 'ERR_INVALID_ARGUMENT' })
})
