/**
 * PKCS#10 checks before anything is issued (RFC 2986, RFC 7030 §3.4/§4.2, TS-0003 §10.1.4):
 * size, structure, key type (EC P-256 uncompressed only), signature algorithm
 * (ecdsa-with-SHA256), proof of possession (the CSR's own signature) and the requested
 * subjectAltName (URIs and DNS names only).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import {
  bytesEqual,
  childrenOf,
  contentOf,
  DerError,
  encodingOf,
  expectElement,
  oid,
  readSingle,
  type DerElement,
} from './der.ts'
import type { SubjectNames } from './names.ts'
import { ECDSA_WITH_SHA256_OID } from './signer.ts'

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

/** A P-256 SubjectPublicKeyInfo with an uncompressed point is exactly this long. */
const P256_SPKI_BYTES = 91
/** SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits, 0x04 = uncompressed) }. */
const P256_SPKI_HEADER = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200' + '04', 'hex')
const SEQUENCE = 0x30
const ECDSA_WITH_SHA256 = oid(ECDSA_WITH_SHA256_OID)
const EXTENSION_REQUEST = oid('1.2.840.113549.1.9.14')
const SAN = oid('2.5.29.17')
const CN = oid('2.5.4.3')
const NULL = Uint8Array.of(0x05, 0x00)

function invalid(message: string): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', message)
}

/** The parts of a CertificationRequest (RFC 2986 §4) the checks use, as offsets into the DER. */
interface CsrParts {
  readonly info: DerElement
  readonly subject: DerElement
  readonly spki: DerElement
  readonly attributes: DerElement | undefined
  readonly signatureAlgorithm: DerElement
  readonly signature: DerElement
}

function csrParts(der: Uint8Array): CsrParts {
  const outer = readSingle(der, SEQUENCE)
  const [info, signatureAlgorithm, signature, extra] = childrenOf(der, outer)
  if (
    info?.tag !== SEQUENCE ||
    signatureAlgorithm?.tag !== SEQUENCE ||
    signature?.tag !== 0x03 ||
    extra !== undefined
  ) {
    throw new DerError('not a CertificationRequest')
  }
  const [version, subject, spki, attributes, more] = childrenOf(der, info)
  if (version?.tag !== 0x02 || subject?.tag !== SEQUENCE || spki?.tag !== SEQUENCE || more !== undefined) {
    throw new DerError('not a CertificationRequestInfo')
  }
  if (attributes !== undefined && attributes.tag !== 0xa0) throw new DerError('bad attributes')
  return { info, subject, spki, attributes, signatureAlgorithm, signature }
}

/** The first CN of a subject Name, decoded from the usual string types; undefined when absent. */
function commonNameOf(der: Uint8Array, subject: DerElement): string | undefined {
  for (const rdn of childrenOf(der, subject)) {
    if (rdn.tag !== 0x31) throw new DerError('bad RDN')
    for (const atv of childrenOf(der, rdn)) {
      const [type, value] = childrenOf(der, expectElement(der, atv.start, SEQUENCE, atv.end))
      if (type === undefined || value === undefined) throw new DerError('bad attribute')
      if (!bytesEqual(encodingOf(der, type), CN)) continue
      const bytes = contentOf(der, value)
      switch (value.tag) {
        case 0x0c: // UTF8String
          return Buffer.from(bytes).toString('utf8')
        case 0x13: // PrintableString
        case 0x16: // IA5String
        case 0x14: // TeletexString (read as Latin-1)
          return Buffer.from(bytes).toString('latin1')
        case 0x1e: // BMPString (UTF-16BE)
          return Buffer.from(bytes).swap16().toString('utf16le')
        default:
          return undefined
      }
    }
  }
  return undefined
}

/** The subjectAltName extension value from the extensionRequest attribute; undefined when absent. */
function sanOf(der: Uint8Array, attributes: DerElement | undefined): DerElement | undefined {
  if (attributes === undefined) return undefined
  let found: DerElement | undefined
  for (const attribute of childrenOf(der, attributes)) {
    const [type, values] = childrenOf(der, expectElement(der, attribute.start, SEQUENCE, attribute.end))
    if (type === undefined || values?.tag !== 0x31) throw new DerError('bad attribute')
    if (!bytesEqual(encodingOf(der, type), EXTENSION_REQUEST)) continue
    for (const extensions of childrenOf(der, values)) {
      if (extensions.tag !== SEQUENCE) throw new DerError('bad extensions')
      for (const ext of childrenOf(der, extensions)) {
        const parts = childrenOf(der, expectElement(der, ext.start, SEQUENCE, ext.end))
        const id = parts[0]
        const value = parts[parts.length - 1]
        if (id === undefined || value?.tag !== 0x04 || parts.length > 3) throw new DerError('bad extension')
        if (!bytesEqual(encodingOf(der, id), SAN)) continue
        if (found !== undefined) throw new DerError('two subjectAltName extensions')
        found = value
      }
    }
  }
  return found
}

/**
 * Parses and checks a DER CSR. Errors: ERR_PAYLOAD_TOO_LARGE (over `maxBytes`),
 * ERR_INVALID_ARGUMENT (not a CSR, no subjectAltName, unsupported name types),
 * ERR_KEY_TYPE_MISMATCH (not EC P-256 uncompressed, or not signed with ecdsa-with-SHA256),
 * ERR_SIGNATURE_INVALID (proof of possession fails). DER is read directly and the signature
 * checked with node:crypto (one ECDSA verify).
 *
 * @example
 * ```ts
 * const csr = await checkCsr(der, { maxBytes: 4096 })
 * assertNamesAllowed(csr.names, authorization)
 * ```
 */
export async function checkCsr(der: Uint8Array, opts: { maxBytes?: number } = {}): Promise<CheckedCsr> {
  return Promise.resolve().then(() => checkCsrSync(der, opts))
}

/** {@link checkCsr} without the promise (it does no I/O). */
export function checkCsrSync(der: Uint8Array, opts: { maxBytes?: number } = {}): CheckedCsr {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_CSR_BYTES
  if (der.length > maxBytes) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', 'the CSR is larger than allowed', { max: maxBytes })
  }
  let parts: CsrParts
  let commonName: string | undefined
  try {
    parts = csrParts(der)
    commonName = commonNameOf(der, parts.subject)
  } catch (err) {
    if (err instanceof DerError) throw invalid('the body is not a DER PKCS#10 certificate request')
    throw err
  }
  const spki = der.slice(parts.spki.start, parts.spki.end)
  // The exact header of a P-256 SubjectPublicKeyInfo followed by an uncompressed point; the key
  // is imported as a JWK, which checks the point is on the curve at a third of the cost of
  // OpenSSL's DER decoder.
  let key: KeyObject | undefined
  if (spki.length === P256_SPKI_BYTES && bytesEqual(spki.subarray(0, P256_SPKI_HEADER.length), P256_SPKI_HEADER)) {
    try {
      const x = Buffer.from(spki.buffer, spki.byteOffset + 27, 32).toString('base64url')
      const y = Buffer.from(spki.buffer, spki.byteOffset + 59, 32).toString('base64url')
      key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' })
    } catch {
      key = undefined
    }
  }
  if (key === undefined) {
    throw new M2msecError('ERR_KEY_TYPE_MISMATCH', 'only EC P-256 keys (uncompressed point) are accepted')
  }
  const alg = childrenOf(der, parts.signatureAlgorithm)
  const params = alg[1] === undefined ? undefined : encodingOf(der, alg[1])
  if (
    alg[0] === undefined ||
    !bytesEqual(encodingOf(der, alg[0]), ECDSA_WITH_SHA256) ||
    alg.length > 2 ||
    (params !== undefined && !bytesEqual(params, NULL))
  ) {
    throw new M2msecError('ERR_KEY_TYPE_MISMATCH', 'the CSR must be signed with ecdsa-with-SHA256')
  }
  const sigBits = contentOf(der, parts.signature)
  let pop = false
  try {
    pop =
      sigBits[0] === 0 &&
      verify('sha256', encodingOf(der, parts.info), { key, dsaEncoding: 'der' }, sigBits.subarray(1))
  } catch {
    pop = false
  }
  if (!pop) throw new M2msecError('ERR_SIGNATURE_INVALID', 'the CSR signature (proof of possession) does not verify')

  const uris: string[] = []
  const dnsNames: string[] = []
  let san: DerElement | undefined
  try {
    san = sanOf(der, parts.attributes)
  } catch (err) {
    if (err instanceof DerError) throw invalid('the CSR attributes are malformed')
    throw err
  }
  if (san === undefined) throw invalid('the CSR has no subjectAltName extension')
  try {
    const names = readSingle(contentOf(der, san), SEQUENCE)
    const value = contentOf(der, san)
    for (const item of childrenOf(value, names)) {
      const text = Buffer.from(contentOf(value, item)).toString('latin1')
      if (item.tag === 0x86) uris.push(text)
      else if (item.tag === 0x82) dnsNames.push(text)
      else throw invalid('only URI and DNS names may be requested')
    }
  } catch (err) {
    if (err instanceof DerError)
      throw invalid('the subjectAltName extension is malformed or has unsupported name types')
    throw err
  }
  return {
    publicKeySpki: spki,
    ...(commonName !== undefined && commonName.length > 0 && commonName.length <= 64 ? { commonName } : {}),
    names: { uris, dnsNames },
  }
}
