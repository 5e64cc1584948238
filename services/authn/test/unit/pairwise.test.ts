/**
 * Authentication policies and pairwise pseudonymous subjects: stable per relying party,
 * different across relying parties and entities, the entity id for the platform audience;
 * Introspect resolves the entity only for those who may know it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { decodeJwt } from 'jose'
import { pseudonymInput, pseudonymKeyIdOf } from '../../src/domain/pseudonyms.ts'
import { ADMIN, codeOf, createWorld } from './world.ts'

const RP_A = 'https://rp-a.example.com'
const RP_B = 'https://rp-b.example.com'

test('policies: validated, tenant defaults, entity overrides; bad input changes nothing', async () => {
  const w = await createWorld()
  const dev = await w.register('urn:dev:mac:0000000000d1')
  assert.deepEqual(await w.ops.setAuthPolicy(ADMIN, { entityId: '', policy: { subjectType: 'PAIRWISE' } }), {
    subjectType: 'PAIRWISE',
    sessionKeyLifetimeSec: 3600,
  })
  assert.deepEqual(await w.ops.setAuthPolicy(ADMIN, { entityId: dev.id, policy: { sessionKeyLifetimeSec: 600 } }), {
    subjectType: 'PAIRWISE',
    sessionKeyLifetimeSec: 600,
  })
  const before = JSON.stringify(await w.ops.getEntity(ADMIN, dev.id))
  const bad = [
    w.ops.setAuthPolicy(ADMIN, { entityId: dev.id, policy: { sessionKeyLifetimeSec: 59 } }),
    w.ops.setAuthPolicy(ADMIN, { entityId: dev.id, policy: { sessionKeyLifetimeSec: 86_401 } }),
    w.ops.setAuthPolicy(ADMIN, { entityId: dev.id, policy: { subjectType: 'SECRET' as 'PUBLIC' } }),
  ]
  for (const p of bad) assert.equal(await codeOf(p), 'ERR_INVALID_ARGUMENT')
  assert.equal(
    await codeOf(w.ops.setAuthPolicy({ tenant: 'acme', id: dev.id, roles: [] }, { entityId: dev.id, policy: {} })),
    'ERR_PERMISSION_DENIED',
  )
  assert.equal(await codeOf(w.ops.setAuthPolicy(ADMIN, { entityId: 'urn:dev:mac:ffff', policy: {} })), 'ERR_NOT_FOUND')
  assert.equal(JSON.stringify(await w.ops.getEntity(ADMIN, dev.id)), before)
})

test('pairwise subjects: stable per relying party, unlinkable across parties, entity id for the platform', async () => {
  const w = await createWorld()
  const dev = await w.register('urn:dev:mac:0000000000d2')
  const dev2 = await w.register('urn:dev:mac:0000000000d3')
  const subOf = async (d: typeof dev, audience: string) =>
    decodeJwt(
      (await w.ops.issueToken({ tenant: 'acme', assertion: w.assertion(d), audience, popPublicJwk: '' })).accessToken,
    ).sub as string
  assert.equal(await subOf(dev, RP_A), dev.id, 'PUBLIC by default')

  await w.ops.setAuthPolicy(ADMIN, { entityId: '', policy: { subjectType: 'PAIRWISE' } })
  const a1 = await subOf(dev, RP_A)
  const a2 = await subOf(dev, RP_A)
  const b1 = await subOf(dev, RP_B)
  const other = await subOf(dev2, RP_A)
  assert.match(a1, /^pw-[A-Za-z0-9_-]{43}$/)
  assert.equal(a1, a2)
  assert.notEqual(a1, b1)
  assert.notEqual(a1, other)
  assert.equal(await subOf(dev, ''), dev.id, 'the platform audience sees the entity id')
  // The documented formula, with the tenant key the fake KMS reveals.
  const key = w.deps.kms.secretOf('acme', pseudonymKeyIdOf('acme'))
  assert.equal(a1, `pw-${createHmac('sha256', key).update(pseudonymInput(dev.id, RP_A)).digest('base64url')}`)
  // An entity can opt out of its tenant's default.
  await w.ops.setAuthPolicy(ADMIN, { entityId: dev2.id, policy: { subjectType: 'PUBLIC' } })
  assert.equal(await subOf(dev2, RP_A), dev2.id)
})

test('introspection of a pairwise token: the relying party sees the pseudonym only; admins and the entity resolve it', async () => {
  const w = await createWorld()
  const dev = await w.register('urn:dev:mac:0000000000d4')
  await w.ops.setAuthPolicy(ADMIN, { entityId: dev.id, policy: { subjectType: 'PAIRWISE' } })
  const token = (
    await w.ops.issueToken({ tenant: 'acme', assertion: w.assertion(dev), audience: RP_A, popPublicJwk: '' })
  ).accessToken
  const rpA = await w.ops.introspect({ tenant: 'acme', id: RP_A, roles: [] }, token)
  assert.ok(rpA.active)
  assert.match(rpA.claims.sub, /^pw-/)
  assert.equal(rpA.entityId, '')
  assert.equal((await w.ops.introspect({ tenant: 'acme', id: RP_B, roles: [] }, token)).active, false)
  assert.equal((await w.ops.introspect({ tenant: 'globex', id: RP_A, roles: [] }, token)).active, false)
  const admin = await w.ops.introspect(ADMIN, token)
  assert.ok(admin.active && admin.entityId === dev.id)
  const self = await w.ops.introspect({ tenant: 'acme', id: dev.id, roles: [] }, token)
  assert.ok(self.active && self.entityId === dev.id)
  await w.ops.disableEntity(ADMIN, dev.id)
  assert.equal((await w.ops.introspect({ tenant: 'acme', id: RP_A, roles: [] }, token)).active, false)
})
