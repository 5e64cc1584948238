import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  base64ToBytes,
  base64UrlToBytes,
  bytesToBase64,
  bytesToBase64Url,
  bytesToHex,
  concatBytes,
  constantTimeEqual,
  hexToBytes,
  utf8Nfkc,
  xorBytes,
} from '../src/index.ts'

test('hex round trip, upper and lower case in, lowercase out, plain Uint8Array', () => {
  const bytes = hexToBytes('00FFa5')
  assert.deepEqual(bytes, Uint8Array.of(0x00, 0xff, 0xa5))
  assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype)
  assert.equal(bytesToHex(bytes), '00ffa5')
  assert.deepEqual(hexToBytes(''), new Uint8Array(0))
})

test('hexToBytes rejects odd length and non-hex without echoing the input', () => {
  for (const bad of ['abc', 'zz', '0x00', 'aa bb']) {
    assert.throws(
      () => hexToBytes(bad),
      (err: { code?: string; message?: string }) => err.code === 'ERR_INVALID_ARGUMENT' && !err.message?.includes(bad),
    )
  }
})

test('base64 and base64url round trips, strict decoding', () => {
  const bytes = Uint8Array.of(0xfb, 0xff, 0xbf, 0x01)
  assert.equal(bytesToBase64(bytes), '+/+/AQ==')
  assert.equal(bytesToBase64Url(bytes), '-_-_AQ')
  assert.deepEqual(base64ToBytes('+/+/AQ=='), bytes)
  assert.deepEqual(base64UrlToBytes('-_-_AQ'), bytes)
  // base64: padding required, no base64url alphabet, no stray characters.
  for (const bad of ['+/+/AQ', '-_-_AQ==', 'a', 'AQ==\n']) {
    assert.throws(() => base64ToBytes(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad)
  }
  // base64url: no padding, no base64 alphabet, no impossible length.
  for (const bad of ['AQ==', '+/+/AQ', 'A']) {
    assert.throws(() => base64UrlToBytes(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad)
  }
})

test('constantTimeEqual: equal, different, and different length (false, no throw)', () => {
  assert.equal(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)), true)
  assert.equal(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4)), false)
  assert.equal(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2)), false)
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true)
})

test('xorBytes and concatBytes', () => {
  assert.deepEqual(xorBytes(Uint8Array.of(0xf0, 0x0f), Uint8Array.of(0xff, 0xff)), Uint8Array.of(0x0f, 0xf0))
  assert.throws(() => xorBytes(Uint8Array.of(1), Uint8Array.of(1, 2)), { code: 'ERR_INVALID_ARGUMENT' })
  assert.deepEqual(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)), Uint8Array.of(1, 2, 3))
})

test('utf8Nfkc normalises compatibility characters before encoding', () => {
  // Fullwidth "ｎ" (U+FF4E) and the "ﬁ" ligature (U+FB01) fold to ASCII under NFKC.
  assert.deepEqual(utf8Nfkc('ｎaf.ﬁ'), new TextEncoder().encode('naf.fi'))
  assert.equal(utf8Nfkc('é').length, 2)
})
