/**
 * ECDSA signature encodings: AWS KMS speaks DER (`ECDSA-Sig-Value ::= SEQUENCE { r INTEGER,
 * s INTEGER }`, SEC 1 / RFC 3279), the SE contract speaks IEEE P1363 (`r || s`, fixed width).
 */

/**
 * DER → r||s with each integer left-padded to `size` bytes (32 for P-256). Returns undefined
 * when `der` is not one well-formed SEQUENCE of two positive INTEGERs that fit.
 *
 * @example derToP1363(kmsSignature, 32) // Uint8Array(64)
 */
export function derToP1363(der: Uint8Array, size: number): Uint8Array | undefined {
  const seq = readTlv(der, 0, 0x30)
  if (seq === undefined || seq.end !== der.length) return undefined
  const r = readTlv(der, seq.start, 0x02)
  if (r === undefined) return undefined
  const s = readTlv(der, r.end, 0x02)
  if (s === undefined || s.end !== seq.end) return undefined
  const out = new Uint8Array(2 * size)
  for (const [i, tlv] of [r, s].entries()) {
    let value = der.subarray(tlv.start, tlv.end)
    if (value.length === 0 || (value[0] ?? 0) & 0x80) return undefined // empty or negative
    while (value.length > 1 && value[0] === 0) value = value.subarray(1)
    if (value.length > size) return undefined
    out.set(value, (i + 1) * size - value.length)
  }
  return out
}

/**
 * r||s → DER (minimal INTEGERs, a 0x00 prefix where the high bit is set).
 *
 * @example p1363ToDer(signature) // what AWS KMS Verify expects
 */
export function p1363ToDer(sig: Uint8Array): Uint8Array {
  const half = sig.length / 2
  const ints = [sig.subarray(0, half), sig.subarray(half)].map((v) => {
    let i = 0
    while (i < v.length - 1 && v[i] === 0) i++
    const body = v.subarray(i)
    const padded = (body[0] ?? 0) & 0x80 ? [0, ...body] : [...body]
    return [0x02, ...encodeLength(padded.length), ...padded]
  })
  const content = [...(ints[0] ?? []), ...(ints[1] ?? [])]
  return Uint8Array.from([0x30, ...encodeLength(content.length), ...content])
}

function encodeLength(n: number): number[] {
  return n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]
}

function readTlv(buf: Uint8Array, at: number, tag: number): { start: number; end: number } | undefined {
  if (buf[at] !== tag) return undefined
  let len = buf[at + 1]
  let start = at + 2
  if (len === undefined) return undefined
  if (len === 0x81) {
    len = buf[at + 2]
    start = at + 3
    if (len === undefined || len < 0x80) return undefined
  } else if (len > 0x80) {
    return undefined
  }
  const end = start + len
  return end <= buf.length ? { start, end } : undefined
}
