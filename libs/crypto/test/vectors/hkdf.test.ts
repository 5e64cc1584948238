/** Generic runner for hkdf.json (RFC 5869 Appendix A, HKDF-SHA-256 test cases). */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { bytesToHex, hexToBytes, hkdfExpand, hkdfExtract, hkdfSha256 } from '../../src/index.ts'

interface HkdfCase {
  name: string
  hash: string
  ikm: string
  salt: string
  info: string
  L: number
  prk: string
  okm: string
}

const file = JSON.parse(readFileSync(new URL('./hkdf.json', import.meta.url), 'utf8')) as { cases: HkdfCase[] }
assert.ok(file.cases.length > 0, 'hkdf.json has cases')

for (const c of file.cases) {
  describe(c.name, () => {
    assert.equal(c.hash, 'SHA-256')
    const h = hexToBytes
    test('HKDF-Extract gives PRK', () => {
      assert.equal(bytesToHex(hkdfExtract(h(c.salt), h(c.ikm))), c.prk)
    })
    test('HKDF-Expand(PRK) gives OKM', () => {
      assert.equal(bytesToHex(hkdfExpand(h(c.prk), h(c.info), c.L)), c.okm)
    })
    test('hkdfSha256 (node:crypto) gives OKM', () => {
      assert.equal(bytesToHex(hkdfSha256(h(c.ikm), h(c.salt), h(c.info), c.L)), c.okm)
    })
  })
}
