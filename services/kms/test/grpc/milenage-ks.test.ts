/**
 * Milenage with `ks_key_spec` / `omit_ck_ik` through the gRPC API (software SE): Ks = CK || IK
 * is kept as an HMAC_SHA256 key, CK and IK do not appear in the response, and the new key
 * derives the same Ks_NAF as the 3GPP KDF over the expected Ks (compared through MACs, so no
 * key is printed or compared in the clear).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type * as grpc from '@grpc/grpc-js'
import * as jose from 'jose'
import { deriveKsNaf, nafId, UA_PROTOCOL_ID } from '@m2msec/crypto'
import { fromGrpcError } from '@m2msec/runtime'
import * as pb from '@m2msec/proto/kms/v1'
import { startKmsHarness, type Kms, type KmsHarness } from './kms-harness.ts'

const admin = { tenant: 'acme', principal: 'ops', roles: ['admin'] }
const bsf = { tenant: 'acme', principal: 'bsf', roles: [] }
const Alg = pb.KeyAlgorithm
const Op = pb.KeyOperation

const vectors = JSON.parse(
  readFileSync(new URL('../../../../libs/crypto/test/vectors/milenage.json', import.meta.url), 'utf8'),
) as { test_sets: Array<Record<string, string>> }
const set1 = vectors.test_sets.find((v) => v.test_set === '1' || String(v.test_set) === '1')
const hex = (s: string | undefined) => Buffer.from(s ?? '', 'hex')

let h: KmsHarness
let A: Kms
let B: Kms

before(async () => {
  h = await startKmsHarness()
  A = await h.client(admin)
  B = await h.client(bsf)
  assert.ok(set1?.k && set1.opc)
  // K || OPc of TS 35.208 set 1, wrapped under a transport key, usable for MILENAGE by "bsf".
  await A.createKey(
    pb.CreateKeyRequest.fromPartial({
      keySpec: { keyId: 'transport', algorithm: Alg.KEY_ALGORITHM_AES_256_GCM, exportable: true },
    }),
  )
  const r = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const wrapped = await A.wrapKey(
    pb.WrapKeyRequest.fromPartial({
      keyId: 'transport',
      recipient: { $case: 'publicJwk', value: JSON.stringify(r.publicKey.export({ format: 'jwk' })) },
    }),
  )
  const kek = (await jose.compactDecrypt(wrapped.wrappedKey, r.privateKey)).plaintext
  const jwe = await new jose.CompactEncrypt(Buffer.concat([hex(set1.k), hex(set1.opc)]))
    .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
    .encrypt(kek)
  await A.importKey(
    pb.ImportKeyRequest.fromPartial({
      wrappedKey: jwe,
      unwrappingKeyId: 'transport',
      keySpec: {
        keyId: 'sub-1',
        algorithm: Alg.KEY_ALGORITHM_MILENAGE,
        usagePolicy: [{ principals: ['bsf'], operations: [Op.KEY_OPERATION_MILENAGE] }],
      },
    }),
  )
})
after(async () => {
  await h.stop()
})

function request(extra: { ksKeySpec?: { keyId: string; algorithm?: pb.KeyAlgorithm }; omitCkIk?: boolean }) {
  return pb.MilenageRequest.fromPartial({
    keyId: 'sub-1',
    rand: hex(set1?.rand),
    sqn: hex(set1?.sqn),
    amf: hex(set1?.amf),
    omitCkIk: extra.omitCkIk ?? false,
    ...(extra.ksKeySpec === undefined ? {} : { ksKeySpec: extra.ksKeySpec }),
  })
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return fromGrpcError(err as grpc.ServiceError).code
  }
  return 'resolved'
}

test('ks_key_spec keeps Ks in the KMS: no CK/IK in the response, same Ks_NAF as the KDF over CK||IK', async () => {
  const out = await B.milenage(request({ ksKeySpec: { keyId: 'ks-1' } }))
  assert.equal(out.ck.length, 0)
  assert.equal(out.ik.length, 0)
  assert.equal(out.res.toString('hex'), set1?.f2)
  assert.equal(out.macA.toString('hex'), set1?.f1)
  assert.equal(out.ksKey?.id, 'ks-1')
  assert.equal(out.ksKey?.algorithm, Alg.KEY_ALGORITHM_HMAC_SHA256)
  assert.equal(out.ksKey?.exportable, false)
  assert.equal(out.ksKey?.labels['m2msec.derived-from'], 'sub-1/1')
  // Default policy: the caller may only DERIVE from Ks.
  assert.deepEqual(
    out.ksKey?.usagePolicy.map((r) => [r.principals, r.operations]),
    [[['bsf'], [Op.KEY_OPERATION_DERIVE]]],
  )
  assert.equal(
    await codeOf(B.mac(pb.MacRequest.fromPartial({ keyId: 'ks-1', data: Buffer.from('x') }))),
    'ERR_KEY_USAGE_DENIED',
  )

  const impi = '001010123456789@ims.mnc001.mcc001.3gppnetwork.org'
  const id = nafId('naf.example.com', UA_PROTOCOL_ID.httpDigest)
  await B.deriveKey(
    pb.DeriveKeyRequest.fromPartial({
      baseKeyId: 'ks-1',
      kdf: {
        $case: 'kdf3gpp',
        value: { fc: 1, params: [Buffer.from('gba-me'), hex(set1?.rand), Buffer.from(impi), Buffer.from(id)] },
      },
      keySpec: { keyId: 'ks-naf-1', algorithm: Alg.KEY_ALGORITHM_HMAC_SHA256 },
    }),
  )
  const expected = deriveKsNaf(Buffer.concat([hex(set1?.f3), hex(set1?.f4)]), hex(set1?.rand), impi, id, 'gba-me')
  const m = await B.mac(pb.MacRequest.fromPartial({ keyId: 'ks-naf-1', data: Buffer.from('probe') }))
  assert.equal(m.mac.toString('hex'), createHmac('sha256', expected).update('probe').digest('hex'))
})

test('omit_ck_ik leaves CK and IK out and creates no key; default still returns them', async () => {
  const omitted = await B.milenage(request({ omitCkIk: true }))
  assert.equal(omitted.ck.length + omitted.ik.length, 0)
  assert.equal(omitted.akStar.toString('hex'), set1?.f5star)
  assert.equal(omitted.ksKey, undefined)
  const plain = await B.milenage(request({}))
  assert.equal(plain.ck.toString('hex'), set1?.f3)
  assert.equal(plain.ik.toString('hex'), set1?.f4)
})

test('ks_key_spec: taken id, wrong algorithm and a caller without MILENAGE are refused', async () => {
  await B.milenage(request({ ksKeySpec: { keyId: 'ks-2' } }))
  assert.equal(await codeOf(B.milenage(request({ ksKeySpec: { keyId: 'ks-2' } }))), 'ERR_ALREADY_EXISTS')
  assert.equal(
    await codeOf(B.milenage(request({ ksKeySpec: { keyId: 'ks-3', algorithm: Alg.KEY_ALGORITHM_AES_256_GCM } }))),
    'ERR_INVALID_ARGUMENT',
  )
  // The admin is not named by sub-1's usage policy: it may see the key but not run MILENAGE.
  assert.equal(await codeOf(A.milenage(request({ ksKeySpec: { keyId: 'ks-4' } }))), 'ERR_KEY_USAGE_DENIED')
  assert.equal(await codeOf(A.getKey(pb.GetKeyRequest.fromPartial({ keyId: 'ks-4' }))), 'ERR_KEY_NOT_FOUND')
})
