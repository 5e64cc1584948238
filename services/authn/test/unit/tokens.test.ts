/**
 * Introspection, revocation, signing key rotation and the published key sets, with fakes and
 * a movable clock.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { decodeProtectedHeader } from 'jose'
import { createAuthnOperations } from '../../src/domain/operations/index.ts'
import { publishedJwks } from '../../src/domain/tokens.ts'
import { fakeDeps } from './fakes.ts'

const OPERATOR = { tenant: '_platform', id: 'op', roles: ['operator'] }
const ADMIN = { tenant: 'acme', id: 'adm', roles: ['admin'] }
const DEVICE = 'Cmeter01'

async function setup() {
  let now = Date.now()
  const deps = fakeDeps()
  const clocked = { ...deps, clock: { now: () => new Date(now) } }
  const ops = createAuthnOperations(clocked)
  await ops.createTenant(OPERATOR, { tenantId: 'acme', displayName: '', trustAnchorsPem: [], secureEnvironment: '' })
  await ops.registerEntity(ADMIN, { entityId: DEVICE, kind: 'AE', roles: ['meter'], labels: {} })
  const cred = await ops.addCredential(ADMIN, {
    entityId: DEVICE,
    credential: { type: 'SYMMETRIC', source: { kind: 'generate' } },
  })
  const key = deps.kms.secretOf('acme', cred.credential.kmsKeyId as string)
  const assertion = () => {
    const t = Math.floor(now / 1000)
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const input = `${b64({ alg: 'HS256', kid: cred.credential.id })}.${b64({ iss: DEVICE, sub: DEVICE, aud: 'm2msec-authn-token', iat: t, exp: t + 60, jti: randomBytes(8).toString('hex') })}`
    return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
  }
  const token = () => ops.issueToken({ tenant: 'acme', assertion: assertion(), audience: '', popPublicJwk: '' })
  return { deps, ops, token, assertion, advance: (ms: number) => (now += ms) }
}

test('Introspect: active for admin, service and the subject of the same tenant; inactive otherwise', async () => {
  const { ops, token } = await setup()
  const { accessToken, tokenId } = await token()
  const active = await ops.introspect(ADMIN, accessToken)
  assert.equal(active.active, true)
  assert.equal(active.active && active.claims.jti, tokenId)
  assert.equal(active.active && active.claims.loa, 2)
  assert.deepEqual(active.active && active.claims.roles, ['meter'])
  assert.equal((await ops.introspect({ tenant: 'acme', id: 'svc:x', roles: ['service'] }, accessToken)).active, true)
  assert.equal((await ops.introspect({ tenant: 'acme', id: DEVICE, roles: [] }, accessToken)).active, true)
  assert.equal((await ops.introspect({ tenant: 'acme', id: 'Cother', roles: [] }, accessToken)).active, false)
  assert.equal((await ops.introspect({ tenant: 'globex', id: 'adm', roles: ['admin'] }, accessToken)).active, false)
  const [h, p, s] = accessToken.split('.')
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p as string, 'base64url').toString()), roles: ['admin'] })).toString('base64url')}.${s}`
  assert.equal((await ops.introspect(ADMIN, tampered)).active, false)
  assert.equal((await ops.introspect(ADMIN, 'garbage')).active, false)
})

test('RevokeToken (admin only) makes a token inactive; disabling the entity or tenant does too', async () => {
  const { ops, token, deps } = await setup()
  const a = await token()
  await assert.rejects(ops.revokeToken({ tenant: 'acme', id: DEVICE, roles: [] }, a.tokenId), {
    code: 'ERR_PERMISSION_DENIED',
  })
  await assert.rejects(ops.revokeToken(ADMIN, ''), { code: 'ERR_INVALID_ARGUMENT' })
  await ops.revokeToken(ADMIN, a.tokenId)
  assert.equal((await ops.introspect(ADMIN, a.accessToken)).active, false)
  assert.equal(deps.published.at(-1)?.type, 'token.revoked')
  assert.ok(
    (deps.revocations.tokens[0]?.exp ?? 0) >= Math.floor(Date.now() / 1000) + 300,
    'kept as long as a token lives',
  )

  const b = await token()
  assert.equal((await ops.introspect(ADMIN, b.accessToken)).active, true)
  await ops.disableEntity(ADMIN, DEVICE)
  assert.equal((await ops.introspect(ADMIN, b.accessToken)).active, false)
})

test('expired tokens introspect inactive', async () => {
  const { ops, token, advance } = await setup()
  const a = await token()
  advance(301_000)
  assert.equal((await ops.introspect(ADMIN, a.accessToken)).active, false)
})

test('RotateSigningKey: new kid at once; the old key stays published until its tokens expired', async () => {
  const { ops, token, advance } = await setup()
  const before = await token()
  assert.equal(decodeProtectedHeader(before.accessToken).kid, 'authn-signing-acme/1')
  const rotated = await ops.rotateSigningKey(ADMIN)
  assert.deepEqual(rotated, { keyId: 'authn-signing-acme', version: 2 })
  const after = await token()
  assert.equal(decodeProtectedHeader(after.accessToken).kid, 'authn-signing-acme/2')
  const kids = async () => ((await ops.tenantJwks('acme'))?.keys ?? []).map((k) => k.kid)
  assert.deepEqual(await kids(), ['authn-signing-acme/1', 'authn-signing-acme/2'])
  assert.equal((await ops.introspect(ADMIN, before.accessToken)).active, true)
  assert.deepEqual(
    (await ops.platformJwks()).keys.map((k) => k.kid),
    await kids(),
  )
  advance(331_000)
  assert.deepEqual(await kids(), ['authn-signing-acme/2'])
  await assert.rejects(ops.rotateSigningKey({ tenant: 'acme', id: DEVICE, roles: [] }), {
    code: 'ERR_PERMISSION_DENIED',
  })
})

test('a replica with a stale key cache still signs with the right kid', async () => {
  const { ops, assertion, deps } = await setup()
  const other = createAuthnOperations({ ...deps, settings: { ...deps.settings, signingKeyCacheMs: 3_600_000 } })
  const first = await other.issueToken({ tenant: 'acme', assertion: assertion(), audience: '', popPublicJwk: '' })
  assert.equal(decodeProtectedHeader(first.accessToken).kid, 'authn-signing-acme/1')
  await ops.rotateSigningKey(ADMIN)
  // `other` still caches version 1 as primary, but the KMS now signs with version 2.
  const second = await other.issueToken({ tenant: 'acme', assertion: assertion(), audience: '', popPublicJwk: '' })
  assert.equal(decodeProtectedHeader(second.accessToken).kid, 'authn-signing-acme/2')
  assert.equal((await ops.introspect(ADMIN, second.accessToken)).active, true)
  const jwks = publishedJwks(await deps.kms.getKey('acme', 'authn-signing-acme'), new Date(), 330)
  assert.equal(
    jwks.every((k) => k.alg === 'ES256' && k.use === 'sig' && k['d'] === undefined),
    true,
  )
})
