/**
 * Minimal DER writing and reading for the structures on the enrolment hot path (CSR, leaf
 * TBSCertificate, PKCS#7 certs-only, ECDSA-Sig-Value). Building and walking these by hand costs
 * microseconds; an ASN.1 object model (@peculiar/x509) costs milliseconds per enrolment.
 * Only single-octet tags and definite lengths are supported, which is all X.509 needs.
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
  let size = 0
  for (const p of parts) size += p.length
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

const oidCache = new Map<string, Uint8Array>()

/** DER of an OBJECT IDENTIFIER given in dotted form. */
export function oid(dotted: string): Uint8Array {
  const hit = oidCache.get(dotted)
  if (hit !== undefined) return hit
  const arcs = dotted.split('.').map(Number)
  const body: number[] = [(arcs[0] ?? 0) * 40 + (arcs[1] ?? 0)]
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f]
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f))
    body.push(...chunk)
  }
  const out = tlv(0x06, Uint8Array.from(body))
  if (oidCache.size < 256) oidCache.set(dotted, out)
  return out
}

/** Content octets of a non-negative INTEGER from big-endian magnitude bytes (minimal, positive). */
export function unsignedIntegerContent(bytes: Uint8Array): Uint8Array {
  let i = 0
  while (i < bytes.length - 1 && bytes[i] === 0) i++
  const trimmed = bytes.subarray(i)
  if (trimmed.length === 0) return Uint8Array.of(0)
  if ((trimmed[0] ?? 0) & 0x80) {
    const out = new Uint8Array(trimmed.length + 1)
    out.set(trimmed, 1)
    return out
  }
  return trimmed
}

/** DER INTEGER of a small non-negative number. */
export function smallInteger(n: number): Uint8Array {
  const bytes: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  return tlv(0x02, unsignedIntegerContent(Uint8Array.from(bytes.length === 0 ? [0] : bytes)))
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0')

/**
 * DER Time (RFC 5280 §4.1.2.5): UTCTime for 1950..2049, GeneralizedTime otherwise, always in
 * whole seconds with `Z` (milliseconds are dropped).
 */
export function time(d: Date): Uint8Array {
  const y = d.getUTCFullYear()
  const rest = `${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}Z`
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${pad(y % 100, 2)}${rest}`, 'latin1'))
  return tlv(0x18, Buffer.from(`${pad(y, 4)}${rest}`, 'latin1'))
}

/** Thrown by the reader on malformed input; callers turn it into their own error. */
export class DerError extends Error {}

/** One element found by {@link readElement}: offsets into the buffer it was read from. */
export interface DerElement {
  readonly tag: number
  /** Offset of the identifier octet. */
  readonly start: number
  /** Offset of the first content octet. */
  readonly contentStart: number
  /** Offset just after the content. */
  readonly end: number
}

/** Reads the element starting at `at`, which must end at or before `limit`. */
export function readElement(buf: Uint8Array, at: number, limit: number = buf.length): DerElement {
  if (at + 2 > limit) throw new DerError('truncated')
  const tag = buf[at] as number
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-octet tags are not supported')
  let len = buf[at + 1] as number
  let contentStart = at + 2
  if (len & 0x80) {
    const count = len & 0x7f
    if (count === 0 || count > 4) throw new DerError('unsupported length')
    if (contentStart + count > limit) throw new DerError('truncated')
    len = 0
    for (let i = 0; i < count; i++) len = len * 256 + (buf[contentStart + i] as number)
    contentStart += count
  }
  const end = contentStart + len
  if (end > limit) throw new DerError('truncated')
  return { tag, start: at, contentStart, end }
}

/** Reads the element at `at` and checks its tag. */
export function expectElement(buf: Uint8Array, at: number, tag: number, limit: number = buf.length): DerElement {
  const e = readElement(buf, at, limit)
  if (e.tag !== tag) throw new DerError(`unexpected tag 0x${e.tag.toString(16)}`)
  return e
}

/** The elements inside a constructed element, in order. */
export function childrenOf(buf: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = []
  for (let at = parent.contentStart; at < parent.end;) {
    const e = readElement(buf, at, parent.end)
    out.push(e)
    at = e.end
  }
  return out
}

/** The whole encoding of `e` (tag, length and content), without copying. */
export function encodingOf(buf: Uint8Array, e: DerElement): Uint8Array {
  return buf.subarray(e.start, e.end)
}

/** The content octets of `e`, without copying. */
export function contentOf(buf: Uint8Array, e: DerElement): Uint8Array {
  return buf.subarray(e.contentStart, e.end)
}

/** True when two byte arrays are equal (not constant time: for public data). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A whole buffer that must be exactly one element with tag `tag`. */
export function readSingle(buf: Uint8Array, tag: number): DerElement {
  const e = expectElement(buf, 0, tag)
  if (e.end !== buf.length) throw new DerError('trailing data')
  return e
}
