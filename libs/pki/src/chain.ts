/**
 * Path validation for client certificates presented over TLS (claim/manufacturer certificates
 * and current certificates at re-enrolment): signatures, issuer/subject chaining, CA flags and
 * validity periods up to a configured trust anchor (RFC 5280 §6.1 basic path validation;
 * policies and name constraints of foreign anchors are not evaluated).
 */
import { X509Certificate } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'

/** Longest chain accepted below the anchor (leaf plus intermediates). */
export const MAX_PATH_LENGTH = 5

function parse(der: Uint8Array): X509Certificate | undefined {
  try {
    return new X509Certificate(der)
  } catch {
    return undefined
  }
}

function validAt(cert: X509Certificate, at: Date): boolean {
  const t = at.getTime()
  return Date.parse(cert.validFrom) <= t && t <= Date.parse(cert.validTo)
}

function signs(issuer: X509Certificate, cert: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey)
  } catch {
    return false
  }
}

function refused(message: string): M2msecError {
  return new M2msecError('ERR_UNAUTHENTICATED', message)
}

/**
 * Checks that `leaf` chains, through certificates of `intermediates` (as sent in the TLS
 * handshake, any order), to one of `anchors`, with every certificate valid at `at`. Returns the
 * DER of the anchor that matched. ERR_UNAUTHENTICATED when no valid path exists.
 *
 * @example
 * ```ts
 * const anchor = verifyCertificatePath(peerDer, chainDer, tenant.claimAnchors, clock.now())
 * ```
 */
export function verifyCertificatePath(
  leaf: Uint8Array,
  intermediates: readonly Uint8Array[],
  anchors: readonly Uint8Array[],
  at: Date,
): Uint8Array {
  const cert = parse(leaf)
  if (cert === undefined) throw refused('the client certificate cannot be parsed')
  if (cert.ca) throw refused('a CA certificate cannot enrol')
  const anchorCerts = anchors.map((der) => ({ der, cert: parse(der) }))
  const pool = intermediates.map(parse).filter((c): c is X509Certificate => c !== undefined && c.ca)
  let current = cert
  for (let depth = 0; depth < MAX_PATH_LENGTH; depth++) {
    if (!validAt(current, at)) throw refused('a certificate of the client chain is expired or not yet valid')
    const anchor = anchorCerts.find((a) => a.cert !== undefined && a.cert.ca && signs(a.cert, current))
    if (anchor !== undefined) {
      if (anchor.cert === undefined || !validAt(anchor.cert, at)) throw refused('the trust anchor is not valid now')
      return anchor.der
    }
    const next = pool.find((c) => c !== current && signs(c, current))
    if (next === undefined) break
    current = next
  }
  throw refused('the client certificate does not chain to a trusted anchor')
}
