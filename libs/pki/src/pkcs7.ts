/**
 * PKCS#7 / CMS "certs-only" SignedData (RFC 5652 degenerate case), the EST response format
 * for /cacerts, /simpleenroll and /simplereenroll (RFC 7030 §4.1.3, §4.2.3). Written directly
 * in DER around the already encoded certificates: no signer, no content, no re-parsing.
 */
import { M2msecError } from '@m2msec/errors'
import { oid, tlv } from './der.ts'
import { x509 } from './x509.ts'

const SIGNED_DATA = oid('1.2.840.113549.1.7.2')
const DATA = oid('1.2.840.113549.1.7.1')

/**
 * DER of a certs-only SignedData holding `certificates` (DER each), in the given order.
 *
 * @example
 * ```ts
 * const body = Buffer.from(certsOnlyPkcs7([leaf])).toString('base64')
 * ```
 */
export function certsOnlyPkcs7(certificates: readonly Uint8Array[]): Uint8Array {
  const signedData = tlv(
    0x30,
    tlv(0x02, Uint8Array.of(1)), // version 1
    tlv(0x31), // digestAlgorithms: none
    tlv(0x30, DATA), // encapContentInfo without content
    tlv(0xa0, ...certificates), // certificates [0] IMPLICIT
    tlv(0x31), // signerInfos: none
  )
  return tlv(0x30, SIGNED_DATA, tlv(0xa0, signedData))
}

/** The DER certificates of a certs-only SignedData (DER or base64). ERR_INVALID_ARGUMENT if malformed. */
export function parseCertsOnlyPkcs7(data: Uint8Array | string): Uint8Array[] {
  try {
    const list = new x509.X509Certificates(typeof data === 'string' ? data.replace(/\s+/g, '') : data.slice())
    return list.map((c) => new Uint8Array(c.rawData))
  } catch {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'not a PKCS#7 certs-only structure')
  }
}
