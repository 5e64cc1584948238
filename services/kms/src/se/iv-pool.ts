/**
 * Random 96-bit GCM IVs from a pooled CSPRNG buffer: one `randomFillSync` per 4 KiB instead
 * of one `randomBytes` call per IV (3.7 µs -> 0.3 µs per IV measured by bench/kms). IVs are
 * public values; every IV is handed out once.
 */
import { randomFillSync } from 'node:crypto'

const POOL_BYTES = 4096
const pool = Buffer.alloc(POOL_BYTES)
let offset = POOL_BYTES

/** A fresh random IV of `length` bytes (a copy, never shared with the pool). */
export function randomIv(length: number): Buffer {
  if (offset + length > POOL_BYTES) {
    randomFillSync(pool)
    offset = 0
  }
  const iv = Buffer.from(pool.subarray(offset, offset + length))
  offset += length
  return iv
}

/**
 * `count` fresh random IVs of `length` bytes as views of one new buffer (one CSPRNG draw for a
 * whole batch; the buffer is never reused).
 */
export function randomIvs(count: number, length: number): Buffer[] {
  const all = randomFillSync(Buffer.allocUnsafe(count * length))
  const out = new Array<Buffer>(count)
  for (let i = 0; i < count; i++) out[i] = all.subarray(i * length, (i + 1) * length)
  return out
}
