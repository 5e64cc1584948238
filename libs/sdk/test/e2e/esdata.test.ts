/** ESData (TS-0003 §8.5): JWE / JWS / nested, compact and JSON, and every refusal. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { CompactEncrypt, CompactSign, GeneralEncrypt, UnsecuredJWT, decodeProtectedHeader } from 'jose'
import {
  CONTENT_ENCRYPTION_ALGORITHMS,
  decryptEsData,
  decryptThenVerifyEsData,
  encryptEsData,
  signEsData,
  signThenEncryptEsData,
  verifyEsData,
  type ContentEncryption,
  type EsDataKeyAlgorithm,
  type EsDataSignatureAlgorithm,
  type JoseKey,
} from '../../src/e2e/index.ts'
import { fixedBytes, keyPairs } from './helpers.ts'

const enc = new TextEncoder()
const dec = new TextDecoder()
const DATA = enc.encode('{"m2m:cin":{"con":"21.5","cnf":"text/plain:0"}}')
const K = keyPairs()

/** `code` or `code/reason` of a rejection, 'ok' when it resolves. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    const e = err as { code?: string; details?: { reason?: string } }
    return e.details?.reason === undefined ? String(e.code) : `${e.code}/${e.details.reason}`
  }
}

function flip(token: string, part: number): string {
  const parts = token.split('.')
  const bytes = Buffer.from(parts[part]!, 'base64url')
  bytes[0]! ^= 1
  parts[part] = bytes.toString('base64url')
  return parts.join('.')
}

/** [alg, key to encrypt with, key to decrypt with] per key management algorithm and enc. */
function keyCases(e: ContentEncryption): [EsDataKeyAlgorithm, JoseKey, JoseKey][] {
  const len = e === 'A128GCM' ? 16 : e === 'A192GCM' ? 24 : 32
  const dir = fixedBytes(`dir-${e}`, len)
  return [
    ['dir', dir, dir],
    ['A128KW', fixedBytes('kw128', 16), fixedBytes('kw128', 16)],
    ['A192KW', fixedBytes('kw192', 24), fixedBytes('kw192', 24)],
    ['A256KW', fixedBytes('kw256', 32), fixedBytes('kw256', 32)],
    ['RSA-OAEP-256', K.rsa.publicKey, K.rsa.privateKey],
    ['ECDH-ES+A128KW', K.p256.publicKey, K.p256.privateKey],
    ['ECDH-ES+A192KW', K.p384.publicKey, K.p384.privateKey],
    ['ECDH-ES+A256KW', K.p521.publicKey, K.p521.privateKey],
  ]
}

describe('ESData encryption-only (JWE)', () => {
  test('compact: every alg × enc of the profile round-trips; alg, enc, kid are protected', async () => {
    for (const e of CONTENT_ENCRYPTION_ALGORITHMS) {
      for (const [alg, encKey, decKey] of keyCases(e)) {
        const jwe = await encryptEsData(DATA, { recipients: [{ alg, key: encKey, kid: `t-${alg}` }], enc: e })
        const header = decodeProtectedHeader(jwe)
        assert.equal(header.alg, alg)
        assert.equal(header.enc, e)
        assert.equal(header.kid, `t-${alg}`)
        const out = await decryptEsData(jwe, { keys: [{ kid: `t-${alg}`, key: decKey }] })
        assert.deepEqual(out.plaintext, DATA, `${alg} ${e}`)
        assert.equal(out.serialization, 'compact')
        assert.equal(out.alg, alg)
      }
    }
  })

  test('JSON: three recipients with different algorithms each open it; AAD is authenticated', async () => {
    const kek = fixedBytes('app-kek')
    const aad = enc.encode('resource=/in-cse/cnt-7')
    const jwe = await encryptEsData(DATA, {
      serialization: 'json',
      aad,
      header: { cty: 'application/json' },
      recipients: [
        { alg: 'ECDH-ES+A256KW', key: K.p256.publicKey, kid: 'dev-1' },
        { alg: 'A256KW', key: kek, kid: 'app-2' },
        { alg: 'RSA-OAEP-256', key: K.rsa.publicKey, kid: 'in-ae-3' },
      ],
    })
    const json = JSON.parse(jwe) as { recipients: { header: { alg: string; kid: string } }[] }
    assert.deepEqual(
      json.recipients.map((r) => r.header.kid),
      ['dev-1', 'app-2', 'in-ae-3'],
    )
    for (const [kid, key] of [
      ['dev-1', K.p256.privateKey],
      ['app-2', kek],
      ['in-ae-3', K.rsa.privateKey],
    ] as const) {
      const out = await decryptEsData(jwe, { keys: [{ kid, key }] })
      assert.deepEqual(out.plaintext, DATA)
      assert.equal(out.kid, kid)
      assert.deepEqual(out.aad, aad)
      assert.equal(out.protectedHeader.cty, 'application/json')
      assert.equal(out.serialization, 'json')
    }
    // Someone else: no entry for its kid; a wrong key under a listed kid: does not decrypt.
    assert.equal(
      await outcome(decryptEsData(jwe, { keys: [{ kid: 'gw', key: fixedBytes('gw') }] })),
      'ERR_KEY_NOT_FOUND',
    )
    assert.equal(
      await outcome(decryptEsData(jwe, { keys: [{ kid: 'app-2', key: fixedBytes('wrong') }] })),
      'ERR_CIPHERTEXT_INVALID',
    )
    // Changing the AAD or the protected header breaks every recipient.
    const moved = JSON.stringify({ ...JSON.parse(jwe), aad: Buffer.from('resource=/other').toString('base64url') })
    assert.equal(await outcome(decryptEsData(moved, { keys: [{ kid: 'app-2', key: kek }] })), 'ERR_CIPHERTEXT_INVALID')
  })

  test('wrong key and tampering: ERR_CIPHERTEXT_INVALID', async () => {
    const kek = fixedBytes('kek')
    const jwe = await encryptEsData(DATA, { recipients: [{ alg: 'A256KW', key: kek, kid: 'k' }] })
    const keys = [{ kid: 'k', key: kek }]
    assert.equal(
      await outcome(decryptEsData(jwe, { keys: [{ kid: 'k', key: fixedBytes('other') }] })),
      'ERR_CIPHERTEXT_INVALID',
    )
    for (const part of [1, 2, 3, 4]) {
      assert.equal(await outcome(decryptEsData(flip(jwe, part), { keys })), 'ERR_CIPHERTEXT_INVALID', `part ${part}`)
    }
    const [, ...rest] = jwe.split('.')
    const header = Buffer.from(JSON.stringify({ ...decodeProtectedHeader(jwe), cty: 'text/plain' })).toString(
      'base64url',
    )
    assert.equal(await outcome(decryptEsData([header, ...rest].join('.'), { keys })), 'ERR_CIPHERTEXT_INVALID')
    const ecdh = await encryptEsData(DATA, { recipients: [{ alg: 'ECDH-ES+A256KW', key: K.p256.publicKey, kid: 'd' }] })
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    assert.equal(
      await outcome(decryptEsData(ecdh, { keys: [{ kid: 'd', key: other.privateKey }] })),
      'ERR_CIPHERTEXT_INVALID',
    )
  })

  test('algorithms outside the profile, zip and narrowed lists are refused', async () => {
    const k32 = fixedBytes('k32')
    const foreign = [
      await new CompactEncrypt(DATA).setProtectedHeader({ alg: 'dir', enc: 'A128CBC-HS256', kid: 'k' }).encrypt(k32),
      await new CompactEncrypt(DATA)
        .setProtectedHeader({ alg: 'RSA-OAEP', enc: 'A256GCM', kid: 'k' })
        .encrypt(K.rsa.publicKey),
      await new CompactEncrypt(DATA)
        .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', kid: 'k' })
        .encrypt(K.p256.publicKey),
      await new CompactEncrypt(DATA)
        .setProtectedHeader({ alg: 'PBES2-HS256+A128KW', enc: 'A256GCM', kid: 'k' })
        .encrypt(enc.encode('password')),
      await new CompactEncrypt(DATA)
        .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM', kid: 'k', zip: 'DEF' })
        .encrypt(k32),
    ]
    for (const jwe of foreign) {
      assert.equal(await outcome(decryptEsData(jwe, { keys: [{ key: k32 }] })), 'ERR_INVALID_ARGUMENT/unsupported-alg')
    }
    const kw = await encryptEsData(DATA, { recipients: [{ alg: 'A256KW', key: k32, kid: 'k' }], enc: 'A128GCM' })
    assert.equal(
      await outcome(decryptEsData(kw, { keys: [{ key: k32 }], encryptions: ['A256GCM'] })),
      'ERR_INVALID_ARGUMENT/unsupported-alg',
    )
    assert.equal(
      await outcome(decryptEsData(kw, { keys: [{ key: k32 }], algorithms: ['dir'] })),
      'ERR_INVALID_ARGUMENT/unsupported-alg',
    )
    // A key pinned to another alg does not match.
    assert.equal(await outcome(decryptEsData(kw, { keys: [{ key: k32, alg: 'dir' }] })), 'ERR_KEY_NOT_FOUND')
    const bad = { recipients: [{ alg: 'RSA1_5' as EsDataKeyAlgorithm, key: K.rsa.publicKey, kid: 'k' }] }
    assert.equal(await outcome(encryptEsData(DATA, bad)), 'ERR_INVALID_ARGUMENT/unsupported-alg')
    assert.equal(
      await outcome(
        encryptEsData(DATA, { recipients: [{ alg: 'dir', key: k32, kid: 'k' }], enc: 'A256CBC' as ContentEncryption }),
      ),
      'ERR_INVALID_ARGUMENT/unsupported-alg',
    )
  })

  test('misuse is refused before anything is encrypted', async () => {
    const k32 = fixedBytes('k32')
    const two = [
      { alg: 'A256KW' as const, key: k32, kid: 'a' },
      { alg: 'A256KW' as const, key: k32, kid: 'b' },
    ]
    assert.equal(await outcome(encryptEsData(DATA, { recipients: two })), 'ERR_INVALID_ARGUMENT')
    assert.equal(
      await outcome(
        encryptEsData(DATA, { recipients: [{ alg: 'dir', key: k32, kid: 'a' }, two[0]!], serialization: 'json' }),
      ),
      'ERR_INVALID_ARGUMENT',
    )
    assert.equal(await outcome(encryptEsData(DATA, { recipients: [two[0]!], aad: DATA })), 'ERR_INVALID_ARGUMENT')
    assert.equal(
      await outcome(encryptEsData(DATA, { recipients: [two[0]!], header: { alg: 'dir' } })),
      'ERR_INVALID_ARGUMENT',
    )
    assert.equal(await outcome(encryptEsData(DATA, { recipients: [] })), 'ERR_INVALID_ARGUMENT')
    assert.equal(await outcome(encryptEsData(DATA, { recipients: [{ ...two[0]!, kid: '' }] })), 'ERR_INVALID_ARGUMENT')
    // Keys that do not fit the algorithm.
    assert.equal(
      await outcome(encryptEsData(DATA, { recipients: [{ alg: 'A256KW', key: fixedBytes('short', 16), kid: 'a' }] })),
      'ERR_KEY_TYPE_MISMATCH',
    )
    assert.equal(
      await outcome(encryptEsData(DATA, { recipients: [{ alg: 'ECDH-ES+A256KW', key: K.rsa.publicKey, kid: 'a' }] })),
      'ERR_KEY_TYPE_MISMATCH',
    )
    assert.equal(
      await outcome(encryptEsData(DATA, { recipients: [{ alg: 'dir', key: fixedBytes('d', 16), kid: 'a' }] })),
      'ERR_KEY_TYPE_MISMATCH',
    )
  })

  test('malformed and oversize input', async () => {
    const keys = [{ key: fixedBytes('k') }]
    assert.equal(await outcome(decryptEsData('a.b.c', { keys })), 'ERR_INVALID_ARGUMENT/malformed')
    assert.equal(await outcome(decryptEsData('{"recipients":[]}', { keys })), 'ERR_INVALID_ARGUMENT/malformed')
    assert.equal(await outcome(decryptEsData('{nope', { keys })), 'ERR_INVALID_ARGUMENT/malformed')
    assert.equal(await outcome(decryptEsData('x'.repeat(101), { keys, maxLength: 100 })), 'ERR_PAYLOAD_TOO_LARGE')
  })
})

describe('ESData signature-only (JWS)', () => {
  const hs = fixedBytes('mic-key', 64)
  const signCases: [EsDataSignatureAlgorithm, JoseKey, JoseKey][] = [
    ['HS256', hs, hs],
    ['HS384', hs, hs],
    ['HS512', hs, hs],
    ['RS256', K.rsa.privateKey, K.rsa.publicKey],
    ['RS384', K.rsa.privateKey, K.rsa.publicKey],
    ['RS512', K.rsa.privateKey, K.rsa.publicKey],
    ['ES256', K.p256.privateKey, K.p256.publicKey],
    ['ES384', K.p384.privateKey, K.p384.publicKey],
    ['ES512', K.p521.privateKey, K.p521.publicKey],
  ]

  test('compact: every alg of the profile signs and verifies; wrong key and tampering fail', async () => {
    for (const [alg, sk, vk] of signCases) {
      const jws = await signEsData(DATA, { signers: [{ alg, key: sk, kid: `s-${alg}` }] })
      assert.deepEqual(decodeProtectedHeader(jws), { alg, kid: `s-${alg}` })
      const out = await verifyEsData(jws, { keys: [{ kid: `s-${alg}`, key: vk }] })
      assert.deepEqual(out.payload, DATA)
      assert.equal(out.alg, alg)
      const wrong = alg.startsWith('HS')
        ? fixedBytes('wrong', 64)
        : alg.startsWith('RS')
          ? generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey
          : signCases.find(([a]) => a !== alg && a.startsWith('ES'))![2]
      assert.equal(
        await outcome(verifyEsData(jws, { keys: [{ kid: `s-${alg}`, key: wrong }] })),
        'ERR_SIGNATURE_INVALID',
        alg,
      )
      assert.equal(await outcome(verifyEsData(flip(jws, 1), { keys: [{ key: vk }] })), 'ERR_SIGNATURE_INVALID', alg)
      assert.equal(await outcome(verifyEsData(flip(jws, 2), { keys: [{ key: vk }] })), 'ERR_SIGNATURE_INVALID', alg)
      assert.equal(await outcome(verifyEsData(jws, { keys: [{ kid: 'someone-else', key: vk }] })), 'ERR_KEY_NOT_FOUND')
    }
  })

  test('alg none is never accepted (compact, JSON, any spelling), nor unsupported algorithms', async () => {
    const unsecured = new UnsecuredJWT({ sub: 'x' }).encode()
    const keys = [{ key: K.p256.publicKey }]
    assert.equal(await outcome(verifyEsData(unsecured, { keys })), 'ERR_INVALID_ARGUMENT/alg-none')
    const noneHeader = (alg: string) => Buffer.from(JSON.stringify({ alg, kid: 's' })).toString('base64url')
    const payload = Buffer.from(DATA).toString('base64url')
    for (const alg of ['none', 'None', 'NONE']) {
      assert.equal(
        await outcome(verifyEsData(`${noneHeader(alg)}.${payload}.`, { keys })),
        'ERR_INVALID_ARGUMENT/alg-none',
      )
    }
    const general = JSON.stringify({ payload, signatures: [{ protected: noneHeader('none'), signature: '' }] })
    assert.equal(await outcome(verifyEsData(general, { keys })), 'ERR_INVALID_ARGUMENT/alg-none')
    const eddsa = generateKeyPairSync('ed25519')
    const ed = await new CompactSign(DATA).setProtectedHeader({ alg: 'EdDSA', kid: 's' }).sign(eddsa.privateKey)
    assert.equal(
      await outcome(verifyEsData(ed, { keys: [{ key: eddsa.publicKey }] })),
      'ERR_INVALID_ARGUMENT/unsupported-alg',
    )
    const ps = await new CompactSign(DATA).setProtectedHeader({ alg: 'PS256', kid: 's' }).sign(K.rsa.privateKey)
    assert.equal(
      await outcome(verifyEsData(ps, { keys: [{ key: K.rsa.publicKey }] })),
      'ERR_INVALID_ARGUMENT/unsupported-alg',
    )
    assert.equal(
      await outcome(signEsData(DATA, { signers: [{ alg: 'none' as EsDataSignatureAlgorithm, key: hs, kid: 's' }] })),
      'ERR_INVALID_ARGUMENT/alg-none',
    )
    // An alg only in the unprotected header is not accepted (it could be swapped).
    const flat = JSON.parse(
      await signEsData(DATA, { signers: [{ alg: 'HS256', key: hs, kid: 's' }], serialization: 'json' }),
    )
    const sig = flat.signatures[0]
    const unprotectedAlg = JSON.stringify({
      payload: flat.payload,
      signatures: [
        {
          protected: Buffer.from('{"kid":"s"}').toString('base64url'),
          header: { alg: 'HS256' },
          signature: sig.signature,
        },
      ],
    })
    assert.equal(
      await outcome(verifyEsData(unprotectedAlg, { keys: [{ key: hs }] })),
      'ERR_INVALID_ARGUMENT/unsupported-alg',
    )
  })

  test('algorithm confusion: an HS256 MAC keyed with the ES256 public key does not verify', async () => {
    const pem = K.p256.publicKey.export({ format: 'pem', type: 'spki' })
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'src' })).toString('base64url')
    const body = Buffer.from(DATA).toString('base64url')
    const mac = createHmac('sha256', pem).update(`${header}.${body}`).digest('base64url')
    const forged = `${header}.${body}.${mac}`
    assert.equal(
      await outcome(verifyEsData(forged, { keys: [{ kid: 'src', key: K.p256.publicKey }] })),
      'ERR_SIGNATURE_INVALID',
    )
    assert.equal(
      await outcome(verifyEsData(forged, { keys: [{ kid: 'src', key: K.p256.publicKey, alg: 'ES256' }] })),
      'ERR_KEY_NOT_FOUND',
    )
  })

  test('JSON: several signers; any trusted one verifies; tampering the shared payload fails them all', async () => {
    const jws = await signEsData(DATA, {
      serialization: 'json',
      header: { typ: 'application/json' },
      signers: [
        { alg: 'ES256', key: K.p256.privateKey, kid: 'sensor-1' },
        { alg: 'HS256', key: hs, kid: 'gw-mic' },
      ],
    })
    const json = JSON.parse(jws) as { payload: string; signatures: unknown[] }
    assert.equal(json.signatures.length, 2)
    assert.equal((await verifyEsData(jws, { keys: [{ kid: 'gw-mic', key: hs }] })).kid, 'gw-mic')
    const bySensor = await verifyEsData(jws, { keys: [{ kid: 'sensor-1', key: K.p256.publicKey }] })
    assert.equal(bySensor.kid, 'sensor-1')
    assert.equal(bySensor.protectedHeader.typ, 'application/json')
    assert.equal(await outcome(verifyEsData(jws, { keys: [{ kid: 'other', key: hs }] })), 'ERR_KEY_NOT_FOUND')
    const tampered = JSON.stringify({ ...json, payload: Buffer.from('{"con":"99"}').toString('base64url') })
    assert.equal(
      await outcome(
        verifyEsData(tampered, {
          keys: [
            { kid: 'gw-mic', key: hs },
            { kid: 'sensor-1', key: K.p256.publicKey },
          ],
        }),
      ),
      'ERR_SIGNATURE_INVALID',
    )
    assert.equal(await outcome(signEsData(DATA, { signers: [] })), 'ERR_INVALID_ARGUMENT')
    assert.equal(
      await outcome(signEsData(DATA, { signers: [{ alg: 'ES256', key: hs, kid: 'x' }] })),
      'ERR_KEY_TYPE_MISMATCH',
    )
  })
})

describe('ESData nested sign-then-encrypt', () => {
  const src = K.p256
  const dst = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const open = (jwe: string, verificationKey = src.publicKey) =>
    decryptThenVerifyEsData(jwe, {
      decryptionKeys: [{ kid: 'dst', key: dst.privateKey }],
      verificationKeys: [{ kid: 'src', key: verificationKey }],
    })

  test('round trip in compact and JSON; the outer cty is JOSE and the signer survives decryption', async () => {
    for (const serialization of ['compact', 'json'] as const) {
      const jwe = await signThenEncryptEsData(DATA, {
        serialization,
        signer: { alg: 'ES256', key: src.privateKey, kid: 'src' },
        innerHeader: { typ: 'm2m-token' },
        recipients: [{ alg: 'ECDH-ES+A256KW', key: dst.publicKey, kid: 'dst' }],
      })
      const out = await open(jwe)
      assert.deepEqual(out.payload, DATA)
      assert.equal(out.outer.protectedHeader.cty, 'JOSE')
      assert.equal(out.inner.kid, 'src')
      assert.equal(out.inner.protectedHeader.typ, 'm2m-token')
    }
  })

  test('a wrong signer, a plain JWE and a re-signed payload are refused', async () => {
    const jwe = await signThenEncryptEsData(DATA, {
      signer: { alg: 'ES256', key: src.privateKey, kid: 'src' },
      recipients: [{ alg: 'ECDH-ES+A256KW', key: dst.publicKey, kid: 'dst' }],
    })
    assert.equal(
      await outcome(open(jwe, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)),
      'ERR_SIGNATURE_INVALID',
    )
    const plain = await encryptEsData(DATA, { recipients: [{ alg: 'ECDH-ES+A256KW', key: dst.publicKey, kid: 'dst' }] })
    assert.equal(await outcome(open(plain)), 'ERR_INVALID_ARGUMENT/not-nested')
    // Anyone can encrypt to dst's public key, but not sign as src.
    const mallory = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const forged = await signThenEncryptEsData(enc.encode('{"con":"0"}'), {
      signer: { alg: 'ES256', key: mallory.privateKey, kid: 'src' },
      recipients: [{ alg: 'ECDH-ES+A256KW', key: dst.publicKey, kid: 'dst' }],
    })
    assert.equal(await outcome(open(forged)), 'ERR_SIGNATURE_INVALID')
    assert.equal(await outcome(open(flip(jwe, 3))), 'ERR_CIPHERTEXT_INVALID')
  })

  test('several recipients in JSON', async () => {
    const kek = fixedBytes('kek-multi')
    const jwe = await signThenEncryptEsData(DATA, {
      serialization: 'json',
      signer: { alg: 'ES256', key: src.privateKey, kid: 'src' },
      recipients: [
        { alg: 'ECDH-ES+A256KW', key: dst.publicKey, kid: 'dst' },
        { alg: 'A256KW', key: kek, kid: 'app' },
      ],
    })
    assert.deepEqual((await open(jwe)).payload, DATA)
    const byApp = await decryptThenVerifyEsData(jwe, {
      decryptionKeys: [{ kid: 'app', key: kek }],
      verificationKeys: [{ kid: 'src', key: src.publicKey }],
    })
    assert.equal(dec.decode(byApp.payload), dec.decode(DATA))
  })
})

test('jose GeneralEncrypt output with a flattened single recipient also opens', async () => {
  const kek = fixedBytes('flat')
  const general = await new GeneralEncrypt(DATA)
    .setProtectedHeader({ enc: 'A256GCM' })
    .addRecipient(kek)
    .setUnprotectedHeader({ alg: 'A256KW', kid: 'f' })
    .encrypt()
  const { recipients, ...shared } = general
  const flattened = JSON.stringify({ ...shared, ...recipients[0] })
  const out = await decryptEsData(flattened, { keys: [{ kid: 'f', key: kek }] })
  assert.deepEqual(out.plaintext, DATA)
  assert.equal(out.serialization, 'json')
})
