import { test } from 'node:test'
import assert from 'node:assert/strict'
import { admin, alice, kmsFixture } from './kms-fixture.ts'

const bytes = (s: string) => Buffer.from(s, 'utf8')

test('a batch authorizes each key once, answers per item and writes one audit record per key', async () => {
  const { ops, audit } = await kmsFixture()
  await ops.createKey(admin, {
    keyId: 'a',
    algorithm: 'AES_256_GCM',
    usagePolicy: [{ principals: ['alice'], operations: ['ENCRYPT', 'DECRYPT'] }],
  })
  await ops.createKey(admin, { keyId: 'b', algorithm: 'AES_256_GCM' })
  const before = audit.length
  const out = await ops.batchEncrypt(alice, [
    { keyId: 'a', plaintext: bytes('1'), aad: bytes('') },
    { keyId: 'a', plaintext: new Uint8Array(64 * 1024 + 1), aad: bytes('') },
    { keyId: 'b', plaintext: bytes('3'), aad: bytes('') },
    { keyId: 'a', plaintext: bytes('4'), aad: bytes('x') },
  ])
  assert.deepEqual(
    out.map((o) => (o.ok ? 'ok' : o.error.code)),
    ['ok', 'ERR_PAYLOAD_TOO_LARGE', 'ERR_KEY_NOT_FOUND', 'ok'],
  )
  const records = audit.slice(before)
  assert.equal(records.length, 2)
  assert.deepEqual(
    records
      .map((r) => [r.action, r.resource, r.result, r.details])
      .sort((x, y) => String(x[1]).localeCompare(String(y[1]))),
    [
      ['kms.BatchEncrypt', 'key/a', 'error', { items: 3, ok: 2, failed: 1, denied: 0 }],
      ['kms.BatchEncrypt', 'key/b', 'denied', { items: 1, ok: 0, failed: 0, denied: 1 }],
    ],
  )
  const dec = await ops.batchDecrypt(alice, [
    { ciphertext: out[0]?.ok ? out[0].value.ciphertext : new Uint8Array(), aad: bytes('') },
    { ciphertext: out[3]?.ok ? out[3].value.ciphertext : new Uint8Array(), aad: bytes('wrong') },
    { ciphertext: bytes('garbage'), aad: bytes('') },
  ])
  assert.deepEqual(
    dec.map((o) => (o.ok ? Buffer.from(o.value.plaintext).toString() : o.error.code)),
    ['1', 'ERR_CIPHERTEXT_INVALID', 'ERR_CIPHERTEXT_INVALID'],
  )
})

test('a batch is refused whole when its audit record cannot be written, and bounded in size', async () => {
  const { ops, setAuditDown } = await kmsFixture()
  await ops.createKey(admin, { keyId: 'm', algorithm: 'HMAC_SHA256' })
  setAuditDown(true)
  await assert.rejects(ops.batchMac(admin, [{ keyId: 'm', data: bytes('x') }]), { code: 'ERR_AUDIT_UNAVAILABLE' })
  setAuditDown(false)
  await assert.rejects(ops.batchMac(admin, []), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(
    ops.batchMac(
      admin,
      Array.from({ length: 1001 }, () => ({ keyId: 'm', data: bytes('x') })),
    ),
    {
      code: 'ERR_PAYLOAD_TOO_LARGE',
    },
  )
  const signed = await ops.batchSign(admin, [{ keyId: 'm', message: bytes('x') }])
  assert.equal(signed[0]?.ok ? 'ok' : signed[0]?.error.code, 'ERR_KEY_TYPE_MISMATCH')
})
