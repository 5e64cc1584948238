import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import * as jose from 'jose'
import { fromGrpcError } from '@m2msec/runtime'
import { grpcHealthCheck, grpcListServices } from '@m2msec/testkit'
import * as pb from '@m2msec/proto/kms/v1'
import { startKmsHarness, type Kms, type KmsHarness } from './kms-harness.ts'

const admin = { tenant: 'acme', principal: 'ops', roles: ['admin'] }
const device = { tenant: 'acme', principal: 'meter-1', roles: ['device'] }
const otherAdmin = { tenant: 'globex', principal: 'ops', roles: ['admin'] }

let h: KmsHarness
let A: Kms
let D: Kms
let G: Kms

before(async () => {
  h = await startKmsHarness({ pkcs11: true })
  A = await h.client(admin)
  D = await h.client(device)
  G = await h.client(otherAdmin)
})
after(async () => {
  await h.stop()
})

const Alg = pb.KeyAlgorithm
const Op = pb.KeyOperation
const bytes = (s: string) => Buffer.from(s)

async function expectError(p: Promise<unknown>, status: grpc.status, code: string): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, status, `status ${grpc.status[err.code]} (${err.details})`)
    assert.equal(fromGrpcError(err).code, code)
    return true
  })
}

function createKey(c: Kms, spec: Partial<pb.KeySpec>, se = '') {
  return c.createKey(pb.CreateKeyRequest.fromPartial({ keySpec: spec, secureEnvironment: se }))
}

/** Imports raw key material the way an operator would: wrapped under a KMS transport key. */
async function importMaterial(se: string, keyId: string, algorithm: pb.KeyAlgorithm, material: Buffer): Promise<void> {
  const transportId = `transport-${keyId}`
  await createKey(
    A,
    { keyId: transportId, algorithm: Alg.KEY_ALGORITHM_AES_256_GCM, exportable: true },
    se === 'hsm' ? 'software' : se,
  )
  const r = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const wrapped = await A.wrapKey(
    pb.WrapKeyRequest.fromPartial({
      keyId: transportId,
      recipient: { $case: 'publicJwk', value: JSON.stringify(r.publicKey.export({ format: 'jwk' })) },
    }),
  )
  const kek = (await jose.compactDecrypt(wrapped.wrappedKey, r.privateKey)).plaintext
  const jwe = await new jose.CompactEncrypt(material).setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' }).encrypt(kek)
  await A.importKey(
    pb.ImportKeyRequest.fromPartial({
      wrappedKey: jwe,
      unwrappingKeyId: transportId,
      keySpec: { keyId, algorithm, usagePolicy: [] },
    }),
  )
}

test('health and reflection answer without credentials; KMS RPCs do not', async () => {
  const tlsOnly = grpc.credentials.createSsl(Buffer.from(h.caPem))
  assert.equal(await grpcHealthCheck(h.target, tlsOnly, 'm2msec.kms.v1.KeyManagement'), 'SERVING')
  assert.ok((await grpcListServices(h.target, tlsOnly)).includes('m2msec.kms.v1.KeyManagement'))
  const anon = h.anonymousClient()
  await expectError(anon.listSecureEnvironments({}), grpc.status.UNAUTHENTICATED, 'ERR_UNAUTHENTICATED')
})

test('encrypt, decrypt, sign, verify, MAC through the RPC; another tenant sees nothing', async () => {
  await createKey(A, {
    keyId: 'meter-data',
    algorithm: Alg.KEY_ALGORITHM_AES_256_GCM,
    usagePolicy: [{ principals: ['role:device'], operations: [Op.KEY_OPERATION_ENCRYPT, Op.KEY_OPERATION_DECRYPT] }],
  })
  const enc = await D.encrypt(
    pb.EncryptRequest.fromPartial({ keyId: 'meter-data', plaintext: bytes('42 kWh'), associatedData: bytes('m1') }),
  )
  const dec = await D.decrypt(
    pb.DecryptRequest.fromPartial({ ciphertext: enc.ciphertext, associatedData: bytes('m1') }),
  )
  assert.equal(dec.plaintext.toString(), '42 kWh')
  await expectError(
    G.decrypt(pb.DecryptRequest.fromPartial({ ciphertext: enc.ciphertext, associatedData: bytes('m1') })),
    grpc.status.NOT_FOUND,
    'ERR_KEY_NOT_FOUND',
  )
  await expectError(G.getKey({ keyId: 'meter-data' }), grpc.status.NOT_FOUND, 'ERR_KEY_NOT_FOUND')

  for (const [id, alg, se] of [
    ['es-sw', Alg.KEY_ALGORITHM_EC_P256_SIGN, 'software'],
    ['es-hsm', Alg.KEY_ALGORITHM_EC_P256_SIGN, 'hsm'],
    ['ed-sw', Alg.KEY_ALGORITHM_ED25519_SIGN, 'software'],
  ] as const) {
    const { key } = await createKey(A, { keyId: id, algorithm: alg }, se)
    assert.equal(key?.secureEnvironment, se)
    const sig = await A.sign(pb.SignRequest.fromPartial({ keyId: id, message: bytes('open valve 7') }))
    const jwk = JSON.parse(key?.versions[0]?.publicJwk ?? '{}')
    const { createPublicKey, verify } = await import('node:crypto')
    const pub = createPublicKey({ key: jwk, format: 'jwk' })
    const ok =
      alg === Alg.KEY_ALGORITHM_ED25519_SIGN
        ? verify(null, bytes('open valve 7'), pub, sig.signature)
        : verify('sha256', bytes('open valve 7'), { key: pub, dsaEncoding: 'ieee-p1363' }, sig.signature)
    assert.ok(ok, `${id}: signature verifies with node:crypto and the published JWK`)
    assert.equal(
      (
        await A.verify(
          pb.VerifyRequest.fromPartial({ keyId: id, message: bytes('open valve 8'), signature: sig.signature }),
        )
      ).valid,
      false,
    )
  }

  await createKey(A, { keyId: 'mac-hsm', algorithm: Alg.KEY_ALGORITHM_HMAC_SHA256 }, 'hsm')
  const m = await A.mac(pb.MacRequest.fromPartial({ keyId: 'mac-hsm', data: bytes('x') }))
  assert.equal(
    (await A.verifyMac(pb.VerifyMacRequest.fromPartial({ keyId: 'mac-hsm', data: bytes('x'), mac: m.mac }))).valid,
    true,
  )
  assert.equal(
    (await A.verifyMac(pb.VerifyMacRequest.fromPartial({ keyId: 'mac-hsm', data: bytes('y'), mac: m.mac }))).valid,
    false,
  )
})

const vectors = JSON.parse(
  readFileSync(new URL('../../../../libs/crypto/test/vectors/milenage.json', import.meta.url), 'utf8'),
) as {
  test_sets: Array<Record<string, string>>
}
const gba = JSON.parse(
  readFileSync(new URL('../../../../libs/crypto/test/vectors/gba-kdf.json', import.meta.url), 'utf8'),
) as {
  vectors: Array<{ inputs: Record<string, string>; ks?: string; naf_id_hex?: string; output?: string }>
}

for (const se of ['software', 'hsm']) {
  test(`Milenage through the RPC matches every TS 35.208 set (${se} SE)`, async () => {
    for (const v of vectors.test_sets) {
      if (v.opc === undefined || v.k === undefined) continue
      const keyId = `sub-${se}-${v.test_set}`
      await importMaterial(se, keyId, Alg.KEY_ALGORITHM_MILENAGE, Buffer.from(v.k + v.opc, 'hex'))
      const out = await A.milenage(
        pb.MilenageRequest.fromPartial({
          keyId,
          rand: Buffer.from(v.rand ?? '', 'hex'),
          sqn: Buffer.from(v.sqn ?? '', 'hex'),
          amf: Buffer.from(v.amf ?? '', 'hex'),
        }),
      )
      const set = `TS 35.208 set ${v.test_set}`
      assert.equal(out.macA.toString('hex'), v.f1, `${set} f1`)
      assert.equal(out.macS.toString('hex'), v.f1star, `${set} f1*`)
      assert.equal(out.res.toString('hex'), v.f2, `${set} f2`)
      assert.equal(out.ck.toString('hex'), v.f3, `${set} f3`)
      assert.equal(out.ik.toString('hex'), v.f4, `${set} f4`)
      assert.equal(out.ak.toString('hex'), v.f5, `${set} f5`)
      assert.equal(out.akStar.toString('hex'), v.f5star, `${set} f5*`)
    }
  })
}

test('3GPP KDF (TS 33.220 Annex B) through DeriveKey matches the Ks_NAF vector', async () => {
  const v = gba.vectors.find((x) => x.output !== undefined && x.ks !== undefined)
  assert.ok(v?.ks && v.output && v.naf_id_hex)
  await importMaterial('software', 'ks-vector', Alg.KEY_ALGORITHM_HMAC_SHA256, Buffer.from(v.ks, 'hex'))
  await A.deriveKey(
    pb.DeriveKeyRequest.fromPartial({
      baseKeyId: 'ks-vector',
      kdf: {
        $case: 'kdf3gpp',
        value: {
          fc: 1,
          params: [
            bytes('gba-me'),
            Buffer.from(v.inputs.rand ?? '', 'hex'),
            bytes(v.inputs.impi ?? ''),
            Buffer.from(v.naf_id_hex, 'hex'),
          ],
        },
      },
      keySpec: { keyId: 'ks-naf', algorithm: Alg.KEY_ALGORITHM_HMAC_SHA256 },
    }),
  )
  // The derived key never leaves the KMS: compare what it computes with the expected key's HMAC.
  const m = await A.mac(pb.MacRequest.fromPartial({ keyId: 'ks-naf', data: bytes('probe') }))
  assert.equal(m.mac.toString('hex'), createHmac('sha256', Buffer.from(v.output, 'hex')).update('probe').digest('hex'))
})

test('batch operations return per-item results and errors', async () => {
  await createKey(A, { keyId: 'batch', algorithm: Alg.KEY_ALGORITHM_AES_256_GCM })
  const res = await A.batchEncrypt(
    pb.BatchEncryptRequest.fromPartial({
      items: [
        { keyId: 'batch', plaintext: bytes('a') },
        { keyId: 'nope', plaintext: bytes('b') },
        { keyId: 'batch', plaintext: Buffer.alloc(64 * 1024 + 1) },
      ],
    }),
  )
  assert.equal(res.results[0]?.outcome?.$case, 'result')
  const e1 = res.results[1]?.outcome
  assert.equal(e1?.$case, 'error')
  assert.equal(e1?.$case === 'error' ? e1.value.code : -1, grpc.status.NOT_FOUND)
  const e2 = res.results[2]?.outcome
  assert.equal(e2?.$case === 'error' ? e2.value.code : -1, grpc.status.INVALID_ARGUMENT)
  await expectError(
    A.batchEncrypt(pb.BatchEncryptRequest.fromPartial({ items: [] })),
    grpc.status.INVALID_ARGUMENT,
    'ERR_INVALID_ARGUMENT',
  )
  const many = Array.from({ length: 1001 }, () => ({ keyId: 'batch', plaintext: bytes('x') }))
  await expectError(
    A.batchEncrypt(pb.BatchEncryptRequest.fromPartial({ items: many })),
    grpc.status.INVALID_ARGUMENT,
    'ERR_PAYLOAD_TOO_LARGE',
  )
})

test('bad input gets a typed error and changes nothing', async () => {
  const before = await A.listKeys(pb.ListKeysRequest.fromPartial({ pageSize: 1000 }))
  await createKey(A, { keyId: 'disabled-key', algorithm: Alg.KEY_ALGORITHM_AES_256_GCM })
  await A.setKeyState(
    pb.SetKeyStateRequest.fromPartial({ keyId: 'disabled-key', state: pb.KeyState.KEY_STATE_DISABLED }),
  )
  const cases: Array<[string, () => Promise<unknown>, grpc.status, string]> = [
    ['no algorithm', () => createKey(A, { keyId: 'x1' }), grpc.status.INVALID_ARGUMENT, 'ERR_INVALID_ARGUMENT'],
    [
      'unknown enum value',
      () => createKey(A, { keyId: 'x2', algorithm: 99 as pb.KeyAlgorithm }),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'bad key id',
      () => createKey(A, { keyId: '../etc', algorithm: Alg.KEY_ALGORITHM_AES_256_GCM }),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'missing key spec',
      () => A.createKey(pb.CreateKeyRequest.fromPartial({})),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'unknown SE',
      () => createKey(A, { keyId: 'x3', algorithm: Alg.KEY_ALGORITHM_AES_256_GCM }, 'cloud-9'),
      grpc.status.NOT_FOUND,
      'ERR_SE_NOT_FOUND',
    ],
    [
      'not an admin',
      () => createKey(D, { keyId: 'x4', algorithm: Alg.KEY_ALGORITHM_AES_256_GCM }),
      grpc.status.PERMISSION_DENIED,
      'ERR_PERMISSION_DENIED',
    ],
    [
      'disabled key',
      () => A.encrypt(pb.EncryptRequest.fromPartial({ keyId: 'disabled-key', plaintext: bytes('x') })),
      grpc.status.FAILED_PRECONDITION,
      'ERR_KEY_DISABLED',
    ],
    [
      'oversized plaintext',
      () => A.encrypt(pb.EncryptRequest.fromPartial({ keyId: 'batch', plaintext: Buffer.alloc(65 * 1024) })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_PAYLOAD_TOO_LARGE',
    ],
    [
      'garbage ciphertext',
      () => A.decrypt(pb.DecryptRequest.fromPartial({ ciphertext: bytes('M2C1garbage') })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_CIPHERTEXT_INVALID',
    ],
    [
      'wrong key type',
      () => A.sign(pb.SignRequest.fromPartial({ keyId: 'batch', message: bytes('x') })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_KEY_TYPE_MISMATCH',
    ],
    [
      'export of a non-exportable key',
      () =>
        A.wrapKey(pb.WrapKeyRequest.fromPartial({ keyId: 'batch', recipient: { $case: 'kmsKeyId', value: 'batch' } })),
      grpc.status.PERMISSION_DENIED,
      'ERR_EXPORT_DENIED',
    ],
    [
      'malformed JWE import',
      () =>
        A.importKey(
          pb.ImportKeyRequest.fromPartial({
            wrappedKey: 'a.b.c.d.e',
            unwrappingKeyId: 'batch',
            keySpec: { keyId: 'x5', algorithm: Alg.KEY_ALGORITHM_AES_256_GCM },
          }),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    ['random too long', () => A.generateRandom({ length: 4096 }), grpc.status.INVALID_ARGUMENT, 'ERR_INVALID_ARGUMENT'],
    [
      'milenage short RAND',
      () =>
        A.milenage(
          pb.MilenageRequest.fromPartial({
            keyId: 'sub-software-1',
            rand: Buffer.alloc(8),
            sqn: Buffer.alloc(6),
            amf: Buffer.alloc(2),
          }),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'destroy too soon',
      () =>
        A.setKeyState(
          pb.SetKeyStateRequest.fromPartial({
            keyId: 'batch',
            state: pb.KeyState.KEY_STATE_DESTRUCTION_SCHEDULED,
            destroyAfter: new Date(),
          }),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    ["another owner's secret", () => D.getSecret({ name: 'wifi' }), grpc.status.NOT_FOUND, 'ERR_SECRET_NOT_FOUND'],
  ]
  await A.putSecret(pb.PutSecretRequest.fromPartial({ name: 'wifi', value: bytes('pw') }))
  for (const [name, call, status, code] of cases) {
    await test(name, () => expectError(call(), status, code))
  }
  const afterList = await A.listKeys(pb.ListKeysRequest.fromPartial({ pageSize: 1000 }))
  assert.deepEqual(afterList.keys.map((k) => k.id).sort(), [...before.keys.map((k) => k.id), 'disabled-key'].sort())
})

test('a malformed protobuf request is INVALID_ARGUMENT, not INTERNAL', async () => {
  const raw = new grpc.Client(h.target, await h.credentials(admin))
  const err = await new Promise<grpc.ServiceError>((ok) =>
    raw.makeUnaryRequest(
      '/m2msec.kms.v1.KeyManagement/Encrypt',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
      (e) => ok(e as grpc.ServiceError),
    ),
  )
  raw.close()
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT, `${grpc.status[err.code]}: ${err.details}`)
})
