/**
 * @m2msec/pki: the pure part of the m2msec CA (no I/O). Certificate profiles of the oneM2M
 * TS-0003 §10.1.1 flavours on P-256/SHA-256 with nameConstraints on CA certificates, PKCS#10
 * checks (size, key type, proof of possession, names), CRLs, OCSP responses, PKCS#7
 * certs-only for EST, and client-certificate path validation. Private keys never appear here:
 * every signature comes from an injected async {@link CaSigner} (the KMS).
 *
 * @example
 * ```ts
 * import { checkCsr, issueLeafCertificate, normalizeNames, assertNamesAllowed } from '@m2msec/pki'
 * const csr = await checkCsr(der, { maxBytes: 4096 })
 * const names = normalizeNames(csr.names, 'acme.example')
 * assertNamesAllowed(names, authorization)
 * const cert = await issueLeafCertificate({ serialHex, publicKeySpki: csr.publicKeySpki, names, notBefore, notAfter },
 *   { certificate: issuingCaDer, signer })
 * ```
 */
export { x509 } from './x509.ts'
export { ECDSA_WITH_SHA256_OID, localSigner, p1363ToDer, signerCrypto, type CaSigner } from './signer.ts'
export {
  MAX_NAMES,
  MAX_URI_LENGTH,
  assertNamesAllowed,
  isDnsName,
  normalizeNames,
  sameNames,
  uriHost,
  validateDomain,
  withinDomain,
  type SubjectNames,
} from './names.ts'
export { DEFAULT_MAX_CSR_BYTES, checkCsr, checkCsrSync, type CheckedCsr } from './csr.ts'
export {
  certificateDerFromPem,
  certificatePem,
  describeCertificate,
  issueRootCaCertificate,
  issueSubCaCertificate,
  keyIdentifierHex,
  nameConstraintsExtension,
  newSerialHex,
  type CaCertParams,
  type CertificateInfo,
} from './profiles.ts'
export {
  certificateTbs,
  issueLeafCertificate,
  leafTbsCertificate,
  signTbsCertificate,
  spkiKeyIdentifier,
  type Issuer,
  type LeafCertParams,
  type RevocationUrls,
  type Validity,
} from './leaf.ts'
export {
  REVOCATION_REASONS,
  buildCrl,
  crlPem,
  type CrlParams,
  type RevocationReason,
  type RevokedEntry,
} from './crl.ts'
export {
  MAX_OCSP_REQUESTS,
  buildOcspResponse,
  ocspErrorResponse,
  parseOcspRequest,
  type OcspCertId,
  type OcspErrorStatus,
  type OcspRequestInfo,
  type OcspResponseParams,
  type OcspStatus,
} from './ocsp.ts'
export { certsOnlyPkcs7, parseCertsOnlyPkcs7 } from './pkcs7.ts'
export { MAX_PATH_LENGTH, verifyCertificatePath } from './chain.ts'
