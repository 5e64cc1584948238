/**
 * CRLs (RFC 5280 §5) of an issuing CA, signed through its {@link CaSigner}: version 2, AKI,
 * CRLNumber, one entry per revoked certificate with its reason code.
 */
import * as asn1js from 'asn1js'
import { keyIdentifierHex } from './profiles.ts'
import { signerCrypto, type CaSigner } from './signer.ts'
import { x509 } from './x509.ts'

/** RFC 5280 CRLReason names this CA uses (and their codes). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
} as const

/** A revocation reason name. */
export type RevocationReason = keyof typeof REVOCATION_REASONS

/** One revoked certificate. */
export interface RevokedEntry {
  readonly serialHex: string
  readonly revokedAt: Date
  readonly reason: RevocationReason
}

/** Parameters of {@link buildCrl}. */
export interface CrlParams {
  /** DER certificate of the CA that signs the CRL (and issued the revoked certificates). */
  readonly issuerCertificate: Uint8Array
  readonly entries: readonly RevokedEntry[]
  /** Monotonic CRL number. */
  readonly crlNumber: number
  readonly thisUpdate: Date
  readonly nextUpdate: Date
}

/**
 * Builds and signs a CRL; returns its DER.
 *
 * @example
 * ```ts
 * const der = await buildCrl({ issuerCertificate, entries, crlNumber: 7, thisUpdate, nextUpdate }, signer)
 * ```
 */
export async function buildCrl(p: CrlParams, signer: CaSigner): Promise<Uint8Array> {
  const issuer = new x509.X509Certificate(p.issuerCertificate.slice())
  const { crypto, signingKey } = signerCrypto(signer)
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: issuer.subjectName,
      thisUpdate: p.thisUpdate,
      nextUpdate: p.nextUpdate,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      signingKey,
      extensions: [
        new x509.AuthorityKeyIdentifierExtension(keyIdentifierHex(new Uint8Array(issuer.publicKey.rawData))),
        // x509 has no CRLNumber class (TOOLCHAIN pitfall 15).
        new x509.Extension('2.5.29.20', false, new asn1js.Integer({ value: p.crlNumber }).toBER()),
      ],
      entries: p.entries.map((e) => ({
        serialNumber: e.serialHex,
        revocationDate: e.revokedAt,
        reason: REVOCATION_REASONS[e.reason] as x509.X509CrlReason,
      })),
    },
    crypto,
  )
  return new Uint8Array(crl.rawData)
}

/** PEM of a DER CRL with the `X509 CRL` label openssl expects (TOOLCHAIN pitfall 14). */
export function crlPem(der: Uint8Array): string {
  return `${x509.PemConverter.encode(der.slice().buffer, 'X509 CRL')}\n`
}
