import type { Random } from './ports.ts'

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'

/** A random 26-character base32 id (130 bits), safe as a key id and a KV key part. */
export function base32Id(random: Random): string {
  const bytes = random.bytes(26)
  let out = ''
  for (const b of bytes) out += ALPHABET[b & 31]
  return out
}
