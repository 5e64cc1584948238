import type { Random } from './ports.ts'

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'

/** A random 26-character base32 id (130 bits): token jtis and generated credential ids. */
export function base32Id(random: Random): string {
  let out = ''
  for (const b of random.bytes(26)) out += ALPHABET[b & 31]
  return out
}
