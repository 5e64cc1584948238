/**
 * The names a certificate of this CA may carry (TS-0003 §10.1.1): URIs (the full URI of an
 * AE-ID or device id, `scheme://host/...`) and DNS names (the public domain name form of a
 * CSE-ID or an FQDN). No wildcards, no other name types. Every host must lie within the CA's
 * domain, which is also what the CA certificates' nameConstraints say.
 */
import { M2msecError } from '@m2msec/errors'

/** The subjectAltName entries of a CSR, an authorization or a certificate. */
export interface SubjectNames {
  readonly uris: readonly string[]
  readonly dnsNames: readonly string[]
}

/** At most this many names per certificate. */
export const MAX_NAMES = 16
/** Longest URI accepted. */
export const MAX_URI_LENGTH = 512

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/
// Printable ASCII without space: an IA5String a relying party can compare byte for byte.
const URI_CHARS = /^[\x21-\x7e]+$/

/** True for a lowercase DNS name of letters, digits and hyphens (no wildcard), ≤ 253 characters. */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253 || name !== name.toLowerCase()) return false
  return name.split('.').every((label) => DNS_LABEL.test(label))
}

/** The host of an absolute `scheme://host/...` URI, or undefined when it has none or is malformed. */
export function uriHost(uri: string): string | undefined {
  if (uri.length > MAX_URI_LENGTH || !URI_CHARS.test(uri) || uri.includes('*')) return undefined
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#@:]+)(?::\d{1,5})?(?:[/?#].*)?$/.exec(uri)
  const host = m?.[1]
  return host !== undefined && isDnsName(host) ? host : undefined
}

/** True when `host` is `domain` or one of its subdomains. */
export function withinDomain(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`)
}

/**
 * Validates a list of names (syntax, count, duplicates, inside `domain`). Returns the names
 * sorted and without duplicates. ERR_INVALID_ARGUMENT names the first bad entry by index
 * only, never the value (names can identify devices).
 *
 * @example
 * ```ts
 * normalizeNames({ uris: ['m2m://acme.example/in-cse/Cae1'], dnsNames: [] }, 'acme.example')
 * ```
 */
export function normalizeNames(names: SubjectNames, domain: string): SubjectNames {
  const uris = [...new Set(names.uris)].sort()
  const dnsNames = [...new Set(names.dnsNames)].sort()
  if (uris.length + dnsNames.length === 0) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'at least one URI or DNS name is needed')
  }
  if (uris.length + dnsNames.length > MAX_NAMES) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `at most ${MAX_NAMES} names`, { max: MAX_NAMES })
  }
  uris.forEach((uri, index) => {
    const host = uriHost(uri)
    if (host === undefined) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'URI names must be scheme://host/... without wildcards', { index })
    }
    if (!withinDomain(host, domain)) {
      throw new M2msecError('ERR_PERMISSION_DENIED', "a URI's host is outside the CA's domain", { index })
    }
  })
  dnsNames.forEach((name, index) => {
    if (!isDnsName(name)) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'DNS names are lowercase, without wildcards', { index })
    }
    if (!withinDomain(name, domain)) {
      throw new M2msecError('ERR_PERMISSION_DENIED', "a DNS name is outside the CA's domain", { index })
    }
  })
  return { uris, dnsNames }
}

/**
 * Throws ERR_PERMISSION_DENIED unless every requested name is one of the allowed names
 * (exact, byte-for-byte match).
 */
export function assertNamesAllowed(requested: SubjectNames, allowed: SubjectNames): void {
  const uris = new Set(allowed.uris)
  const dns = new Set(allowed.dnsNames)
  const extra = requested.uris.filter((u) => !uris.has(u)).length + requested.dnsNames.filter((d) => !dns.has(d)).length
  if (extra > 0) {
    throw new M2msecError('ERR_PERMISSION_DENIED', 'the CSR asks for names this enrolment does not allow', {
      names: extra,
    })
  }
}

/** True when both lists hold the same names (order and duplicates ignored). */
export function sameNames(a: SubjectNames, b: SubjectNames): boolean {
  const key = (n: SubjectNames) => JSON.stringify([[...new Set(n.uris)].sort(), [...new Set(n.dnsNames)].sort()])
  return key(a) === key(b)
}

/** A DNS domain for a CA (lowercase, at least two labels). ERR_INVALID_ARGUMENT otherwise. */
export function validateDomain(domain: string): string {
  if (!isDnsName(domain) || !domain.includes('.')) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'domain must be a lowercase DNS name with at least two labels')
  }
  return domain
}
