/**
 * ESData interop with an independent JOSE implementation: python3-jwcrypto 1.1
 * (/usr/bin/python3, py/jwcrypto_tool.py). Both directions, right and wrong keys.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import {
  decryptEsData,
  decryptThenVerifyEsData,
  encryptEsData,
  openCredential,
  sealCredential,
  signEsData,
  signThenEncryptEsData,
  verifyEsData,
  type ContentEncryption,
  type EsDataKeyAlgorithm,
  type EsDataSignatureAlgorithm,
} from '../../src/e2e/index.ts'
import { b64uText, fixedBytes, jwcrypto, jwkOf, keyPairs, seededRandom, type JwcryptoAnswer } from './helpers.ts'

const K = keyPairs()
const OTHER = keyPairs()
const TEXT = '{"m2m:cin":{"con":"interop ✓"}}'
const DATA = new TextEncoder().encode(TEXT)
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url')

type KeyCase = {
  alg: EsDataKeyAlgorithm
  enc: ContentEncryption
  pub: Uint8Array | KeyObject
  priv: Uint8Array | KeyObject
  wrong: Uint8Array | KeyObject
}
const KEY_CASES: KeyCase[] = [
  { alg: 'dir', enc: 'A256GCM', pub: fixedBytes('d32'), priv: fixedBytes('d32'), wrong: fixedBytes('x32') },
  { alg: 'dir', enc: 'A128GCM', pub: fixedBytes('d16', 16), priv: fixedBytes('d16', 16), wrong: fixedBytes('x16', 16) },
  {
    alg: 'A128KW',
    enc: 'A128GCM',
    pub: fixedBytes('k16', 16),
    priv: fixedBytes('k16', 16),
    wrong: fixedBytes('x16', 16),
  },
  {
    alg: 'A192KW',
    enc: 'A192GCM',
    pub: fixedBytes('k24', 24),
    priv: fixedBytes('k24', 24),
    wrong: fixedBytes('x24', 24),
  },
  { alg: 'A256KW', enc: 'A256GCM', pub: fixedBytes('k32'), priv: fixedBytes('k32'), wrong: fixedBytes('x32') },
  { alg: 'RSA-OAEP-256', enc: 'A256GCM', pub: K.rsa.publicKey, priv: K.rsa.privateKey, wrong: OTHER.rsa.privateKey },
  {
    alg: 'ECDH-ES+A128KW',
    enc: 'A128GCM',
    pub: K.p256.publicKey,
    priv: K.p256.privateKey,
    wrong: OTHER.p256.privateKey,
  },
  {
    alg: 'ECDH-ES+A192KW',
    enc: 'A192GCM',
    pub: K.p384.publicKey,
    priv: K.p384.privateKey,
    wrong: OTHER.p384.privateKey,
  },
  {
    alg: 'ECDH-ES+A256KW',
    enc: 'A256GCM',
    pub: K.p256.publicKey,
    priv: K.p256.privateKey,
    wrong: OTHER.p256.privateKey,
  },
  {
    alg: 'ECDH-ES+A256KW',
    enc: 'A256GCM',
    pub: K.p521.publicKey,
    priv: K.p521.privateKey,
    wrong: OTHER.p521.privateKey,
  },
]

type SigCase = {
  alg: EsDataSignatureAlgorithm
  sign: Uint8Array | KeyObject
  verify: Uint8Array | KeyObject
  wrong: Uint8Array | KeyObject
}
const hs = fixedBytes('hs', 64)
const SIG_CASES: SigCase[] = [
  { alg: 'HS256', sign: hs, verify: hs, wrong: fixedBytes('hx', 64) },
  { alg: 'HS384', sign: hs, verify: hs, wrong: fixedBytes('hx', 64) },
  { alg: 'HS512', sign: hs, verify: hs, wrong: fixedBytes('hx', 64) },
  { alg: 'RS256', sign: K.rsa.privateKey, verify: K.rsa.publicKey, wrong: OTHER.rsa.publicKey },
  { alg: 'RS384', sign: K.rsa.privateKey, verify: K.rsa.publicKey, wrong: OTHER.rsa.publicKey },
  { alg: 'RS512', sign: K.rsa.privateKey, verify: K.rsa.publicKey, wrong: OTHER.rsa.publicKey },
  { alg: 'ES256', sign: K.p256.privateKey, verify: K.p256.publicKey, wrong: OTHER.p256.publicKey },
  { alg: 'ES384', sign: K.p384.privateKey, verify: K.p384.publicKey, wrong: OTHER.p384.publicKey },
  { alg: 'ES512', sign: K.p521.privateKey, verify: K.p521.publicKey, wrong: OTHER.p521.publicKey },
]

function ok(a: JwcryptoAnswer | undefined, what: string): Record<string, unknown> {
  assert.ok(a !== undefined && a.ok, `${what}: ${JSON.stringify(a)}`)
  return a as Record<string, unknown>
}

describe('SDK protects, jwcrypto opens', () => {
  test('JWE compact: every key management mode; the wrong key fails', async () => {
    const tokens = await Promise.all(
      KEY_CASES.map((c) => encryptEsData(DATA, { recipients: [{ alg: c.alg, key: c.pub, kid: 'dev' }], enc: c.enc })),
    )
    const answers = await jwcrypto(
      KEY_CASES.flatMap((c, i) => [
        { op: 'decrypt', token: tokens[i], keys: [jwkOf(c.priv)] },
        { op: 'decrypt', token: tokens[i], keys: [jwkOf(c.wrong)] },
      ]),
    )
    KEY_CASES.forEach((c, i) => {
      const good = ok(answers[2 * i], `${c.alg}/${c.enc}`)
      assert.equal(b64uText(good.plaintext), TEXT)
      assert.deepEqual(
        { alg: (good.header as Record<string, unknown>).alg, enc: (good.header as Record<string, unknown>).enc },
        { alg: c.alg, enc: c.enc },
      )
      assert.equal(answers[2 * i + 1]!.ok, false, `${c.alg} with a wrong key`)
    })
  })

  test('JWE JSON with three recipients, JWS compact for every alg, JWS JSON, nested, sealed credential', async () => {
    const kek = fixedBytes('kek')
    const multi = await encryptEsData(DATA, {
      serialization: 'json',
      aad: new TextEncoder().encode('aad'),
      recipients: [
        { alg: 'ECDH-ES+A256KW', key: K.p256.publicKey, kid: 'a' },
        { alg: 'A256KW', key: kek, kid: 'b' },
        { alg: 'RSA-OAEP-256', key: K.rsa.publicKey, kid: 'c' },
      ],
    })
    const jwsTokens = await Promise.all(
      SIG_CASES.map((c) => signEsData(DATA, { signers: [{ alg: c.alg, key: c.sign, kid: 's' }] })),
    )
    const general = await signEsData(DATA, {
      serialization: 'json',
      signers: [
        { alg: 'ES256', key: K.p256.privateKey, kid: 'e' },
        { alg: 'HS256', key: hs, kid: 'h' },
      ],
    })
    const nested = await signThenEncryptEsData(DATA, {
      signer: { alg: 'ES384', key: K.p384.privateKey, kid: 'src' },
      recipients: [{ alg: 'ECDH-ES+A256KW', key: K.p256.publicKey, kid: 'dst' }],
    })
    const device = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const sealed = await sealCredential({
      credential: { credentialId: '22-k@sp.example.com', suid: 22, key: fixedBytes('cred') },
      providerId: 'sp.example.com',
      signingKey: { key: K.p256.privateKey, kid: 'sp' },
      deviceId: 'dev-1',
      deviceKey: { key: device.publicKey, kid: 'dev-1' },
      now: Date.now,
      random: seededRandom('jti'),
    })
    const requests = [
      { op: 'decrypt', token: multi, keys: [jwkOf(K.p256.privateKey)] },
      { op: 'decrypt', token: multi, keys: [jwkOf(kek)] },
      { op: 'decrypt', token: multi, keys: [jwkOf(K.rsa.privateKey)] },
      { op: 'decrypt', token: multi, keys: [jwkOf(fixedBytes('not-a-recipient'))] },
      { op: 'verify', token: general, key: jwkOf(K.p256.publicKey) },
      { op: 'verify', token: general, key: jwkOf(hs) },
      { op: 'verify', token: general, key: jwkOf(OTHER.p256.publicKey) },
      { op: 'nested', token: nested, key: jwkOf(K.p256.privateKey), verify_key: jwkOf(K.p384.publicKey) },
      { op: 'nested', token: nested, key: jwkOf(K.p256.privateKey), verify_key: jwkOf(OTHER.p384.publicKey) },
      { op: 'nested', token: sealed, key: jwkOf(device.privateKey), verify_key: jwkOf(K.p256.publicKey) },
      { op: 'nested', token: sealed, key: jwkOf(OTHER.p256.privateKey), verify_key: jwkOf(K.p256.publicKey) },
      ...SIG_CASES.flatMap((c, i) => [
        { op: 'verify', token: jwsTokens[i], key: jwkOf(c.verify) },
        { op: 'verify', token: jwsTokens[i], key: jwkOf(c.wrong) },
      ]),
    ]
    const a = await jwcrypto(requests)
    for (const i of [0, 1, 2]) assert.equal(b64uText(ok(a[i], `recipient ${i}`).plaintext), TEXT)
    assert.equal(a[3]!.ok, false)
    assert.equal(b64uText(ok(a[4], 'general ES256').payload), TEXT)
    assert.equal(b64uText(ok(a[5], 'general HS256').payload), TEXT)
    assert.equal(a[6]!.ok, false)
    const n = ok(a[7], 'nested')
    assert.equal(b64uText(n.payload), TEXT)
    assert.equal((n.header as Record<string, unknown>).cty, 'JOSE')
    assert.equal(a[8]!.ok, false)
    const cred = JSON.parse(b64uText(ok(a[9], 'sealed credential').payload)) as Record<string, unknown>
    assert.equal(cred.aud, 'dev-1')
    assert.equal(cred.key, b64u(fixedBytes('cred')))
    assert.equal(a[10]!.ok, false)
    SIG_CASES.forEach((c, i) => {
      assert.equal(b64uText(ok(a[11 + 2 * i], c.alg).payload), TEXT)
      assert.equal(a[12 + 2 * i]!.ok, false, `${c.alg} with a wrong key`)
    })
  })
})

describe('jwcrypto protects, SDK opens', () => {
  test('JWE compact for every mode, JWE JSON with two recipients; wrong keys fail', async () => {
    const a = await jwcrypto([
      ...KEY_CASES.map((c) => ({
        op: 'encrypt',
        plaintext: b64u(DATA),
        protected: { alg: c.alg, enc: c.enc, kid: 'dev' },
        recipients: [{ jwk: jwkOf(c.pub) }],
        compact: true,
      })),
      {
        op: 'encrypt',
        plaintext: b64u(DATA),
        protected: { enc: 'A256GCM' },
        recipients: [
          { jwk: jwkOf(K.p256.publicKey), header: { alg: 'ECDH-ES+A256KW', kid: 'a' } },
          { jwk: jwkOf(fixedBytes('kek')), header: { alg: 'A256KW', kid: 'b' } },
        ],
        compact: false,
      },
    ])
    for (const [i, c] of KEY_CASES.entries()) {
      const token = String(ok(a[i], `${c.alg}/${c.enc}`).token)
      const out = await decryptEsData(token, { keys: [{ kid: 'dev', key: c.priv }] })
      assert.equal(new TextDecoder().decode(out.plaintext), TEXT, c.alg)
      await assert.rejects(decryptEsData(token, { keys: [{ kid: 'dev', key: c.wrong }] }), {
        code: 'ERR_CIPHERTEXT_INVALID',
      })
    }
    const multi = String(ok(a[KEY_CASES.length], 'json').token)
    assert.equal(
      new TextDecoder().decode(
        (await decryptEsData(multi, { keys: [{ kid: 'a', key: K.p256.privateKey }] })).plaintext,
      ),
      TEXT,
    )
    assert.equal(
      new TextDecoder().decode(
        (await decryptEsData(multi, { keys: [{ kid: 'b', key: fixedBytes('kek') }] })).plaintext,
      ),
      TEXT,
    )
    await assert.rejects(decryptEsData(multi, { keys: [{ kid: 'b', key: fixedBytes('x32') }] }), {
      code: 'ERR_CIPHERTEXT_INVALID',
    })
  })

  test('JWS compact for every alg, JWS JSON with two signers, and sign-then-encrypt', async () => {
    const a = await jwcrypto([
      ...SIG_CASES.map((c) => ({
        op: 'sign',
        payload: b64u(DATA),
        signers: [{ jwk: jwkOf(c.sign), protected: { alg: c.alg, kid: 's' } }],
        compact: true,
      })),
      {
        op: 'sign',
        payload: b64u(DATA),
        signers: [
          { jwk: jwkOf(K.p384.privateKey), protected: { alg: 'ES384', kid: 'e' } },
          { jwk: jwkOf(hs), protected: { alg: 'HS512', kid: 'h' } },
        ],
        compact: false,
      },
      {
        op: 'sign',
        payload: b64u(DATA),
        signers: [{ jwk: jwkOf(K.p256.privateKey), protected: { alg: 'ES256', kid: 'src' } }],
        compact: true,
      },
    ])
    for (const [i, c] of SIG_CASES.entries()) {
      const token = String(ok(a[i], c.alg).token)
      assert.equal(
        new TextDecoder().decode((await verifyEsData(token, { keys: [{ kid: 's', key: c.verify }] })).payload),
        TEXT,
      )
      await assert.rejects(verifyEsData(token, { keys: [{ kid: 's', key: c.wrong }] }), {
        code: 'ERR_SIGNATURE_INVALID',
      })
    }
    const general = String(ok(a[SIG_CASES.length], 'general').token)
    assert.equal((await verifyEsData(general, { keys: [{ kid: 'e', key: K.p384.publicKey }] })).kid, 'e')
    assert.equal((await verifyEsData(general, { keys: [{ kid: 'h', key: hs }] })).alg, 'HS512')
    const innerJws = String(ok(a[SIG_CASES.length + 1], 'inner').token)
    const [outer] = await jwcrypto([
      {
        op: 'encrypt',
        plaintext: b64u(new TextEncoder().encode(innerJws)),
        protected: { alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'dst', cty: 'JOSE' },
        recipients: [{ jwk: jwkOf(OTHER.p256.publicKey) }],
        compact: true,
      },
    ])
    const nested = String(ok(outer, 'outer').token)
    const opened = await decryptThenVerifyEsData(nested, {
      decryptionKeys: [{ kid: 'dst', key: OTHER.p256.privateKey }],
      verificationKeys: [{ kid: 'src', key: K.p256.publicKey }],
    })
    assert.equal(new TextDecoder().decode(opened.payload), TEXT)
    await assert.rejects(
      decryptThenVerifyEsData(nested, {
        decryptionKeys: [{ kid: 'dst', key: OTHER.p256.privateKey }],
        verificationKeys: [{ kid: 'src', key: OTHER.p256.publicKey }],
      }),
      { code: 'ERR_SIGNATURE_INVALID' },
    )
  })

  test('a credential sealed by jwcrypto in the documented format opens on the device', async () => {
    const device = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const now = Date.now()
    const claims = {
      iss: 'sp.example.com',
      aud: 'dev-1',
      jti: 'py-1',
      iat: Math.floor(now / 1000),
      exp: Math.floor(now / 1000) + 600,
      cid: '22-k@sp.example.com',
      suid: 22,
      key: b64u(fixedBytes('py-cred')),
    }
    const [inner] = await jwcrypto([
      {
        op: 'sign',
        payload: b64u(new TextEncoder().encode(JSON.stringify(claims))),
        signers: [
          { jwk: jwkOf(K.p256.privateKey), protected: { alg: 'ES256', kid: 'sp', typ: 'm2msec-credential+jws' } },
        ],
        compact: true,
      },
    ])
    const [outer] = await jwcrypto([
      {
        op: 'encrypt',
        plaintext: b64u(new TextEncoder().encode(String(ok(inner, 'inner').token))),
        protected: { alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'dev-1', cty: 'JOSE' },
        recipients: [{ jwk: jwkOf(device.publicKey) }],
        compact: true,
      },
    ])
    const opened = await openCredential(String(ok(outer, 'outer').token), {
      deviceId: 'dev-1',
      deviceKey: { key: device.privateKey, kid: 'dev-1' },
      trustedProviders: [{ providerId: 'sp.example.com', kid: 'sp', key: K.p256.publicKey }],
      now: () => now,
      markUsed: () => true,
    })
    assert.deepEqual(opened.credential.key, fixedBytes('py-cred'))
    assert.equal(opened.credential.suid, 22)
  })
})
