/**
 * Identifier rules of the RSPF (TS-0003 §8.3, §10.3.4, §10.3.7, Annex A): FQDNs, the FQDN
 * form of Absolute CSE-IDs / AE-IDs, KpmIDs, KeIDs and the Security Usage Identifiers (SUID)
 * the MEF hands out. Pure: no I/O.
 */
import { invalidArgument } from '@m2msec/errors'
import { parseKeyId } from '@m2msec/crypto'

const LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/**
 * True for a fully qualified domain name as RFC 1123 allows it: 1-253 characters, at least
 * two dot-separated labels of 1-63 letters, digits and inner hyphens, no trailing dot.
 *
 * @example
 * ```ts
 * isFqdn('mef.example.com') // true
 * isFqdn('localhost')       // false (one label)
 * ```
 */
export function isFqdn(value: string): boolean {
  if (typeof value !== 'string' || value.length === 0 || value.length > 253) return false
  const labels = value.split('.')
  return labels.length >= 2 && labels.every((l) => LABEL_RE.test(l))
}

/** Throws ERR_INVALID_ARGUMENT unless `value` is an FQDN ({@link isFqdn}). */
export function assertFqdn(value: string, field: string): void {
  if (!isFqdn(value)) throw invalidArgument(`${field} must be a fully qualified domain name`, { field })
}

/**
 * The FQDN representation of an Absolute CSE-ID or Absolute AE-ID (TS-0003 §10.3.7 and Annex A:
 * "public domain name representation of the CSE-ID"): the path segments in reverse order in
 * front of the SP-ID, e.g. `//sp.example.com/cse-1` → `cse-1.sp.example.com` and
 * `//sp.example.com/cse-1/C-ae7` → `C-ae7.cse-1.sp.example.com`. Case is kept (CSE-IDs are
 * case sensitive; the bytes go into an HMAC). TS-0003 does not spell the mapping out; this is
 * the project's reading of TS-0001 (documented in docs/rspf.md).
 *
 * @example
 * ```ts
 * absoluteIdToFqdn('//sp.example.com/in-cse') // 'in-cse.sp.example.com'
 * ```
 */
export function absoluteIdToFqdn(absoluteId: string): string {
  const match = /^\/\/([^/]+)\/(.+)$/.exec(typeof absoluteId === 'string' ? absoluteId : '')
  const spId = match?.[1]
  const path = match?.[2]
  if (spId === undefined || path === undefined || !isFqdn(spId)) {
    throw invalidArgument('an Absolute CSE-ID/AE-ID has the form //<SP-ID FQDN>/<CSE-ID>[/<AE-ID>]', {
      field: 'absoluteId',
    })
  }
  const segments = path.split('/')
  if (segments.length > 2 || !segments.every((s) => LABEL_RE.test(s))) {
    throw invalidArgument('CSE-ID and AE-ID segments must be DNS labels to have an FQDN form', {
      field: 'absoluteId',
    })
  }
  const fqdn = [...segments].reverse().concat(spId).join('.')
  assertFqdn(fqdn, 'absoluteId')
  return fqdn
}

const KPM_RELATIVE_RE = /^[A-Za-z0-9._-]{1,128}$/

/**
 * Validates a KpmID, the TLS psk_identity of the pre-provisioned RSPF: `relative@FQDN`
 * (the KmID/KpsaID pattern of §10.5/§10.6: letters, digits, ".", "_", "-" then an FQDN).
 * RFC 4279 caps a psk_identity at 2^16-1 bytes; we keep it under 400 characters.
 */
export function assertKpmId(kpmId: string): void {
  const at = typeof kpmId === 'string' ? kpmId.lastIndexOf('@') : -1
  if (at <= 0 || !KPM_RELATIVE_RE.test(kpmId.slice(0, at)) || !isFqdn(kpmId.slice(at + 1))) {
    throw invalidArgument('KpmID must have the form <letters digits . _ -> @ <FQDN>', { field: 'kpmId' })
  }
}

/** A parsed KeID (`hexBinary(RelativeKeID)@MEF-FQDN`, §10.3.4). */
export interface ParsedKeId {
  /** 32 lowercase hex digits (16 bytes). */
  readonly relativeHex: string
  readonly mefFqdn: string
}

/**
 * Parses a KeID and checks that it names this MEF; the relative part must be 32 hex digits
 * (it is normalised to lower case, which is how this MEF prints it).
 *
 * @example
 * ```ts
 * parseKeId('00112233445566778899aabbccddeeff@mef.example.com', 'mef.example.com')
 * ```
 */
export function parseKeId(keId: string, ownFqdn: string): ParsedKeId {
  const { relative, fqdn } = parseKeyId(keId)
  if (!/^[0-9A-Fa-f]{32}$/.test(relative)) {
    throw invalidArgument('KeID relative part must be 32 hex digits', { field: 'keId' })
  }
  if (fqdn.toLowerCase() !== ownFqdn.toLowerCase()) {
    throw invalidArgument('KeID names another MEF', { field: 'keId' })
  }
  return { relativeHex: relative.toLowerCase(), mefFqdn: fqdn }
}

/**
 * SUIDs (TS-0004 `m2m:suid`) for which the MEF hands out an RSPF-provisioned symmetric key:
 * 21 MAF, 22 SAEF, 23 ESPrim, 24 ESData encryption, 25 ESData signature.
 */
export const RSPF_SUIDS = [21, 22, 23, 24, 25] as const

/** One of {@link RSPF_SUIDS}. */
export type RspfSuid = (typeof RSPF_SUIDS)[number]

/** True when `n` is an RSPF SUID. */
export function isRspfSuid(n: number): n is RspfSuid {
  return (RSPF_SUIDS as readonly number[]).includes(n)
}

/**
 * Parses the SUID path segment of `/fetchCredentials/<KeID>/<SUID>` (two decimal digits).
 *
 * @example
 * ```ts
 * parseSuid('21') // 21
 * ```
 */
export function parseSuid(text: string): RspfSuid {
  const n = /^[0-9]{2}$/.test(text) ? Number(text) : NaN
  if (!isRspfSuid(n)) {
    throw invalidArgument('SUID must be one of 21, 22, 23, 24, 25 (RSPF-provisioned keys)', { field: 'suid' })
  }
  return n
}
