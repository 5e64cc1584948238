import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync } from 'node:crypto'
import * as jose from 'jose'
import { admin, alice, bob, mallory, kmsFixture } from './kms-fixture.ts'

const bytes = (s: string) => Buffer.from(s, 'utf8')

test('encrypt/decrypt round trip; ciphertext is bound to key, AAD and tenant', async () => {
  const { ops } = await kmsFixture()
  await ops.createKey(admin, {
    keyId: 'data',
    algorithm: 'AES_256_GCM',
    usagePolicy: [{ principals: ['alice'], operations: ['ENCRYPT', 'DECRYPT'] }],
  })
  const { ciphertext } = await ops.encrypt(alice, { keyId: 'data', plaintext: bytes('meter 42'), aad: bytes('ctx') })
  const out = await ops.decrypt(alice, { ciphertext, aad: bytes('ctx') })
  assert.equal(Buffer.from(out.plaintext).toString(), 'meter 42')
  await assert.rejects(ops.decrypt(alice, { ciphertext, aad: bytes('other') }), { code: 'ERR_CIPHERTEXT_INVALID' })
  const tampered = Buffer.from(ciphertext)
  tampered[tampered.length - 1]! ^= 1
  await assert.rejects(ops.decrypt(alice, { ciphertext: tampered, aad: bytes('ctx') }), {
    code: 'ERR_CIPHERTEXT_INVALID',
  })
  await assert.rejects(ops.decrypt(alice, { ciphertext: bytes('garbage'), aad: bytes('') }), {
    code: 'ERR_CIPHERTEXT_INVALID',
  })
  // Another tenant with the same key id and principal name sees nothing.
  await assert.rejects(ops.decrypt(mallory, { ciphertext, aad: bytes('ctx') }), { code: 'ERR_KEY_NOT_FOUND' })
  await assert.rejects(ops.getKey(mallory, 'data'), { code: 'ERR_KEY_NOT_FOUND' })
})

test('usage policy: unnamed callers see nothing, named callers only their operations', async () => {
  const { ops } = await kmsFixture()
  await ops.createKey(admin, {
    keyId: 'k',
    algorithm: 'AES_256_GCM',
    usagePolicy: [{ principals: ['role:meter-reader'], operations: ['ENCRYPT'] }],
  })
  await ops.encrypt(bob, { keyId: 'k', plaintext: bytes('x'), aad: bytes('') })
  const { ciphertext } = await ops.encrypt(bob, { keyId: 'k', plaintext: bytes('x'), aad: bytes('') })
  await assert.rejects(ops.decrypt(bob, { ciphertext, aad: bytes('') }), { code: 'ERR_KEY_USAGE_DENIED' })
  await assert.rejects(ops.encrypt(alice, { keyId: 'k', plaintext: bytes('x'), aad: bytes('') }), {
    code: 'ERR_KEY_NOT_FOUND',
  })
  await assert.rejects(ops.getKey(alice, 'k'), { code: 'ERR_KEY_NOT_FOUND' })
  assert.equal((await ops.getKey(bob, 'k')).id, 'k')
  await assert.rejects(ops.createKey(alice, { algorithm: 'AES_256_GCM' }), { code: 'ERR_PERMISSION_DENIED' })
  await assert.rejects(ops.sign(bob, { keyId: 'k', message: bytes('m') }), { code: 'ERR_KEY_TYPE_MISMATCH' })
})

test('bad input is rejected with typed errors and changes nothing', async () => {
  const { ops, deps } = await kmsFixture()
  await assert.rejects(ops.createKey(admin, { keyId: 'bad id!', algorithm: 'AES_256_GCM' }), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  await assert.rejects(ops.createKey(admin, { keyId: 'x', algorithm: 'ROT13' as never }), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  await assert.rejects(ops.createKey(admin, { keyId: 'x', algorithm: 'MILENAGE' }), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(
    ops.createKey(admin, {
      keyId: 'x',
      algorithm: 'AES_256_GCM',
      usagePolicy: [{ principals: ['a'], operations: ['SIGN'] }],
    }),
    { code: 'ERR_INVALID_ARGUMENT' },
  )
  await assert.rejects(ops.createKey(admin, { keyId: 'x', algorithm: 'AES_256_GCM', secureEnvironment: 'nope' }), {
    code: 'ERR_SE_NOT_FOUND',
  })
  assert.equal((await deps.keys.list('acme', { limit: 10 })).items.length, 0)
  await ops.createKey(admin, { keyId: 'x', algorithm: 'AES_256_GCM' })
  await assert.rejects(ops.createKey(admin, { keyId: 'x', algorithm: 'AES_256_GCM' }), { code: 'ERR_ALREADY_EXISTS' })
  await assert.rejects(ops.encrypt(admin, { keyId: 'x', plaintext: new Uint8Array(64 * 1024 + 1), aad: bytes('') }), {
    code: 'ERR_PAYLOAD_TOO_LARGE',
  })
  await assert.rejects(ops.generateRandom(admin, 0), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(ops.generateRandom(admin, 1025), { code: 'ERR_INVALID_ARGUMENT' })
  assert.equal((await ops.generateRandom(admin, 32)).length, 32)
})

test('rotation: new data uses the new version, old ciphertexts and signatures still verify', async () => {
  const { ops } = await kmsFixture()
  await ops.createKey(admin, {
    keyId: 'r',
    algorithm: 'AES_256_GCM',
    usagePolicy: [{ principals: ['alice'], operations: ['ENCRYPT', 'DECRYPT'] }],
  })
  const old = await ops.encrypt(alice, { keyId: 'r', plaintext: bytes('v1'), aad: bytes('') })
  const rotated = await ops.rotateKey(admin, 'r')
  assert.equal(rotated.primaryVersion, 2)
  const fresh = await ops.encrypt(alice, { keyId: 'r', plaintext: bytes('v2'), aad: bytes('') })
  assert.equal(old.version, 1)
  assert.equal(fresh.version, 2)
  assert.equal(
    Buffer.from((await ops.decrypt(alice, { ciphertext: old.ciphertext, aad: bytes('') })).plaintext).toString(),
    'v1',
  )

  await ops.createKey(admin, {
    keyId: 's',
    algorithm: 'EC_P256_SIGN',
    usagePolicy: [{ principals: ['alice'], operations: ['SIGN', 'VERIFY'] }],
  })
  const sig1 = await ops.sign(alice, { keyId: 's', message: bytes('m') })
  await ops.rotateKey(admin, 's')
  assert.equal(
    (await ops.verify(alice, { keyId: 's', message: bytes('m'), signature: sig1.signature, version: 1 })).valid,
    true,
  )
  assert.equal((await ops.verify(alice, { keyId: 's', message: bytes('m'), signature: sig1.signature })).valid, false)
})

test('disable, re-enable, schedule destruction, destroy', async () => {
  const { ops, advance } = await kmsFixture()
  await ops.createKey(admin, {
    keyId: 'd',
    algorithm: 'HMAC_SHA256',
    usagePolicy: [{ principals: ['alice'], operations: ['MAC', 'VERIFY_MAC'] }],
  })
  const m = await ops.mac(alice, { keyId: 'd', data: bytes('x') })
  assert.equal((await ops.verifyMac(alice, { keyId: 'd', data: bytes('x'), mac: m.mac })).valid, true)
  assert.equal((await ops.verifyMac(alice, { keyId: 'd', data: bytes('y'), mac: m.mac })).valid, false)
  await ops.setKeyState(admin, 'd', 'DISABLED')
  await assert.rejects(ops.mac(alice, { keyId: 'd', data: bytes('x') }), { code: 'ERR_KEY_DISABLED' })
  await ops.setKeyState(admin, 'd', 'ENABLED')
  await ops.mac(alice, { keyId: 'd', data: bytes('x') })
  await assert.rejects(ops.setKeyState(admin, 'd', 'DESTRUCTION_SCHEDULED', new Date('2026-11-23T12:00:10Z')), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  const scheduled = await ops.setKeyState(admin, 'd', 'DESTRUCTION_SCHEDULED')
  assert.equal(scheduled.destroyAfter, '2026-11-24T12:00:00.000Z')
  await assert.rejects(ops.mac(alice, { keyId: 'd', data: bytes('x') }), { code: 'ERR_KEY_DISABLED' })
  assert.equal(await ops.destroyDueKey('acme', 'd'), false)
  advance(24 * 3600_000 + 1)
  assert.equal(await ops.destroyDueKey('acme', 'd'), true)
  const destroyed = await ops.getKey(admin, 'd')
  assert.equal(destroyed.state, 'DESTROYED')
  assert.ok(destroyed.versions.every((v) => v.ref === '' && v.destroyed === true))
  await assert.rejects(ops.setKeyState(admin, 'd', 'ENABLED'), { code: 'ERR_KEY_DESTROYED' })
  await assert.rejects(ops.mac(alice, { keyId: 'd', data: bytes('x') }), { code: 'ERR_KEY_DESTROYED' })
})

test('audit: every operation is recorded without data; when the log is down nothing happens', async () => {
  const { ops, audit, setAuditDown, deps } = await kmsFixture()
  await ops.createKey(admin, { keyId: 'a', algorithm: 'AES_256_GCM' })
  await assert.rejects(ops.encrypt(alice, { keyId: 'a', plaintext: bytes('secret-data'), aad: bytes('') }), {
    code: 'ERR_KEY_NOT_FOUND',
  })
  assert.ok(audit.some((e) => e.action === 'kms.CreateKey' && e.result === 'ok' && e.principal === 'ops-admin'))
  assert.ok(audit.some((e) => e.action === 'kms.Encrypt' && e.result === 'denied' && e.code === 'ERR_KEY_NOT_FOUND'))
  assert.ok(!JSON.stringify(audit).includes('secret-data'))
  setAuditDown(true)
  await assert.rejects(ops.createKey(admin, { keyId: 'b', algorithm: 'AES_256_GCM' }), {
    code: 'ERR_AUDIT_UNAVAILABLE',
  })
  await assert.rejects(ops.encrypt(admin, { keyId: 'a', plaintext: bytes('x'), aad: bytes('') }), {
    code: 'ERR_AUDIT_UNAVAILABLE',
  })
  setAuditDown(false)
  assert.equal(await deps.keys.get('acme', 'b'), undefined)
})

test('derive: same inputs give the same key; non-exportable bases cannot yield exportable keys', async () => {
  const { ops } = await kmsFixture()
  await ops.createKey(admin, { keyId: 'base', algorithm: 'HMAC_SHA256' })
  const d = { kdf: 'KDF_3GPP' as const, fc: 1, params: [bytes('gba-me'), bytes('rand'), bytes('impi'), bytes('naf')] }
  await ops.deriveKey(admin, { baseKeyId: 'base', derivation: d, target: { keyId: 'ks1', algorithm: 'HMAC_SHA256' } })
  await ops.deriveKey(admin, { baseKeyId: 'base', derivation: d, target: { keyId: 'ks2', algorithm: 'HMAC_SHA256' } })
  const m1 = await ops.mac(admin, { keyId: 'ks1', data: bytes('x') })
  const m2 = await ops.mac(admin, { keyId: 'ks2', data: bytes('x') })
  assert.deepEqual(m1.mac, m2.mac)
  assert.equal((await ops.getKey(admin, 'ks1')).labels['m2msec.derived-from'], 'base/1')
  await assert.rejects(
    ops.deriveKey(admin, {
      baseKeyId: 'base',
      derivation: d,
      target: { keyId: 'ks3', algorithm: 'HMAC_SHA256', exportable: true },
    }),
    { code: 'ERR_EXPORT_DENIED' },
  )
  await assert.rejects(
    ops.deriveKey(admin, {
      baseKeyId: 'base',
      derivation: { kdf: 'KDF_3GPP', fc: 256, params: [] },
      target: { algorithm: 'HMAC_SHA256' },
    }),
    { code: 'ERR_INVALID_ARGUMENT' },
  )
})

test('wrap to a public key, import with A256KW, then Milenage on the imported subscriber key', async () => {
  const { ops } = await kmsFixture()
  // A transport key the provisioning system may take out, wrapped to its own P-256 key.
  await ops.createKey(admin, { keyId: 'transport', algorithm: 'AES_256_GCM', exportable: true })
  await ops.createKey(admin, { keyId: 'locked', algorithm: 'AES_256_GCM' })
  const recipient = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const publicJwk = JSON.stringify(recipient.publicKey.export({ format: 'jwk' }))
  await assert.rejects(ops.wrapKey(admin, { keyId: 'locked', recipient: { publicJwk } }), { code: 'ERR_EXPORT_DENIED' })
  const privateJwk = JSON.stringify(recipient.privateKey.export({ format: 'jwk' }))
  await assert.rejects(ops.wrapKey(admin, { keyId: 'transport', recipient: { publicJwk: privateJwk } }), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  const { jwe } = await ops.wrapKey(admin, { keyId: 'transport', recipient: { publicJwk } })
  const { plaintext: kek, protectedHeader } = await jose.compactDecrypt(jwe, recipient.privateKey)
  assert.equal(protectedHeader.alg, 'ECDH-ES+A256KW')
  assert.equal(kek.length, 32)

  // TS 35.208 test set 1: K and OPc, wrapped by the provisioning system with the transport key.
  const k = Buffer.from('465b5ce8b199b49faa5f0a2ee238a6bc', 'hex')
  const opc = Buffer.from('cd63cb71954a9f4e48a5994e37a02baf', 'hex')
  const wrapped = await new jose.CompactEncrypt(Buffer.concat([k, opc]))
    .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
    .encrypt(kek)
  await ops.importKey(admin, {
    jwe: wrapped,
    unwrappingKeyId: 'transport',
    target: { keyId: 'sub-001', algorithm: 'MILENAGE' },
  })
  const out = await ops.milenage(admin, {
    keyId: 'sub-001',
    rand: Buffer.from('23553cbe9637a89d218ae64dae47bf35', 'hex'),
    sqn: Buffer.from('ff9bb4d0b607', 'hex'),
    amf: Buffer.from('b9b9', 'hex'),
  })
  assert.equal(Buffer.from(out.macA).toString('hex'), '4a9ffac354dfafb3')
  assert.equal(Buffer.from(out.res).toString('hex'), 'a54211d5e3ba50bf')
  await assert.rejects(
    ops.milenage(admin, { keyId: 'sub-001', rand: new Uint8Array(15), sqn: new Uint8Array(6), amf: new Uint8Array(2) }),
    {
      code: 'ERR_INVALID_ARGUMENT',
    },
  )
  await assert.rejects(ops.wrapKey(admin, { keyId: 'sub-001', recipient: { publicJwk } }), {
    code: 'ERR_KEY_TYPE_MISMATCH',
  })
})

test('secure storage is private to its owner', async () => {
  const { ops } = await kmsFixture()
  await ops.putSecret(alice, { name: 'wifi/psk', value: bytes('hunter2') })
  assert.equal(Buffer.from((await ops.getSecret(alice, 'wifi/psk')).value).toString(), 'hunter2')
  await assert.rejects(ops.getSecret(bob, 'wifi/psk'), { code: 'ERR_SECRET_NOT_FOUND' })
  await assert.rejects(ops.getSecret(admin, 'wifi/psk'), { code: 'ERR_SECRET_NOT_FOUND' })
  assert.deepEqual(
    (await ops.listSecrets(alice, { pageSize: 0 })).secrets.map((s) => s.name),
    ['wifi/psk'],
  )
  assert.deepEqual((await ops.listSecrets(bob, { pageSize: 0 })).secrets, [])
  await assert.rejects(ops.deleteSecret(bob, 'wifi/psk'), { code: 'ERR_SECRET_NOT_FOUND' })
  await ops.deleteSecret(alice, 'wifi/psk')
  await assert.rejects(ops.getSecret(alice, 'wifi/psk'), { code: 'ERR_SECRET_NOT_FOUND' })
  // The internal storage key is never listed.
  assert.ok((await ops.listKeys(admin, { pageSize: 0 })).keys.every((k) => !k.id.startsWith('_')))
})

test('list keys pages; non-admins see only keys they may use', async () => {
  const { ops } = await kmsFixture()
  for (let i = 0; i < 5; i++) {
    await ops.createKey(admin, {
      keyId: `k${i}`,
      algorithm: 'HMAC_SHA256',
      usagePolicy: [{ principals: [i % 2 === 0 ? 'alice' : 'bob'], operations: ['MAC'] }],
    })
  }
  const p1 = await ops.listKeys(admin, { pageSize: 2 })
  assert.deepEqual(
    p1.keys.map((k) => k.id),
    ['k0', 'k1'],
  )
  const p2 = await ops.listKeys(admin, { pageSize: 2, ...(p1.nextPageToken ? { pageToken: p1.nextPageToken } : {}) })
  assert.deepEqual(
    p2.keys.map((k) => k.id),
    ['k2', 'k3'],
  )
  assert.deepEqual(
    (await ops.listKeys(alice, { pageSize: 0 })).keys.map((k) => k.id),
    ['k0', 'k2', 'k4'],
  )
  const a1 = await ops.listKeys(alice, { pageSize: 2 })
  assert.deepEqual(
    a1.keys.map((k) => k.id),
    ['k0', 'k2'],
  )
  assert.ok(a1.nextPageToken)
  const a2 = await ops.listKeys(alice, { pageSize: 2, pageToken: a1.nextPageToken })
  assert.deepEqual(
    a2.keys.map((k) => k.id),
    ['k4'],
  )
  assert.equal(a2.nextPageToken, undefined)
})

test('an HMAC key imported by the caller computes standard HMAC-SHA-256', async () => {
  const { ops } = await kmsFixture()
  await ops.createKey(admin, { keyId: 'kek', algorithm: 'AES_256_GCM', exportable: true })
  const r = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const { jwe } = await ops.wrapKey(admin, {
    keyId: 'kek',
    recipient: { publicJwk: JSON.stringify(r.publicKey.export({ format: 'jwk' })) },
  })
  const kek = (await jose.compactDecrypt(jwe, r.privateKey)).plaintext
  const material = Buffer.alloc(32, 7)
  const wrapped = await new jose.CompactEncrypt(material)
    .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
    .encrypt(kek)
  await ops.unwrapKey(admin, { jwe: wrapped, unwrappingKeyId: 'kek', target: { keyId: 'h', algorithm: 'HMAC_SHA256' } })
  const { mac } = await ops.mac(admin, { keyId: 'h', data: bytes('abc') })
  assert.equal(Buffer.from(mac).toString('hex'), createHmac('sha256', material).update('abc').digest('hex'))
})
