/**
 * Byte encodings shared by every derivation and MAC input of the group protocol
 * (docs/groups-protocol.md §2): length-prefixed fields, so no two different field lists
 * encode to the same bytes, and the labels that separate one use of a key from another.
 */
import { invalidArgument } from '@m2msec/errors'

const utf8 = new TextEncoder()

/** Domain-separation labels (ASCII). Changing one changes every derived key: bump the `v1`. */
export const LABELS = {
  memberWrapKey: 'm2msec/groups/v1/member-wrap-key',
  memberAuthKey: 'm2msec/groups/v1/member-auth-key',
  memberMac: 'm2msec/groups/v1/member-mac',
  membersDigest: 'm2msec/groups/v1/members-digest',
  agentProof: 'm2msec/groups/v1/agent-proof',
  agentSubsetProof: 'm2msec/groups/v1/agent-subset-proof',
  serverVerdict: 'm2msec/groups/v1/server-verdict',
  sessionKey: 'm2msec/groups/v1/session-key',
} as const

/** A field of {@link encodeFields}: strings are UTF-8 (not normalised), numbers are uint64 big-endian. */
export type Field = string | number | Uint8Array

/**
 * 8-byte big-endian encoding of a non-negative safe integer (epochs, rounds, counts).
 *
 * @example
 * ```ts
 * uint64(1) // 00 00 00 00 00 00 00 01
 * ```
 */
export function uint64(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument('integer field must be a non-negative safe integer', { field: 'uint64' })
  }
  const out = new Uint8Array(8)
  const view = new DataView(out.buffer)
  view.setUint32(0, Math.floor(value / 2 ** 32))
  view.setUint32(4, value >>> 0)
  return out
}

/** UTF-8 bytes of `text`, exactly as given (ids are compared byte for byte, never normalised). */
export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text)
}

/**
 * Concatenation of `uint32be(len(f)) || f` for every field: the unambiguous encoding used by
 * every KDF info and MAC input of the protocol.
 *
 * @example
 * ```ts
 * encodeFields(LABELS.memberMac, challenge, 'group-1', 'member-7', nonce)
 * ```
 */
export function encodeFields(...fields: readonly Field[]): Uint8Array {
  const parts = fields.map((f) => (typeof f === 'string' ? utf8.encode(f) : typeof f === 'number' ? uint64(f) : f))
  let total = 0
  for (const p of parts) total += 4 + p.length
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  let offset = 0
  for (const p of parts) {
    view.setUint32(offset, p.length)
    out.set(p, offset + 4)
    offset += 4 + p.length
  }
  return out
}

/** Throws ERR_INVALID_ARGUMENT unless `value` is a non-empty string of at most `max` UTF-16 units. */
export function assertId(value: unknown, field: string, max = 1024): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw invalidArgument(`${field} must be a non-empty string of at most ${max} characters`, { field })
  }
}

/** Throws ERR_INVALID_ARGUMENT unless `value` is a non-negative safe integer. */
export function assertCount(value: unknown, field: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(`${field} must be a non-negative integer`, { field })
  }
}
