import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { base64ToBytes, bytesToHex, concatBytes } from '@m2msec/crypto'
import {
  computeResponse,
  computeResponseWithHa1,
  computeRspauth,
  digestHa1,
  formatAuthenticationInfo,
  formatAuthorization,
  formatWwwAuthenticate,
  MAX_DIGEST_HEADER_LENGTH,
  parseAuthenticationInfo,
  parseAuthorization,
  parseWwwAuthenticate,
} from '../src/index.ts'
import { BSF_HOST, IMPI, SET1, SET1_DIGEST, TRACE } from './support/vectors.ts'

// RFC 2617 §3.5, verbatim apart from line folding.
const RFC2617_CHALLENGE =
  'Digest realm="testrealm@host.com", qop="auth,auth-int", ' +
  'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
const RFC2617_AUTHORIZATION =
  'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", ' +
  'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", ' +
  'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"'

describe('RFC 2617 §3.5 example', () => {
  test('challenge parses', () => {
    assert.deepEqual(parseWwwAuthenticate(RFC2617_CHALLENGE), {
      realm: 'testrealm@host.com',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      algorithm: 'MD5',
      qop: ['auth', 'auth-int'],
      opaque: '5ccc069c403ebaf9f0171e9517f40e41',
    })
  })
  test('credentials parse and the published response recomputes', () => {
    const c = parseAuthorization(RFC2617_AUTHORIZATION)
    assert.equal(c.username, 'Mufasa')
    assert.equal(c.uri, '/dir/index.html')
    assert.equal(c.qop, 'auth')
    assert.equal(c.nc, '00000001')
    assert.equal(c.cnonce, '0a4f113b')
    const response = computeResponse({
      username: c.username,
      realm: c.realm,
      password: 'Circle Of Life',
      method: 'GET',
      uri: c.uri,
      nonce: c.nonce,
      qop: c.qop,
      nc: c.nc,
      cnonce: c.cnonce,
    })
    assert.equal(response, '6629fae49393a05397450978507c4ef1')
    assert.equal(response, c.response)
  })
  test('a verifier holding only H(A1) gets the published response', () => {
    const c = parseAuthorization(RFC2617_AUTHORIZATION)
    const ha1 = digestHa1(c.username, c.realm, 'Circle Of Life')
    const common = { username: c.username, realm: c.realm, method: 'GET', uri: c.uri, nonce: c.nonce, qop: c.qop }
    assert.equal(computeResponseWithHa1({ ...common, ha1, nc: c.nc, cnonce: c.cnonce }), c.response)
    assert.notEqual(computeResponseWithHa1({ ...common, ha1, nc: '00000002', cnonce: c.cnonce }), c.response)
  })
  test('format then parse gives the same credentials', () => {
    const c = parseAuthorization(RFC2617_AUTHORIZATION)
    assert.deepEqual(parseAuthorization(formatAuthorization(c)), c)
  })
  test('without qop: the RFC 2069 form (value computed by us with python3 hashlib)', () => {
    // RFC 2069's own example value is known to be wrong, so this one is ours.
    const response = computeResponse({
      username: 'Mufasa',
      realm: 'testrealm@host.com',
      password: 'Circle Of Life',
      method: 'GET',
      uri: '/dir/index.html',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
    })
    assert.equal(response, '670fd8c2df070c60b045671b8b24ff02')
  })
})

describe('AKAv1-MD5 (RFC 3310): password = RES octets', () => {
  test('research-digest worked example (set-1 RES, qop=auth-int, empty body)', () => {
    const response = computeResponse({
      username: IMPI,
      realm: BSF_HOST,
      password: SET1.res,
      method: 'GET',
      uri: '/',
      nonce: SET1_DIGEST.nonce,
      qop: SET1_DIGEST.qop,
      nc: SET1_DIGEST.nc,
      cnonce: SET1_DIGEST.cnonce,
      algorithm: 'AKAv1-MD5',
    })
    assert.equal(response, SET1_DIGEST.response)
    // RES as hex text would be a different password: RFC 3310 uses the raw octets.
    assert.notEqual(
      computeResponse({
        username: IMPI,
        realm: BSF_HOST,
        password: bytesToHex(SET1.res),
        method: 'GET',
        uri: '/',
        nonce: SET1_DIGEST.nonce,
        qop: 'auth-int',
        nc: '00000001',
        cnonce: SET1_DIGEST.cnonce,
      }),
      SET1_DIGEST.response,
    )
  })
  test('the nonce of the research example is base64(RAND || AUTN) of set 1', () => {
    assert.deepEqual(base64ToBytes(SET1_DIGEST.nonce), concatBytes(SET1.rand, SET1.autn))
  })
  test('auth-int hashes the body, auth does not', () => {
    const base = {
      username: IMPI,
      realm: BSF_HOST,
      password: SET1.res,
      method: 'GET',
      uri: '/',
      nonce: SET1_DIGEST.nonce,
      nc: '00000001',
      cnonce: 'abc',
    }
    const intEmpty = computeResponse({ ...base, qop: 'auth-int' })
    assert.equal(computeResponse({ ...base, qop: 'auth-int', body: new Uint8Array(0) }), intEmpty)
    assert.notEqual(computeResponse({ ...base, qop: 'auth-int', body: 'x' }), intEmpty)
    assert.equal(computeResponse({ ...base, qop: 'auth', body: 'x' }), computeResponse({ ...base, qop: 'auth' }))
  })
})

describe('real BSF trace (fasferraz/GBA_ME)', () => {
  const header =
    `Digest realm="${TRACE.realm}", qop="auth-int", nonce="${TRACE.nonce}", ` +
    `opaque="${TRACE.opaque}", algorithm=AKAv1-MD5`
  test('challenge parses; nonce = RAND || AUTN printed by the trace, 32 bytes', () => {
    const ch = parseWwwAuthenticate(header)
    assert.equal(ch.algorithm, 'AKAv1-MD5')
    assert.deepEqual(ch.qop, ['auth-int'])
    assert.equal(ch.opaque, TRACE.opaque)
    assert.deepEqual(base64ToBytes(ch.nonce), concatBytes(TRACE.rand, TRACE.autn))
  })
  test('Authentication-Info of the 200 OK parses', () => {
    const info = parseAuthenticationInfo(
      `qop=auth-int, rspauth="${TRACE.rspauth}", cnonce="${TRACE.cnonce}", nc=00000001, ` +
        `opaque="${TRACE.opaque}", nonce="${TRACE.nonce}"`,
    )
    assert.deepEqual(info, {
      rspauth: TRACE.rspauth,
      qop: 'auth-int',
      nc: '00000001',
      cnonce: TRACE.cnonce,
      opaque: TRACE.opaque,
      nonce: TRACE.nonce,
    })
    assert.deepEqual(parseAuthenticationInfo(formatAuthenticationInfo(info)), info)
  })
  test('response for the trace inputs (COMPUTED-ONLY by us in python3)', () => {
    const response = computeResponse({
      username: TRACE.username,
      realm: TRACE.realm,
      password: TRACE.res,
      method: 'GET',
      uri: '/',
      nonce: TRACE.nonce,
      qop: 'auth-int',
      nc: '00000001',
      cnonce: TRACE.cnonce,
    })
    assert.equal(response, TRACE.responseComputedByUs)
  })
  test('rspauth is the digest with an empty method', () => {
    const input = {
      username: TRACE.username,
      realm: TRACE.realm,
      password: TRACE.res,
      uri: '/',
      nonce: TRACE.nonce,
      qop: 'auth-int' as const,
      nc: '00000001',
      cnonce: TRACE.cnonce,
      body: TRACE.body,
    }
    assert.equal(computeRspauth(input), computeResponse({ ...input, method: '' }))
    assert.notEqual(computeRspauth(input), computeResponse({ ...input, method: 'GET' }))
  })
})

describe('parsing details', () => {
  test('quoted-pair escapes, case-insensitive names and scheme, token or quoted tokens', () => {
    const c = parseAuthorization(
      'digest USERNAME="a\\"b\\\\c", Realm="r", nonce="n", uri="/", response="", qop="auth-int", nc=0000000A, cnonce="x", algorithm="akav1-md5"',
    )
    assert.equal(c.username, 'a"b\\c')
    assert.equal(c.qop, 'auth-int')
    assert.equal(c.nc, '0000000a')
    assert.equal(c.algorithm, 'AKAv1-MD5')
    assert.equal(parseAuthorization(formatAuthorization(c)).username, 'a"b\\c')
  })
  test('unknown parameters are ignored, unknown qop options skipped', () => {
    const ch = parseWwwAuthenticate('Digest realm="r", nonce="n", domain="/", foo=bar, qop="auth-conf,auth-int"')
    assert.deepEqual(ch.qop, ['auth-int'])
    assert.equal(parseWwwAuthenticate('Digest realm="r", nonce="n", stale=TRUE').stale, true)
  })
  test('optional whitespace around "=" and ","; tabs allowed', () => {
    const c = parseAuthorization('Digest\tusername = "u" ,realm="r",nonce="",uri="/" ,\tresponse=""  ')
    assert.equal(c.username, 'u')
    assert.equal(c.response, '')
  })
  test('header of exactly the maximum length is accepted', () => {
    const prefix = 'Digest realm="r", nonce="'
    const header = `${prefix}${'a'.repeat(MAX_DIGEST_HEADER_LENGTH - prefix.length - 1)}"`
    assert.equal(header.length, MAX_DIGEST_HEADER_LENGTH)
    assert.equal(parseWwwAuthenticate(header).nonce.length, MAX_DIGEST_HEADER_LENGTH - prefix.length - 1)
  })
  test('formatWwwAuthenticate writes the TS 24.109 shape', () => {
    assert.equal(
      formatWwwAuthenticate({ realm: 'bsf', nonce: 'n=', algorithm: 'AKAv1-MD5', qop: ['auth-int'], opaque: 'o' }),
      'Digest realm="bsf", nonce="n=", algorithm=AKAv1-MD5, qop="auth-int", opaque="o"',
    )
  })
})

const SECRET = 'SeCrEtVaLuE'
const MALFORMED_CHALLENGES: [string, unknown][] = [
  ['other scheme', `Basic realm="${SECRET}"`],
  ['scheme only', 'Digest'],
  ['scheme and spaces', 'Digest   '],
  ['no space after scheme', `Digestrealm="${SECRET}", nonce="n"`],
  ['missing realm', `Digest nonce="${SECRET}"`],
  ['missing nonce', `Digest realm="${SECRET}"`],
  ['unquoted realm', `Digest realm=${SECRET}, nonce="n"`],
  ['unknown algorithm MD5-sess', `Digest realm="r", nonce="${SECRET}", algorithm=MD5-sess`],
  ['unknown algorithm SHA-256', `Digest realm="r", nonce="${SECRET}", algorithm=SHA-256`],
  ['unknown algorithm AKAv2-MD5', `Digest realm="r", nonce="${SECRET}", algorithm=AKAv2-MD5`],
  ['qop with no known option', `Digest realm="r", nonce="${SECRET}", qop="auth-conf"`],
  ['stale not boolean', `Digest realm="r", nonce="${SECRET}", stale=maybe`],
  ['duplicate realm (case-insensitive)', `Digest realm="r", nonce="${SECRET}", REALM="x"`],
  ['unterminated quote', `Digest realm="r", nonce="${SECRET}`],
  ['backslash at the end', `Digest realm="r", nonce="${SECRET}\\`],
  ['missing "="', `Digest realm "r", nonce="${SECRET}"`],
  ['empty value', `Digest realm=, nonce="${SECRET}"`],
  ['leading comma', `Digest , realm="r", nonce="${SECRET}"`],
  ['double comma', `Digest realm="r",, nonce="${SECRET}"`],
  ['trailing comma', `Digest realm="r", nonce="${SECRET}",`],
  ['junk between params', `Digest realm="r" nonce="${SECRET}"`],
  ['CRLF injection', `Digest realm="r", nonce="${SECRET}"\r\nX-Evil: 1`],
  ['NUL byte', `Digest realm="r\u0000", nonce="${SECRET}"`],
  ['oversized', `Digest realm="r", nonce="${SECRET}${'a'.repeat(MAX_DIGEST_HEADER_LENGTH)}"`],
  [
    'too many parameters',
    `Digest realm="r", nonce="${SECRET}", ${Array.from({ length: 40 }, (_, i) => `x${i}=1`).join(', ')}`,
  ],
  ['not a string', 42],
]

const MALFORMED_AUTHORIZATIONS: [string, string][] = [
  ['missing username', `Digest realm="r", nonce="${SECRET}", uri="/", response=""`],
  ['missing uri', `Digest username="u", realm="r", nonce="${SECRET}", response=""`],
  ['missing response', `Digest username="u", realm="r", nonce="${SECRET}", uri="/"`],
  ['response not hex', `Digest username="u", realm="r", nonce="n", uri="/", response="${'z'.repeat(32)}"`],
  ['response 31 digits', `Digest username="u", realm="r", nonce="n", uri="/", response="${'a'.repeat(31)}"`],
  ['unquoted response', `Digest username="u", realm="r", nonce="n", uri="/", response=${'a'.repeat(32)}`],
  ['qop without nc', `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", qop=auth, cnonce="c"`],
  [
    'qop without cnonce',
    `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", qop=auth, nc=00000001`,
  ],
  [
    'qop with empty cnonce',
    `Digest username="u", realm="r", nonce="n", uri="/", response="", qop=auth, nc=00000001, cnonce=""`,
  ],
  ['nc without qop', `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", nc=00000001`],
  ['cnonce without qop', `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", cnonce="c"`],
  [
    'nc 7 digits',
    `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", qop=auth, nc=0000001, cnonce="c"`,
  ],
  [
    'nc not hex',
    `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", qop=auth, nc=0000000g, cnonce="c"`,
  ],
  [
    'qop auth-conf',
    `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", qop=auth-conf, nc=00000001, cnonce="c"`,
  ],
  [
    'qop list in a response',
    `Digest username="u", realm="r", nonce="n", uri="/", response="", qop="auth,auth-int", nc=00000001, cnonce="c"`,
  ],
  ['unknown algorithm', `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", algorithm=AKAv2-MD5`],
  ['unquoted auts', `Digest username="u", realm="r", nonce="${SECRET}", uri="/", response="", auts=abc`],
  ['duplicate auts', `Digest username="u", realm="r", nonce="n", uri="/", response="", auts="${SECRET}", auts="x"`],
]

describe('malformed headers are ERR_INVALID_ARGUMENT and never echo values', () => {
  for (const [name, header] of MALFORMED_CHALLENGES) {
    test(`WWW-Authenticate: ${name}`, () => {
      assert.throws(
        () => parseWwwAuthenticate(header as string),
        (err: { code?: string; message?: string }) => {
          assert.equal(err.code, 'ERR_INVALID_ARGUMENT')
          assert.ok(!String(err.message).includes(SECRET), 'message echoes a value')
          assert.ok(!JSON.stringify(err).includes(SECRET), 'details echo a value')
          return true
        },
      )
    })
  }
  for (const [name, header] of MALFORMED_AUTHORIZATIONS) {
    test(`Authorization: ${name}`, () => {
      assert.throws(
        () => parseAuthorization(header),
        (err: { code?: string; message?: string }) => {
          assert.equal(err.code, 'ERR_INVALID_ARGUMENT')
          assert.ok(!String(err.message).includes(SECRET), 'message echoes a value')
          return true
        },
      )
    })
  }
  test('Authentication-Info: missing or bad rspauth', () => {
    assert.throws(() => parseAuthenticationInfo('qop=auth, nc=00000001'), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => parseAuthenticationInfo('rspauth="xyz"'), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => parseAuthenticationInfo(`rspauth="${'a'.repeat(32)}", rspauth="${'b'.repeat(32)}"`), {
      code: 'ERR_INVALID_ARGUMENT',
    })
  })
})

describe('formatters refuse what would break the header', () => {
  test('CR/LF in a value', () => {
    assert.throws(() => formatAuthorization({ username: 'u\r\nX: y', realm: 'r', nonce: '', uri: '/', response: '' }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    assert.throws(
      () => formatWwwAuthenticate({ realm: 'r\n', nonce: 'n', algorithm: 'AKAv1-MD5', qop: ['auth-int'] }),
      { code: 'ERR_INVALID_ARGUMENT' },
    )
  })
  test('qop without nc/cnonce, bad nc, bad response, unknown algorithm', () => {
    const base = { username: 'u', realm: 'r', nonce: 'n', uri: '/', response: '' }
    assert.throws(() => formatAuthorization({ ...base, qop: 'auth' }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => formatAuthorization({ ...base, qop: 'auth', nc: '1', cnonce: 'c' }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    assert.throws(() => formatAuthorization({ ...base, response: 'abc' }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => formatAuthorization({ ...base, algorithm: 'SHA-256' as never }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    assert.throws(() => computeResponse({ ...base, password: 'p', method: 'GET', qop: 'auth' }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
  })
})
