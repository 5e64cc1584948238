import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { bytesToBase64, concatBytes } from '@m2msec/crypto'
import {
  authenticationInfo,
  bootstrappingInfo,
  challenge,
  computeResponse,
  DEFAULT_UB_NONCE_TTL_MS,
  formatAuthorization,
  parseAuthenticationInfo,
  parseAuthorization,
  parseInitialRequest,
  verifyResponse,
  type DigestCredentials,
  type DigestQop,
  type UbAuthVector,
  type UbPending,
} from '../src/index.ts'
import { BSF_HOST, IMPI, SET1, SET1_BTID, SET1_DIGEST } from './support/vectors.ts'

const AV: UbAuthVector = { rand: SET1.rand, autn: SET1.autn, xres: SET1.res, ck: SET1.ck, ik: SET1.ik }
const NOW = Date.parse('2030-01-01T00:00:00Z')
const OPAQUE_BYTES = Uint8Array.from({ length: 16 }, (_, i) => i)
const OPAQUE = '000102030405060708090a0b0c0d0e0f'
const GET = { method: 'GET', uri: '/' }

function newPending(): UbPending {
  return challenge(AV, BSF_HOST, NOW, { impi: IMPI, randomBytes: () => OPAQUE_BYTES.slice() }).pending
}

/** An answer as a UE would build it; `password` defaults to set-1 RES. */
function answer(
  pending: UbPending,
  over: Partial<DigestCredentials> & { password?: Uint8Array; method?: string; body?: string } = {},
): string {
  const { password = SET1.res, method = 'GET', body, ...fields } = over
  const c: DigestCredentials = {
    username: IMPI,
    realm: BSF_HOST,
    nonce: pending.nonce,
    uri: '/',
    response: '',
    algorithm: 'AKAv1-MD5',
    qop: 'auth-int',
    nc: SET1_DIGEST.nc,
    cnonce: SET1_DIGEST.cnonce,
    opaque: pending.opaque,
    ...fields,
  }
  if (fields.response === undefined) {
    c.response = computeResponse({
      username: c.username,
      realm: c.realm,
      password,
      method,
      uri: c.uri,
      nonce: c.nonce,
      qop: c.qop as DigestQop,
      nc: c.nc,
      cnonce: c.cnonce,
      body,
    })
  }
  return formatAuthorization(c)
}

describe('challenge', () => {
  test('WWW-Authenticate in the TS 24.109 shape; nonce = base64(RAND || AUTN)', () => {
    const c = challenge(AV, BSF_HOST, NOW, { impi: IMPI, randomBytes: () => OPAQUE_BYTES.slice() })
    assert.equal(
      c.wwwAuthenticate,
      `Digest realm="${BSF_HOST}", nonce="${SET1_DIGEST.nonce}", algorithm=AKAv1-MD5, qop="auth-int", opaque="${OPAQUE}"`,
    )
    assert.equal(c.pending.nonce, bytesToBase64(concatBytes(SET1.rand, SET1.autn)))
    assert.equal(c.pending.impi, IMPI)
    assert.equal(c.pending.issuedAt, NOW)
    assert.equal(c.pending.expiresAt, NOW + DEFAULT_UB_NONCE_TTL_MS)
    assert.equal(c.pending.used, false)
    assert.deepEqual(c.pending.av.xres, SET1.res)
  })
  test('the pending record does not alias the caller’s AV', () => {
    const av = { ...AV, xres: SET1.res.slice() }
    const { pending } = challenge(av, BSF_HOST, NOW, { impi: IMPI })
    av.xres.fill(0)
    assert.deepEqual(pending.av.xres, SET1.res)
  })
  test('default opaque is 16 random bytes, different each time', () => {
    const a = challenge(AV, BSF_HOST, NOW, { impi: IMPI }).pending.opaque
    const b = challenge(AV, BSF_HOST, NOW, { impi: IMPI }).pending.opaque
    assert.match(a, /^[0-9a-f]{32}$/)
    assert.notEqual(a, b)
  })
  test('qop auth and custom ttl', () => {
    const c = challenge(AV, BSF_HOST, NOW, { impi: IMPI, qop: 'auth', ttlMs: 1000 })
    assert.ok(c.wwwAuthenticate.includes('qop="auth"'))
    assert.equal(c.pending.expiresAt, NOW + 1000)
  })
  test('bad inputs', () => {
    const bad: [string, () => unknown][] = [
      ['rand 15 bytes', () => challenge({ ...AV, rand: new Uint8Array(15) }, BSF_HOST, NOW, { impi: IMPI })],
      ['xres 3 bytes', () => challenge({ ...AV, xres: new Uint8Array(3) }, BSF_HOST, NOW, { impi: IMPI })],
      ['xres 17 bytes', () => challenge({ ...AV, xres: new Uint8Array(17) }, BSF_HOST, NOW, { impi: IMPI })],
      ['empty realm', () => challenge(AV, '', NOW, { impi: IMPI })],
      ['empty impi', () => challenge(AV, BSF_HOST, NOW, { impi: '' })],
      ['ttl 0', () => challenge(AV, BSF_HOST, NOW, { impi: IMPI, ttlMs: 0 })],
      ['now NaN', () => challenge(AV, BSF_HOST, NaN, { impi: IMPI })],
    ]
    for (const [name, fn] of bad) assert.throws(fn, { code: 'ERR_INVALID_ARGUMENT' }, name)
  })
})

describe('parseInitialRequest', () => {
  test('reads the IMPI of the TS 24.109 A.3 request', () => {
    assert.deepEqual(
      parseInitialRequest(`Digest username="${IMPI}", realm="${BSF_HOST}", nonce="", uri="/", response=""`),
      { impi: IMPI, realm: BSF_HOST },
    )
  })
  test('a non-empty nonce or response, or no username, is refused', () => {
    for (const h of [
      `Digest username="${IMPI}", realm="r", nonce="x", uri="/", response=""`,
      `Digest username="${IMPI}", realm="r", nonce="", uri="/", response="${'a'.repeat(32)}"`,
      'Digest username="", realm="r", nonce="", uri="/", response=""',
      'Basic Zm9vOmJhcg==',
    ]) {
      assert.throws(() => parseInitialRequest(h), { code: 'ERR_INVALID_ARGUMENT' })
    }
  })
})

describe('verifyResponse', () => {
  test('accepts the research-digest response (computed outside this code); Ks = CK || IK', () => {
    const pending = newPending()
    const header =
      `Digest username="${IMPI}", realm="${BSF_HOST}", nonce="${SET1_DIGEST.nonce}", uri="/", ` +
      `qop=auth-int, nc=00000001, cnonce="${SET1_DIGEST.cnonce}", response="${SET1_DIGEST.response}", ` +
      `opaque="${OPAQUE}", algorithm=AKAv1-MD5`
    const r = verifyResponse(pending, header, GET, NOW)
    assert.equal(r.kind, 'ok')
    assert.ok(r.kind === 'ok')
    assert.equal(r.impi, IMPI)
    assert.deepEqual(r.rand, SET1.rand)
    assert.deepEqual(r.ks, concatBytes(SET1.ck, SET1.ik))
    assert.equal(r.pending.used, true)
    assert.equal(pending.used, false, 'the input record is not mutated')
  })

  test('Authentication-Info: rspauth over the body (value computed by us with python3 hashlib)', () => {
    const r = verifyResponse(newPending(), answer(newPending()), GET, NOW)
    assert.ok(r.kind === 'ok')
    const body = bootstrappingInfo({ btid: SET1_BTID, lifetime: new Date('2030-01-02T03:04:05Z') })
    const info = parseAuthenticationInfo(authenticationInfo(r.pending, r.credentials, body))
    assert.deepEqual(info, {
      rspauth: 'e99c8f82b6b9af24c3c34163638c05e2',
      qop: 'auth-int',
      nc: '00000001',
      cnonce: SET1_DIGEST.cnonce,
      opaque: OPAQUE,
      nonce: SET1_DIGEST.nonce,
    })
  })

  test('wrong RES: ERR_UNAUTHENTICATED, challenge used up', () => {
    const pending = newPending()
    const res = SET1.res.slice()
    res[0] = (res[0] as number) ^ 1
    const r = verifyResponse(pending, answer(pending, { password: res }), GET, NOW)
    assert.ok(r.kind === 'failure')
    assert.equal(r.reason, 'wrong-response')
    assert.equal(r.error.code, 'ERR_UNAUTHENTICATED')
    assert.equal(r.pending.used, true)
    // Even the right answer is now a replay.
    const again = verifyResponse(r.pending, answer(pending), GET, NOW)
    assert.ok(again.kind === 'failure')
    assert.equal(again.error.code, 'ERR_REPLAY')
  })

  test('the same Authorization twice: ERR_REPLAY', () => {
    const header = answer(newPending())
    const first = verifyResponse(newPending(), header, GET, NOW)
    assert.equal(first.kind, 'ok')
    const second = verifyResponse(first.pending, header, GET, NOW + 1)
    assert.ok(second.kind === 'failure')
    assert.equal(second.reason, 'replayed')
    assert.equal(second.error.code, 'ERR_REPLAY')
  })

  test('expiry: last millisecond accepted, expiresAt refused with ERR_REPLAY', () => {
    const pending = newPending()
    assert.equal(verifyResponse(pending, answer(pending), GET, pending.expiresAt - 1).kind, 'ok')
    const r = verifyResponse(pending, answer(pending), GET, pending.expiresAt)
    assert.ok(r.kind === 'failure')
    assert.equal(r.reason, 'expired')
    assert.equal(r.error.code, 'ERR_REPLAY')
    assert.equal(r.pending.used, true)
  })

  test('username mismatch', () => {
    const pending = newPending()
    const r = verifyResponse(pending, answer(pending, { username: 'other@ims.example' }), GET, NOW)
    assert.ok(r.kind === 'failure')
    assert.equal(r.reason, 'username-mismatch')
    assert.equal(r.error.code, 'ERR_UNAUTHENTICATED')
    assert.equal(r.pending.used, true)
  })

  test('realm, uri, opaque, algorithm and qop must match the challenge and the request', () => {
    const pending = newPending()
    const { opaque: _opaque, ...withoutOpaque } = parseAuthorization(answer(pending))
    const cases: [string, string, { method: string; uri: string }][] = [
      ['realm', answer(pending, { realm: 'evil.example' }), GET],
      ['uri', answer(pending), { method: 'GET', uri: '/other' }],
      ['opaque', answer(pending, { opaque: 'ffff' }), GET],
      ['opaque', formatAuthorization(withoutOpaque), GET],
      ['algorithm', answer(pending, { algorithm: 'MD5' }), GET],
      ['qop', answer(pending, { qop: 'auth' }), GET],
    ]
    for (const [param, header, request] of cases) {
      const r = verifyResponse(pending, header, request, NOW)
      assert.ok(r.kind === 'failure', param)
      assert.equal(r.reason, 'parameter-mismatch', param)
      assert.equal(r.error.code, 'ERR_UNAUTHENTICATED', param)
      assert.equal(r.error.details.param, param)
    }
  })

  test('auth-int covers the request body', () => {
    const pending = newPending()
    const r = verifyResponse(pending, answer(pending), { ...GET, body: 'tampered' }, NOW)
    assert.ok(r.kind === 'failure')
    assert.equal(r.reason, 'wrong-response')
    assert.equal(verifyResponse(pending, answer(pending, { body: 'b' }), { ...GET, body: 'b' }, NOW).kind, 'ok')
  })

  test('another nonce or a malformed header leaves the record untouched', () => {
    const pending = newPending()
    const other = verifyResponse(pending, answer(pending, { nonce: 'AAAA' }), GET, NOW)
    assert.ok(other.kind === 'failure')
    assert.equal(other.reason, 'nonce-mismatch')
    assert.equal(other.error.code, 'ERR_UNAUTHENTICATED')
    assert.equal(other.pending.used, false)
    for (const header of ['Digest', 'Basic x', `Digest username="${IMPI}"`, 'x'.repeat(10_000)]) {
      const r = verifyResponse(pending, header, GET, NOW)
      assert.ok(r.kind === 'failure')
      assert.equal(r.reason, 'malformed')
      assert.equal(r.error.code, 'ERR_INVALID_ARGUMENT')
      assert.equal(r.pending.used, false)
    }
  })

  test('an empty response for a real nonce is malformed (and uses the challenge up)', () => {
    const pending = newPending()
    const r = verifyResponse(pending, answer(pending, { response: '' }), GET, NOW)
    assert.ok(r.kind === 'failure')
    assert.equal(r.reason, 'malformed')
    assert.equal(r.pending.used, true)
  })

  test('AUTS with a digest over the empty password: resync', () => {
    const pending = newPending()
    const auts = Uint8Array.from({ length: 14 }, (_, i) => 0xa0 + i)
    const r = verifyResponse(
      pending,
      answer(pending, { password: new Uint8Array(0), auts: bytesToBase64(auts) }),
      GET,
      NOW,
    )
    assert.ok(r.kind === 'resync')
    assert.deepEqual(r.auts, auts)
    assert.deepEqual(r.rand, SET1.rand)
    assert.equal(r.impi, IMPI)
    assert.equal(r.pending.used, true)
  })

  test('AUTS with a digest over RES (not empty) is a wrong response', () => {
    const pending = newPending()
    const r = verifyResponse(pending, answer(pending, { auts: bytesToBase64(new Uint8Array(14)) }), GET, NOW)
    assert.ok(r.kind === 'failure')
    assert.equal(r.reason, 'wrong-response')
  })

  test('AUTS that is not base64 of 14 bytes is malformed', () => {
    for (const auts of [bytesToBase64(new Uint8Array(13)), bytesToBase64(new Uint8Array(15)), 'not base64!']) {
      const pending = newPending()
      const r = verifyResponse(pending, answer(pending, { password: new Uint8Array(0), auts }), GET, NOW)
      assert.ok(r.kind === 'failure')
      assert.equal(r.reason, 'malformed')
      assert.equal(r.error.code, 'ERR_INVALID_ARGUMENT')
    }
  })

  test('empty password without AUTS: the UE rejected AUTN (network authentication failure)', () => {
    const pending = newPending()
    const r = verifyResponse(pending, answer(pending, { password: new Uint8Array(0) }), GET, NOW)
    assert.ok(r.kind === 'failure')
    assert.equal(r.reason, 'network-authentication-failure')
    assert.equal(r.error.code, 'ERR_UNAUTHENTICATED')
  })

  test('failure messages carry no secret material', () => {
    const pending = newPending()
    const r = verifyResponse(pending, answer(pending, { password: new Uint8Array(8) }), GET, NOW)
    assert.ok(r.kind === 'failure')
    const text = `${r.error.message} ${JSON.stringify(r.error.details)}`
    for (const secret of [SET1_DIGEST.response, pending.nonce, IMPI, OPAQUE]) assert.ok(!text.includes(secret))
  })
})
