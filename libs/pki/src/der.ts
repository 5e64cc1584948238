/**
 * A few DER encoding helpers for structures that are cheaper to write directly than through
 * an ASN.1 object model (the EST response wraps an already encoded certificate).
 */

/** DER length octets of `n`. */
function lengthOctets(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n)
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return Uint8Array.of(0x80 | bytes.length, ...bytes)
}

/** One TLV: `tag` (a single identifier octet) around the concatenated `parts`. */
export function tlv(tag: number, ...parts: readonly Uint8Array[]): Uint8Array {
  const size = parts.reduce((n, p) => n + p.length, 0)
  const len = lengthOctets(size)
  const out = new Uint8Array(1 + len.length + size)
  out[0] = tag
  out.set(len, 1)
  let at = 1 + len.length
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** DER of an OBJECT IDENTIFIER given in dotted form. */
export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number)
  const body: number[] = [(arcs[0] ?? 0) * 40 + (arcs[1] ?? 0)]
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f]
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f))
    body.push(...chunk)
  }
  return tlv(0x06, Uint8Array.from(body))
}
