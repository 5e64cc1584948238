import { test } from 'node:test'
import assert from 'node:assert/strict'
import { hkdfSync, randomBytes } from 'node:crypto'
import { HKDF_SHA256_MAX_LENGTH, hkdfExpand, hkdfExtract, hkdfSha256 } from '../src/index.ts'

test('extract + expand (hand-written) agree with node:crypto hkdfSync over several lengths', () => {
  const ikm = randomBytes(40)
  const salt = randomBytes(13)
  const info = randomBytes(20)
  for (const length of [1, 31, 32, 33, 64, 100, HKDF_SHA256_MAX_LENGTH]) {
    const expected = new Uint8Array(hkdfSync('sha256', ikm, salt, info, length))
    assert.deepEqual(hkdfExpand(hkdfExtract(salt, ikm), info, length), expected, String(length))
    assert.deepEqual(hkdfSha256(ikm, salt, info, length), expected, String(length))
  }
})

test('info longer than hkdfSync accepts (1024 bytes) still works', () => {
  const ikm = randomBytes(32)
  const info = randomBytes(2000)
  const out = hkdfSha256(ikm, new Uint8Array(0), info, 32)
  assert.deepEqual(out, hkdfExpand(hkdfExtract(new Uint8Array(0), ikm), info, 32))
  assert.notDeepEqual(out, hkdfSha256(ikm, new Uint8Array(0), info.subarray(0, 1999), 32))
})

test('output length bounds and PRK length are enforced', () => {
  const prk = new Uint8Array(32)
  for (const length of [0, -1, 1.5, HKDF_SHA256_MAX_LENGTH + 1]) {
    assert.throws(() => hkdfExpand(prk, new Uint8Array(0), length), { code: 'ERR_INVALID_ARGUMENT' }, String(length))
    assert.throws(
      () => hkdfSha256(prk, prk, new Uint8Array(0), length),
      { code: 'ERR_INVALID_ARGUMENT' },
      String(length),
    )
  }
  assert.throws(() => hkdfExpand(new Uint8Array(31), new Uint8Array(0), 32), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'prk must be 32 bytes',
  })
})
