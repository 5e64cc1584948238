/**
 * Session keys: the KMS handle and the client's own HKDF give the same key (same MAC); the
 * lifetime follows the policy and the credential; refusals derive nothing; the sweeper
 * retires expired keys.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, hkdfSync } from 'node:crypto'
import { sessionKeyInfo } from '../../src/domain/operations/session-keys.ts'
import { ADMIN, codeOf, createWorld } from './world.ts'

test('the entity derives the same session key as the KMS handle', async () => {
  const w = await createWorld()
  const dev = await w.register('urn:dev:mac:0000000000e1')
  const self = { tenant: 'acme', id: dev.id, roles: [] }
  const s = await w.ops.deriveSessionKey(self, { entityId: dev.id, credentialId: '', grantees: ['role:gateway'] })
  assert.equal(s.credentialId, dev.kid)
  assert.equal(s.salt.length, 32)
  assert.deepEqual(s.info, sessionKeyInfo('acme', dev.id, dev.kid, s.sessionId))
  assert.equal(Buffer.from(s.info).toString('utf8'), `m2msec-session-key\0acme\0${dev.id}\0${dev.kid}\0${s.sessionId}`)
  const clientKey = Buffer.from(hkdfSync('sha256', dev.key, s.salt, s.info, 32))
  const data = Buffer.from('hello')
  const server = await w.deps.kms.mac('acme', s.kmsKeyId, data)
  assert.deepEqual(Buffer.from(server), createHmac('sha256', clientKey).update(data).digest())
  assert.deepEqual(w.deps.kms.grantsOf('acme', s.kmsKeyId), ['role:gateway'])
  assert.equal(s.expiresAt.getTime(), w.now + 3600_000)
  await w.ops.setAuthPolicy(ADMIN, { entityId: dev.id, policy: { sessionKeyLifetimeSec: 120 } })
  const short = await w.ops.deriveSessionKey(ADMIN, { entityId: dev.id, credentialId: dev.kid, grantees: [] })
  assert.equal(short.expiresAt.getTime(), w.now + 120_000)
  assert.notDeepEqual(short.salt, s.salt)
})

test('refusals derive nothing: other callers, bad grantees, unusable credentials', async () => {
  const w = await createWorld()
  const dev = await w.register('urn:dev:mac:0000000000e2')
  const other = { tenant: 'acme', id: 'urn:dev:mac:0000000000e3', roles: [] }
  const derived = () => w.deps.kms.calls.filter((c) => c === 'deriveKey').length
  const start = derived()
  const cases: Array<[Promise<unknown>, string]> = [
    [w.ops.deriveSessionKey(other, { entityId: dev.id, credentialId: '', grantees: [] }), 'ERR_NOT_FOUND'],
    [
      w.ops.deriveSessionKey({ ...ADMIN, tenant: 'globex' }, { entityId: dev.id, credentialId: '', grantees: [] }),
      'ERR_FAILED_PRECONDITION',
    ],
    [w.ops.deriveSessionKey(ADMIN, { entityId: 'urn:dev:mac:ffff', credentialId: '', grantees: [] }), 'ERR_NOT_FOUND'],
    [w.ops.deriveSessionKey(ADMIN, { entityId: dev.id, credentialId: 'nope', grantees: [] }), 'ERR_NOT_FOUND'],
    [
      w.ops.deriveSessionKey(ADMIN, { entityId: dev.id, credentialId: '', grantees: Array(9).fill('x') }),
      'ERR_INVALID_ARGUMENT',
    ],
    [
      w.ops.deriveSessionKey(ADMIN, { entityId: dev.id, credentialId: '', grantees: ['has space'] }),
      'ERR_INVALID_ARGUMENT',
    ],
  ]
  for (const [p, code] of cases) assert.equal(await codeOf(p), code)
  await w.ops.revokeCredential(ADMIN, { entityId: dev.id, credentialId: dev.kid })
  assert.equal(
    await codeOf(w.ops.deriveSessionKey(ADMIN, { entityId: dev.id, credentialId: dev.kid, grantees: [] })),
    'ERR_FAILED_PRECONDITION',
  )
  assert.equal(
    await codeOf(w.ops.deriveSessionKey(ADMIN, { entityId: dev.id, credentialId: '', grantees: [] })),
    'ERR_FAILED_PRECONDITION',
  )
  assert.equal(derived(), start)
  assert.equal(w.deps.sessions.records.kv.items.size, 0)
})

test('a session key ends with its credential, and the sweeper retires it at expiry', async () => {
  const w = await createWorld()
  const dev = await w.register('urn:dev:mac:0000000000e4')
  const cred = await w.ops.addCredential(ADMIN, {
    entityId: dev.id,
    notAfter: new Date(w.now + 600_000),
    credential: { type: 'SYMMETRIC', source: { kind: 'generate' } },
  })
  const s = await w.ops.deriveSessionKey(ADMIN, { entityId: dev.id, credentialId: cred.credential.id, grantees: [] })
  assert.equal(s.expiresAt.getTime(), w.now + 600_000)
  assert.deepEqual(await w.ops.sweepExpired(), { sessionKeys: 0, mafKeys: 0, mafClients: 0 })
  w.now += 600_000
  assert.deepEqual(await w.ops.sweepExpired(), { sessionKeys: 1, mafKeys: 0, mafClients: 0 })
  assert.equal(w.deps.kms.stateOf('acme', s.kmsKeyId), 'DESTRUCTION_SCHEDULED')
  assert.equal(await codeOf(w.deps.kms.mac('acme', s.kmsKeyId, Buffer.from('x'))), 'ERR_KEY_DISABLED')
  assert.equal(w.deps.sessions.records.kv.items.size, 0)
  assert.ok(w.deps.auditLog.some((e) => e.action === 'authn.ExpireSessionKey' && e.principal === 'system'))
})
