/**
 * IPv4 / IPv6 addresses and CIDR blocks (`m2m:ipv4`, `m2m:ipv6`: an address with an optional
 * prefix, RFC 4632 / RFC 4291 text forms). Pure parsing, no `node:net`, so the engine also runs
 * outside Node.
 *
 * IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the same host as `a.b.c.d`: an IPv4 block
 * matches the mapped form and an IPv6 block matches a plain IPv4 address through its mapped form.
 */
import { invalidArgument } from '@m2msec/errors'

/** A parsed address: 4 bytes (IPv4) or 16 bytes (IPv6), network byte order. */
export interface IpAddress {
  readonly family: 4 | 6
  readonly bytes: Uint8Array
}

/** A parsed CIDR block; host bits of `bytes` are zero. */
export interface Cidr extends IpAddress {
  readonly prefix: number
  /** The source text, kept for Explain output. */
  readonly source: string
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/

function parseIpv4Bytes(text: string): Uint8Array | null {
  // A character loop rather than split + regex: this runs once per decision with an IP context.
  const out = new Uint8Array(4)
  let part = 0
  let value = 0
  let digits = 0
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 46 : text.charCodeAt(i)
    if (c === 46) {
      // Leading zeros are rejected: "010" means 8 to some parsers and 10 to others.
      if (digits === 0 || part > 3 || (digits > 1 && text.charCodeAt(i - digits) === 48)) return null
      out[part++] = value
      value = 0
      digits = 0
    } else if (c >= 48 && c <= 57 && digits < 3) {
      value = value * 10 + (c - 48)
      digits++
      if (value > 255) return null
    } else {
      return null
    }
  }
  return part === 4 ? out : null
}

function parseHextets(groups: readonly string[]): number[] | null {
  const out: number[] = []
  for (const g of groups) {
    if (!HEXTET.test(g)) return null
    out.push(parseInt(g, 16))
  }
  return out
}

function splitGroups(s: string): string[] {
  return s === '' ? [] : s.split(':')
}

function parseIpv6Bytes(text: string): Uint8Array | null {
  if (text.length === 0 || text.includes('%')) return null
  let head = text
  let tail4: Uint8Array | null = null
  // An embedded IPv4 address may end the text (RFC 4291 §2.2 form 3).
  const lastColon = text.lastIndexOf(':')
  if (lastColon >= 0 && text.slice(lastColon + 1).includes('.')) {
    tail4 = parseIpv4Bytes(text.slice(lastColon + 1))
    if (tail4 === null) return null
    // Keep the colon so that "::1.2.3.4" still splits into ["", "", ""] style groups.
    head = text.slice(0, lastColon + 1) + '0:0'
  }
  const halves = head.split('::')
  if (halves.length > 2) return null
  let groups: number[]
  if (halves.length === 2) {
    const left = parseHextets(splitGroups(halves[0] ?? ''))
    const right = parseHextets(splitGroups(halves[1] ?? ''))
    if (left === null || right === null) return null
    const missing = 8 - left.length - right.length
    // "::" stands for at least one zero group.
    if (missing < 1) return null
    groups = [...left, ...new Array<number>(missing).fill(0), ...right]
  } else {
    const all = parseHextets(splitGroups(head))
    if (all === null || all.length !== 8) return null
    groups = all
  }
  const out = new Uint8Array(16)
  for (let i = 0; i < 8; i++) {
    const g = groups[i] ?? 0
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  }
  if (tail4 !== null) out.set(tail4, 12)
  return out
}

/**
 * Parses an IPv4 or IPv6 address without a prefix; null when it is neither.
 *
 * @example
 * ```ts
 * parseIpAddress('10.1.2.3')          // { family: 4, bytes: [10,1,2,3] }
 * parseIpAddress('::ffff:10.1.2.3')   // { family: 6, ... } (IPv4-mapped)
 * parseIpAddress('fe80::1%eth0')      // null (zone ids are not addresses)
 * ```
 */
export function parseIpAddress(text: string): IpAddress | null {
  if (typeof text !== 'string') return null
  if (text.includes(':')) {
    const bytes = parseIpv6Bytes(text)
    return bytes === null ? null : { family: 6, bytes }
  }
  const bytes = parseIpv4Bytes(text)
  return bytes === null ? null : { family: 4, bytes }
}

/**
 * Parses a CIDR block of the given family (`10.125.0.0/16`, `Fadf:ddd0::/32`; a bare address
 * is a single host). Throws `ERR_INVALID_ARGUMENT` naming `path` when malformed, including when
 * host bits are set (`10.125.1.0/16`): such a block is almost always a typo, and silently
 * widening it would grant more than the author wrote.
 */
export function parseCidr(text: string, family: 4 | 6, path = 'cidr'): Cidr {
  if (typeof text !== 'string') throw invalidArgument(`${path}: must be a string`, { path })
  const slash = text.indexOf('/')
  const addrText = slash < 0 ? text : text.slice(0, slash)
  const max = family === 4 ? 32 : 128
  let prefix = max
  if (slash >= 0) {
    const p = text.slice(slash + 1)
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > max) {
      throw invalidArgument(`${path}: prefix "/${p}" is not 0-${max}`, { path })
    }
    prefix = Number(p)
  }
  const bytes = family === 4 ? parseIpv4Bytes(addrText) : parseIpv6Bytes(addrText)
  if (bytes === null) {
    throw invalidArgument(`${path}: "${addrText}" is not an IPv${family} address`, { path })
  }
  for (let bit = prefix; bit < max; bit++) {
    if (((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) {
      throw invalidArgument(`${path}: "${text}" has host bits set beyond /${prefix}`, { path })
    }
  }
  return { family, bytes, prefix, source: text }
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

function toMapped(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16)
  out[10] = 0xff
  out[11] = 0xff
  out.set(v4, 12)
  return out
}

function fromMapped(v6: Uint8Array): Uint8Array | null {
  for (let i = 0; i < 12; i++) if (v6[i] !== MAPPED_PREFIX[i]) return null
  return v6.subarray(12, 16)
}

function prefixMatches(net: Uint8Array, addr: Uint8Array, prefix: number): boolean {
  const full = prefix >> 3
  for (let i = 0; i < full; i++) if (net[i] !== addr[i]) return false
  const rest = prefix & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return ((net[full] ?? 0) & mask) === ((addr[full] ?? 0) & mask)
}

/** True when `addr` lies in `cidr`, looking through IPv4-mapped IPv6 in both directions. */
export function cidrContains(cidr: Cidr, addr: IpAddress): boolean {
  if (cidr.family === addr.family) return prefixMatches(cidr.bytes, addr.bytes, cidr.prefix)
  if (cidr.family === 4) {
    const v4 = fromMapped(addr.bytes)
    return v4 !== null && prefixMatches(cidr.bytes, v4, cidr.prefix)
  }
  return prefixMatches(cidr.bytes, toMapped(addr.bytes), cidr.prefix)
}
