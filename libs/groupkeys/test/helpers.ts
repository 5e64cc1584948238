/** Shared test helpers: a seeded byte source and seeded choices, so failures replay exactly. */
import { createHash } from 'node:crypto'
import type { RandomSource } from '../src/index.ts'

/** Deterministic byte source: SHA-256(seed || counter) blocks. Tests only. */
export function seededRandom(seed: string): RandomSource {
  let counter = 0
  return (length: number) => {
    const out = new Uint8Array(length)
    for (let off = 0; off < length; off += 32) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest()
      out.set(block.subarray(0, Math.min(32, length - off)), off)
    }
    return out
  }
}

/** Deterministic integers in [0, n) (mulberry32). */
export function seededInt(seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

/** A member's 32-byte credential, derived from its id (test fixture, not a real credential). */
export function credentialOf(memberId: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`credential/${memberId}`).digest())
}
