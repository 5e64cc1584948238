/**
 * GBA credentials with in-memory fakes: a subscription (IMPI) bound to an entity, a B-TID
 * resolved over a fake Zn the first time (then registered as a session credential and used
 * without Zn), and the refusals: no subscription, another subscriber's or tenant's B-TID,
 * expired sessions (ERR_TOKEN_EXPIRED), revoked sessions and subscriptions, the session cap.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import { createAuthnOperations, type AuthnOperations } from '../../src/domain/operations/index.ts'
import type { GbaMafKey, GbaZn } from '../../src/domain/ports.ts'
import { LIMITS } from '../../src/domain/model.ts'
import { serverProofInput } from '../../src/domain/tokens.ts'
import { ADMIN, AUD, codeOf, createWorld, type World } from './world.ts'

const IMPI = '001010000000001@ims.mnc001.mcc001.3gppnetwork.org'
const OTHER_IMPI = '001010000000002@ims.mnc001.mcc001.3gppnetwork.org'
const HOUR = 3_600_000

interface Session {
  readonly btid: string
  readonly key: Buffer
  readonly tenant: string
  readonly impi: string
  readonly expiresAt: number
}

/** A BSF with sessions whose Km the test knows; counts Zn calls. */
function fakeZn(world: World) {
  const sessions = new Map<string, Session>()
  let n = 0
  const zn: GbaZn & { calls: number } = {
    calls: 0,
    async mafKey(tenant, btid): Promise<GbaMafKey> {
      zn.calls++
      const s = sessions.get(btid)
      if (s === undefined || s.tenant !== tenant) throw new M2msecError('ERR_NOT_FOUND', 'unknown B-TID')
      if (s.expiresAt <= world.now) {
        throw new M2msecError('ERR_FAILED_PRECONDITION', 'expired', { reason: 'BTID_EXPIRED' })
      }
      return {
        keyId: `gbanaf-${btid.slice(0, 8).replace(/[^A-Za-z0-9]/g, 'x')}`,
        impi: s.impi,
        bootstrappedAt: new Date(world.now - 1000),
        expiresAt: new Date(s.expiresAt),
      }
    },
  }
  return {
    zn,
    bootstrap(impi = IMPI, tenant = 'acme'): Session {
      const btid = `${randomBytes(16).toString('base64')}@bsf.example.org`
      const s = { btid, key: randomBytes(32), tenant, impi, expiresAt: world.now + HOUR }
      sessions.set(btid, s)
      world.deps.kms.putHmacKey(tenant, `gbanaf-${btid.slice(0, 8).replace(/[^A-Za-z0-9]/g, 'x')}`, s.key)
      n++
      return s
    },
    get count() {
      return n
    },
  }
}

function assertion(world: World, entity: string, s: Session): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const t = Math.floor(world.now / 1000)
  const claims = { iss: entity, sub: entity, aud: AUD, iat: t, exp: t + 60, jti: randomBytes(12).toString('base64url') }
  const input = `${b64({ alg: 'HS256', kid: s.btid })}.${b64(claims)}`
  return `${input}.${createHmac('sha256', s.key).update(input).digest('base64url')}`
}

async function setup(): Promise<{ world: World; ops: AuthnOperations; bsf: ReturnType<typeof fakeZn> }> {
  const world = await createWorld()
  const bsf = fakeZn(world)
  const ops = createAuthnOperations({ ...world.deps, gba: bsf.zn })
  await ops.registerEntity(ADMIN, {
    entityId: 'urn:imei:490154203237518',
    kind: 'DEVICE',
    roles: ['device'],
    labels: {},
  })
  await ops.addCredential(ADMIN, {
    entityId: 'urn:imei:490154203237518',
    credentialId: 'usim',
    credential: { type: 'GBA', impi: IMPI },
  })
  return { world, ops, bsf }
}

const DEV = 'urn:imei:490154203237518'

test('a B-TID is resolved over Zn once, registered as a session credential, then used without Zn', async () => {
  const { world, ops, bsf } = await setup()
  const s = bsf.bootstrap()
  const signed = assertion(world, DEV, s)
  const issued = await ops.issueToken({ tenant: 'acme', assertion: signed, audience: '', popPublicJwk: '' })
  assert.equal(issued.loa, 2)
  assert.equal(issued.proofType, 'HMAC_SHA256')
  const jti = (JSON.parse(Buffer.from(signed.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }).jti
  const expected = createHmac('sha256', s.key).update(serverProofInput(jti, issued.tokenId)).digest('base64url')
  assert.equal(issued.proof, expected, 'the server proof is made with Km')
  assert.equal(bsf.zn.calls, 1)
  const entity = await ops.getEntity(ADMIN, DEV)
  const session = entity.credentials.find((c) => c.id === s.btid)
  assert.equal(session?.type, 'GBA')
  assert.equal(session?.gbaImpi, IMPI)
  assert.equal(session?.gbaSubscriptionId, 'usim')
  assert.equal(session?.notAfter, new Date(s.expiresAt).toISOString())

  await ops.issueToken({ tenant: 'acme', assertion: assertion(world, DEV, s), audience: '', popPublicJwk: '' })
  assert.equal(bsf.zn.calls, 1, 'the registered session needs no Zn call')
})

test('refusals: no subscription, another subscriber, another tenant, bad signature, wrong alg', async () => {
  const { world, ops, bsf } = await setup()
  await ops.registerEntity(ADMIN, { entityId: 'urn:imei:490154203237519', kind: 'DEVICE', roles: [], labels: {} })
  const s = bsf.bootstrap()
  const issue = (a: string) => ops.issueToken({ tenant: 'acme', assertion: a, audience: '', popPublicJwk: '' })
  assert.equal(await codeOf(issue(assertion(world, 'urn:imei:490154203237519', s))), 'ERR_TOKEN_INVALID')
  assert.equal(await codeOf(issue(assertion(world, DEV, bsf.bootstrap(OTHER_IMPI)))), 'ERR_TOKEN_INVALID')
  assert.equal(await codeOf(issue(assertion(world, DEV, bsf.bootstrap(IMPI, 'globex')))), 'ERR_TOKEN_INVALID')
  assert.equal(await codeOf(issue(assertion(world, DEV, { ...s, key: randomBytes(32) }))), 'ERR_TOKEN_INVALID')
  const entity = await ops.getEntity(ADMIN, DEV)
  assert.equal(entity.credentials.length, 1, 'nothing registered for a refused assertion')
  // A subscription is not a key: its id as kid is refused.
  assert.equal(await codeOf(issue(assertion(world, DEV, { ...s, btid: 'usim' }))), 'ERR_TOKEN_INVALID')
})

test('an expired session is ERR_TOKEN_EXPIRED, before and after registration', async () => {
  const { world, ops, bsf } = await setup()
  const fresh = bsf.bootstrap()
  const stale = bsf.bootstrap()
  const issue = (a: string) => ops.issueToken({ tenant: 'acme', assertion: a, audience: '', popPublicJwk: '' })
  await issue(assertion(world, DEV, fresh))
  world.now += HOUR + 1000
  assert.equal(await codeOf(issue(assertion(world, DEV, stale))), 'ERR_TOKEN_EXPIRED', 'expired at the BSF')
  assert.equal(await codeOf(issue(assertion(world, DEV, fresh))), 'ERR_TOKEN_EXPIRED', 'registered, now expired')
})

test('revoking the session or the subscription stops the B-TID; a revoked session is not re-registered', async () => {
  const { world, ops, bsf } = await setup()
  const issue = (a: string) => ops.issueToken({ tenant: 'acme', assertion: a, audience: '', popPublicJwk: '' })
  const s = bsf.bootstrap()
  await issue(assertion(world, DEV, s))
  await ops.revokeCredential(ADMIN, { entityId: DEV, credentialId: s.btid })
  assert.equal(await codeOf(issue(assertion(world, DEV, s))), 'ERR_TOKEN_INVALID')
  const t = bsf.bootstrap()
  await issue(assertion(world, DEV, t))
  await ops.revokeCredential(ADMIN, { entityId: DEV, credentialId: 'usim' })
  assert.equal(await codeOf(issue(assertion(world, DEV, t))), 'ERR_TOKEN_INVALID')
  assert.equal(await codeOf(issue(assertion(world, DEV, bsf.bootstrap()))), 'ERR_TOKEN_INVALID')
})

test(`at most ${LIMITS.gbaSessions} sessions are kept; expired ones go first, then the oldest`, async () => {
  const { world, ops, bsf } = await setup()
  const issue = (a: string) => ops.issueToken({ tenant: 'acme', assertion: a, audience: '', popPublicJwk: '' })
  const all: Session[] = []
  for (let i = 0; i < LIMITS.gbaSessions + 2; i++) {
    const s = bsf.bootstrap()
    all.push(s)
    await issue(assertion(world, DEV, s))
    world.now += 1000
  }
  const ids = (await ops.getEntity(ADMIN, DEV)).credentials.map((c) => c.id)
  assert.equal(ids.length, 1 + LIMITS.gbaSessions)
  assert.ok(!ids.includes(all[0]?.btid ?? ''))
  assert.ok(ids.includes(all.at(-1)?.btid ?? ''))
  // The dropped session still works: it is looked up again.
  const calls = bsf.zn.calls
  await issue(assertion(world, DEV, all[0] as Session))
  assert.equal(bsf.zn.calls, calls + 1)
})

test('without Zn configured a B-TID is refused like an unknown kid; GBA IMPIs are validated', async () => {
  const world = await createWorld()
  await world.ops.registerEntity(ADMIN, { entityId: DEV, kind: 'DEVICE', roles: [], labels: {} })
  await world.ops.addCredential(ADMIN, { entityId: DEV, credential: { type: 'GBA', impi: IMPI } })
  const s = { btid: `${randomBytes(16).toString('base64')}@bsf.example.org`, key: randomBytes(32) } as Session
  assert.equal(
    await codeOf(
      world.ops.issueToken({ tenant: 'acme', assertion: assertion(world, DEV, s), audience: '', popPublicJwk: '' }),
    ),
    'ERR_TOKEN_INVALID',
  )
  assert.equal(
    await codeOf(world.ops.addCredential(ADMIN, { entityId: DEV, credential: { type: 'GBA', impi: 'has space' } })),
    'ERR_INVALID_ARGUMENT',
  )
  assert.equal(
    await codeOf(world.ops.addCredential(ADMIN, { entityId: DEV, credential: { type: 'GBA', impi: IMPI } })),
    'ERR_ALREADY_EXISTS',
  )
})
