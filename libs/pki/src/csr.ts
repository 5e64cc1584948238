/**
 * PKCS#10 checks before anything is issued (RFC 2986, RFC 7030 §3.4/§4.2, TS-0003 §10.1.4):
 * size, structure, key type (EC P-256 uncompressed only), signature algorithm
 * (ecdsa-with-SHA256), proof of possession (the CSR's own signature) and the requested
 * subjectAltName (URIs and DNS names only).
 */
import { createPublicKey } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import type { SubjectNames } from './names.ts'
import { x509 } from './x509.ts'

/** A CSR that passed {@link checkCsr}. */
export interface CheckedCsr {
  /** SubjectPublicKeyInfo DER of the requested key (P-256, uncompressed point). */
  readonly publicKeySpki: Uint8Array
  /** The subject's common name, when it has one of 1..64 characters. */
  readonly commonName?: string
  /** The names in the CSR's subjectAltName extension, as requested (not yet authorized). */
  readonly names: SubjectNames
}

/** Default upper bound of a CSR's DER size. A P-256 CSR with a few names is below 1 KiB. */
export const DEFAULT_MAX_CSR_BYTES = 4096

const SAN_OID = '2.5.29.17'
/** A P-256 SubjectPublicKeyInfo with an uncompressed point is exactly this long. */
const P256_SPKI_BYTES = 91

function invalid(message: string): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', message)
}

/**
 * Parses and checks a DER CSR. Errors: ERR_PAYLOAD_TOO_LARGE (over `maxBytes`),
 * ERR_INVALID_ARGUMENT (not a CSR, no subjectAltName, unsupported name types),
 * ERR_KEY_TYPE_MISMATCH (not EC P-256 uncompressed, or not signed with ecdsa-with-SHA256),
 * ERR_SIGNATURE_INVALID (proof of possession fails).
 *
 * @example
 * ```ts
 * const csr = await checkCsr(der, { maxBytes: 4096 })
 * assertNamesAllowed(csr.names, authorization)
 * ```
 */
export async function checkCsr(der: Uint8Array, opts: { maxBytes?: number } = {}): Promise<CheckedCsr> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_CSR_BYTES
  if (der.length > maxBytes) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', 'the CSR is larger than allowed', { max: maxBytes })
  }
  let csr: x509.Pkcs10CertificateRequest
  try {
    csr = new x509.Pkcs10CertificateRequest(der.slice())
  } catch {
    throw invalid('the body is not a DER PKCS#10 certificate request')
  }
  const spki = new Uint8Array(csr.publicKey.rawData)
  let isP256 = false
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' })
    isP256 = key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  } catch {
    isP256 = false
  }
  if (!isP256 || spki.length !== P256_SPKI_BYTES) {
    throw new M2msecError('ERR_KEY_TYPE_MISMATCH', 'only EC P-256 keys (uncompressed point) are accepted')
  }
  const sigAlg = csr.signatureAlgorithm as { name?: string; hash?: { name?: string } }
  if (sigAlg.name !== 'ECDSA' || sigAlg.hash?.name !== 'SHA-256') {
    throw new M2msecError('ERR_KEY_TYPE_MISMATCH', 'the CSR must be signed with ecdsa-with-SHA256')
  }
  let pop = false
  try {
    pop = await csr.verify()
  } catch {
    pop = false
  }
  if (!pop) throw new M2msecError('ERR_SIGNATURE_INVALID', 'the CSR signature (proof of possession) does not verify')

  const ext = csr.getExtension(SAN_OID)
  if (ext === null) throw invalid('the CSR has no subjectAltName extension')
  let items: readonly x509.GeneralName[]
  try {
    items = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items
  } catch {
    throw invalid('the subjectAltName extension is malformed or has unsupported name types')
  }
  const uris: string[] = []
  const dnsNames: string[] = []
  for (const item of items) {
    if (item.type === 'url') uris.push(item.value)
    else if (item.type === 'dns') dnsNames.push(item.value)
    else throw invalid('only URI and DNS names may be requested')
  }
  const cn = csr.subjectName.getField('CN')[0]
  return {
    publicKeySpki: spki,
    ...(cn !== undefined && cn.length > 0 && cn.length <= 64 ? { commonName: cn } : {}),
    names: { uris, dnsNames },
  }
}
