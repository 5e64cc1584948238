/**
 * Whole Ub runs in memory: UE (simulated USIM + ue.ts) against a BSF built from ub.ts
 * (test/support/in-memory-bsf.ts) and a MILENAGE home environment, with TS 35.208 test set 1.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import {
  checkSqnFreshness,
  concatBytes,
  createSqnArrayState,
  highestAcceptedSqn,
  UA_PROTOCOL_ID,
  type SqnFreshnessPolicy,
} from '@m2msec/crypto'
import {
  answerChallenge,
  completeBootstrap,
  createSimulatedUsim,
  deriveSessionKsNaf,
  GBA_TMPI_PRODUCT_TOKEN,
  initialAuthorization,
  parseAuthorization,
  verifyAuthenticationInfo,
  type UbAnswer,
  type UeBootstrapSession,
  type Usim,
} from '../src/index.ts'
import { createTestHe, type TestHe } from './support/he.ts'
import { createInMemoryBsf, type InMemoryBsf, type UbHttpResponse } from './support/in-memory-bsf.ts'
import { BSF_HOST, IMPI, NAF_FQDN, SET1, SET1_BTID, SET1_KS_NAF } from './support/vectors.ts'

const NO_DELTA: SqnFreshnessPolicy = { indBits: 5 }
const IND = Number(SET1.sqn & 31n) // set 1's SQN has IND 7 with 5 IND bits
const KEY_LIFETIME_MS = 3_600_000
const T0 = Date.parse('2030-01-01T00:00:00Z')

/** Randomness that hands out `queued` first (e.g. set 1's RAND), then real random bytes. */
function queuedRandom(queued: Uint8Array[]): (n: number) => Uint8Array {
  return (n) => {
    const next = queued.shift()
    if (next !== undefined) {
      assert.equal(next.length, n)
      return next.slice()
    }
    return new Uint8Array(randomBytes(n))
  }
}

interface Setup {
  bsf: InMemoryBsf
  he: TestHe
  clock: { now: number }
}

/** A BSF whose first AV is exactly test set 1 (RAND, SQN, AMF). */
function setup(options: { k?: Uint8Array; nonceTtlMs?: number } = {}): Setup {
  const clock = { now: T0 }
  const he = createTestHe({ k: options.k ?? SET1.k, opc: SET1.opc, amf: SET1.amf, sqnHe: SET1.sqn - 32n, ind: IND })
  const bsf = createInMemoryBsf({
    he,
    realm: BSF_HOST,
    bsfHost: BSF_HOST,
    now: () => clock.now,
    randomBytes: queuedRandom([SET1.rand]),
    keyLifetimeMs: KEY_LIFETIME_MS,
    ...(options.nonceTtlMs === undefined ? {} : { nonceTtlMs: options.nonceTtlMs }),
  })
  return { bsf, he, clock }
}

function get(bsf: InMemoryBsf, authorization: string): Promise<UbHttpResponse> {
  return bsf.handle({ method: 'GET', uri: '/', authorization })
}

/** Runs the UE side to the end, following resyncs; returns the session and the statuses seen. */
async function bootstrap(bsf: InMemoryBsf, usim: Usim): Promise<{ session: UeBootstrapSession; statuses: number[] }> {
  const statuses: number[] = []
  let res = await get(bsf, initialAuthorization({ impi: IMPI, realm: BSF_HOST }))
  for (let round = 0; round < 3; round++) {
    statuses.push(res.status)
    assert.equal(res.status, 401)
    const a = await answerChallenge({ impi: IMPI, wwwAuthenticate: res.headers['www-authenticate'] as string, usim })
    res = await get(bsf, a.authorization)
    if (a.kind === 'response') {
      statuses.push(res.status)
      assert.equal(res.status, 200, `BSF refused: ${res.reason}`)
      verifyAuthenticationInfo(a.state, res.headers['authentication-info'] as string, res.body)
      return { session: completeBootstrap(a.state, res.body), statuses }
    }
    assert.equal(a.kind, 'resync')
  }
  throw new Error('no bootstrap after 3 rounds')
}

function bsfKsNaf(bsf: InMemoryBsf, btid: string): Uint8Array {
  const s = bsf.sessions.get(btid)
  assert.ok(s, 'BSF has the session')
  return deriveSessionKsNaf(s, NAF_FQDN, UA_PROTOCOL_ID.httpDigest)
}

describe('Ub in memory, test set 1', () => {
  test('success: 401 then 200, B-TID and Ks_NAF match the research vectors on both sides', async () => {
    const { bsf } = setup()
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const { session, statuses } = await bootstrap(bsf, usim)
    assert.deepEqual(statuses, [401, 200])
    assert.equal(session.btid, SET1_BTID)
    assert.equal(session.lifetime.getTime(), T0 + KEY_LIFETIME_MS)
    assert.deepEqual(session.ks, concatBytes(SET1.ck, SET1.ik))
    const ueKsNaf = deriveSessionKsNaf(session, NAF_FQDN, UA_PROTOCOL_ID.httpDigest)
    assert.deepEqual(ueKsNaf, SET1_KS_NAF)
    assert.deepEqual(bsfKsNaf(bsf, session.btid), ueKsNaf)
    // Ks_int_NAF and another Ua id also agree.
    const s = bsf.sessions.get(session.btid)!
    assert.deepEqual(
      deriveSessionKsNaf(session, NAF_FQDN, UA_PROTOCOL_ID.oneM2mTlsPskAes128CbcSha256, 'gba-u'),
      deriveSessionKsNaf(s, NAF_FQDN, UA_PROTOCOL_ID.oneM2mTlsPskAes128CbcSha256, 'gba-u'),
    )
    assert.equal(highestAcceptedSqn(usim.sqnState(), NO_DELTA), SET1.sqn)
  })

  test('the initial request names the IMPI with empty nonce and response', () => {
    assert.equal(
      initialAuthorization({ impi: IMPI, realm: BSF_HOST }),
      `Digest username="${IMPI}", realm="${BSF_HOST}", nonce="", uri="/", response=""`,
    )
    assert.equal(GBA_TMPI_PRODUCT_TOKEN, '3gpp-gba-tmpi')
    assert.throws(() => initialAuthorization({ impi: '', realm: BSF_HOST }), { code: 'ERR_INVALID_ARGUMENT' })
  })

  test('resync: USIM SQN ahead, AUTS, BSF recovers SQN_MS and re-challenges, then 200', async () => {
    const { bsf, he } = setup()
    const ahead = SET1.sqn + 0x100n // same IND, higher SEQ
    const seen = checkSqnFreshness(createSqnArrayState(NO_DELTA), ahead, NO_DELTA)
    assert.ok(seen.accepted)
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA, sqnState: seen.state })
    const { session, statuses } = await bootstrap(bsf, usim)
    assert.deepEqual(statuses, [401, 401, 200])
    assert.equal(he.sqnHe(), ahead + 32n, 'HE continued from SQN_MS')
    assert.equal(highestAcceptedSqn(usim.sqnState(), NO_DELTA), ahead + 32n)
    assert.notEqual(session.btid, SET1_BTID, 'fresh RAND after resync')
    assert.deepEqual(deriveSessionKsNaf(session, NAF_FQDN, UA_PROTOCOL_ID.httpDigest), bsfKsNaf(bsf, session.btid))
  })

  test('resync with the default Δ policy: a fresh card pulls the HE down to its SQN_MS', async () => {
    const { bsf, he } = setup()
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc })
    const { session, statuses } = await bootstrap(bsf, usim)
    assert.deepEqual(statuses, [401, 401, 200])
    assert.equal(he.sqnHe(), 32n + BigInt(IND))
    assert.deepEqual(deriveSessionKsNaf(session, NAF_FQDN, UA_PROTOCOL_ID.httpDigest), bsfKsNaf(bsf, session.btid))
  })

  test('a tampered AUTS fails MAC-S in the HE: 403, no new challenge', async () => {
    const { bsf } = setup()
    const ahead = checkSqnFreshness(createSqnArrayState(NO_DELTA), SET1.sqn + 0x100n, NO_DELTA)
    assert.ok(ahead.accepted)
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA, sqnState: ahead.state })
    const first = await get(bsf, initialAuthorization({ impi: IMPI, realm: BSF_HOST }))
    const a = await answerChallenge({ impi: IMPI, wwwAuthenticate: first.headers['www-authenticate'] as string, usim })
    assert.equal(a.kind, 'resync')
    // Flip one AUTS bit while keeping the (empty-password) digest valid: the digest does not cover auts.
    const auts = parseAuthorization(a.authorization).auts as string
    const flipped = `${auts[0] === 'A' ? 'B' : 'A'}${auts.slice(1)}`
    const res = await get(bsf, a.authorization.replace(`auts="${auts}"`, `auts="${flipped}"`))
    assert.equal(res.status, 403)
    assert.equal(res.error, 'ERR_MAC_INVALID')
  })

  test('wrong RES: 403 ERR_UNAUTHENTICATED, no session', async () => {
    const { bsf } = setup()
    const real = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const liar: Usim = {
      async authenticate(rand, autn) {
        const r = await real.authenticate(rand, autn)
        if (r.kind !== 'success') return r
        const res = r.res.slice()
        res[7] = (res[7] as number) ^ 0x80
        return { ...r, res }
      },
    }
    const first = await get(bsf, initialAuthorization({ impi: IMPI, realm: BSF_HOST }))
    const a = await answerChallenge({
      impi: IMPI,
      wwwAuthenticate: first.headers['www-authenticate'] as string,
      usim: liar,
    })
    const res = await get(bsf, a.authorization)
    assert.equal(res.status, 403)
    assert.equal(res.error, 'ERR_UNAUTHENTICATED')
    assert.equal(res.reason, 'wrong-response')
    assert.equal(bsf.sessions.size, 0)
  })

  test('a replayed Authorization: ERR_REPLAY, nothing changes', async () => {
    const { bsf } = setup()
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const first = await get(bsf, initialAuthorization({ impi: IMPI, realm: BSF_HOST }))
    const a = await answerChallenge({ impi: IMPI, wwwAuthenticate: first.headers['www-authenticate'] as string, usim })
    assert.equal((await get(bsf, a.authorization)).status, 200)
    const sessionsBefore = [...bsf.sessions.keys()]
    const replay = await get(bsf, a.authorization)
    assert.equal(replay.status, 403)
    assert.equal(replay.error, 'ERR_REPLAY')
    assert.equal(replay.reason, 'replayed')
    assert.deepEqual([...bsf.sessions.keys()], sessionsBefore)
  })

  test('expired nonce: ERR_REPLAY; the UE starts over and succeeds', async () => {
    const { bsf, clock } = setup({ nonceTtlMs: 30_000 })
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const first = await get(bsf, initialAuthorization({ impi: IMPI, realm: BSF_HOST }))
    const a = await answerChallenge({ impi: IMPI, wwwAuthenticate: first.headers['www-authenticate'] as string, usim })
    clock.now += 30_000
    const late = await get(bsf, a.authorization)
    assert.equal(late.status, 403)
    assert.equal(late.error, 'ERR_REPLAY')
    assert.equal(late.reason, 'expired')
    const { statuses, session } = await bootstrap(bsf, usim)
    assert.deepEqual(statuses, [401, 200])
    assert.deepEqual(deriveSessionKsNaf(session, NAF_FQDN, UA_PROTOCOL_ID.httpDigest), bsfKsNaf(bsf, session.btid))
  })

  test('a BSF that does not know K: the USIM rejects AUTN, the BSF sees a network authentication failure', async () => {
    const { bsf } = setup({ k: new Uint8Array(16).fill(0x42) })
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const first = await get(bsf, initialAuthorization({ impi: IMPI, realm: BSF_HOST }))
    const a: UbAnswer = await answerChallenge({
      impi: IMPI,
      wwwAuthenticate: first.headers['www-authenticate'] as string,
      usim,
    })
    assert.ok(a.kind === 'network-failure')
    assert.equal(a.error.code, 'ERR_MAC_INVALID')
    assert.equal(parseAuthorization(a.authorization).auts, undefined)
    const res = await get(bsf, a.authorization)
    assert.equal(res.status, 403)
    assert.equal(res.reason, 'network-authentication-failure')
    assert.equal(highestAcceptedSqn(usim.sqnState(), NO_DELTA), 0n, 'USIM state unchanged')
  })

  test('malformed requests to the BSF: 400 ERR_INVALID_ARGUMENT, no challenge issued', async () => {
    const { bsf } = setup()
    const bad = [
      'Basic Zm9vOmJhcg==',
      'Digest',
      `Digest username="${IMPI}", realm="r", nonce="", uri="/"`,
      `Digest username="", realm="r", nonce="", uri="/", response=""`,
      `Digest username="${IMPI}", realm="r", nonce="", uri="/", response="", algorithm=SHA-512-256`,
      `Digest username="${IMPI}", realm="r", nonce="", uri="/", response="", response=""`,
      `Digest username="${IMPI}\r\nX: 1", realm="r", nonce="", uri="/", response=""`,
      `Digest username="${'a'.repeat(5000)}", realm="r", nonce="", uri="/", response=""`,
    ]
    for (const header of bad) {
      const res = await get(bsf, header)
      assert.equal(res.status, 400, header.slice(0, 40))
      assert.equal(res.error, 'ERR_INVALID_ARGUMENT')
    }
    assert.equal((await bsf.handle({ method: 'GET', uri: '/' })).status, 400)
    assert.equal(bsf.pending.size, 0)
  })
})

describe('UE side checks', () => {
  const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
  const challengeWith = (params: string) => `Digest realm="${BSF_HOST}", ${params}, qop="auth-int", opaque="o"`

  test('a challenge that is not AKAv1-MD5, or whose nonce cannot hold RAND || AUTN, is refused', async () => {
    const nonce = Buffer.from(concatBytes(SET1.rand, SET1.autn)).toString('base64')
    for (const header of [
      challengeWith(`nonce="${nonce}", algorithm=MD5`),
      challengeWith(`nonce="${nonce}"`), // algorithm defaults to MD5
      challengeWith(`nonce="${Buffer.from(SET1.rand).toString('base64')}", algorithm=AKAv1-MD5`),
      challengeWith('nonce="not base64!", algorithm=AKAv1-MD5'),
    ]) {
      await assert.rejects(answerChallenge({ impi: IMPI, wwwAuthenticate: header, usim }), {
        code: 'ERR_INVALID_ARGUMENT',
      })
    }
  })

  test('server data after RAND || AUTN in the nonce is ignored', async () => {
    const fresh = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const nonce = Buffer.from(concatBytes(SET1.rand, SET1.autn, Uint8Array.of(1, 2, 3))).toString('base64')
    const a = await answerChallenge({
      impi: IMPI,
      wwwAuthenticate: challengeWith(`nonce="${nonce}", algorithm=AKAv1-MD5`),
      usim: fresh,
    })
    assert.ok(a.kind === 'response')
    assert.deepEqual(a.state.res, SET1.res)
  })

  test('rspauth, echoed fields and body are checked; BootstrappingInfo must parse', async () => {
    const { bsf } = setup()
    const fresh = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const first = await get(bsf, initialAuthorization({ impi: IMPI, realm: BSF_HOST }))
    const a = await answerChallenge({
      impi: IMPI,
      wwwAuthenticate: first.headers['www-authenticate'] as string,
      usim: fresh,
    })
    assert.ok(a.kind === 'response')
    const ok = await get(bsf, a.authorization)
    const info = ok.headers['authentication-info'] as string
    verifyAuthenticationInfo(a.state, info, ok.body)
    assert.throws(() => verifyAuthenticationInfo(a.state, info, `${ok.body} `), { code: 'ERR_UNAUTHENTICATED' })
    assert.throws(
      () =>
        verifyAuthenticationInfo(
          a.state,
          info.replace(/rspauth="(.)/, (_m, c: string) => `rspauth="${c === '0' ? '1' : '0'}`),
          ok.body,
        ),
      {
        code: 'ERR_UNAUTHENTICATED',
      },
    )
    assert.throws(() => verifyAuthenticationInfo(a.state, info.replace('nc=00000001', 'nc=00000002'), ok.body), {
      code: 'ERR_UNAUTHENTICATED',
    })
    assert.throws(() => verifyAuthenticationInfo(a.state, 'rspauth=', ok.body), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => completeBootstrap(a.state, '<html/>'), { code: 'ERR_INVALID_ARGUMENT' })
  })
})
