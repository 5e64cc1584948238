import { createHmac } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import type { Random } from './ports.ts'

/** The largest request NIST SP 800-90A allows per HMAC_DRBG generate call (2^19 bits). */
const MAX_BYTES_PER_REQUEST = 65536

/**
 * A deterministic byte source for tests: HMAC_DRBG with SHA-256 (NIST SP 800-90A §10.1.2),
 * instantiated with the UTF-8 bytes of `seed` as seed material and never reseeded. The same
 * seed gives the same byte sequence on every run and machine, so certificate, token and
 * ciphertext outputs can be compared byte for byte.
 *
 * TEST AND DEVELOPMENT ONLY: the seed is the whole secret; never use this for real keys.
 *
 * @example
 * ```ts
 * const random = seededRandom('kms-test-1')
 * const nonce = random.bytes(12) // the same 12 bytes on every run
 * ```
 */
export function seededRandom(seed: string): Random {
  let key: Buffer = Buffer.alloc(32, 0x00)
  let v: Buffer = Buffer.alloc(32, 0x01)
  const hmac = (k: Buffer, ...parts: Buffer[]): Buffer => {
    const h = createHmac('sha256', k)
    for (const p of parts) h.update(p)
    return h.digest()
  }
  // HMAC_DRBG_Update (SP 800-90A §10.1.2.2).
  const update = (provided: Buffer): void => {
    key = hmac(key, v, Buffer.from([0x00]), provided)
    v = hmac(key, v)
    if (provided.length === 0) return
    key = hmac(key, v, Buffer.from([0x01]), provided)
    v = hmac(key, v)
  }
  update(Buffer.from(seed, 'utf8'))

  return {
    bytes(n: number): Uint8Array {
      if (!Number.isInteger(n) || n < 0 || n > MAX_BYTES_PER_REQUEST) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'bytes(n) needs an integer 0..65536', { n })
      }
      const out = new Uint8Array(n)
      let filled = 0
      while (filled < n) {
        v = hmac(key, v)
        out.set(v.subarray(0, Math.min(v.length, n - filled)), filled)
        filled += v.length
      }
      update(Buffer.alloc(0))
      return out
    },
  }
}
