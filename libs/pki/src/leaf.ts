/**
 * End-entity certificates (TS-0003 §10.1.1 profile, RFC 5280), written directly in DER: this
 * runs for every enrolment, and building the TBSCertificate by hand is about a thousand times
 * cheaper than an ASN.1 object model. The issuer's subject and key identifier are read once per
 * issuing certificate and cached.
 */
import { createHash } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import {
  childrenOf,
  DerError,
  encodingOf,
  expectElement,
  oid,
  readSingle,
  smallInteger,
  time,
  tlv,
  unsignedIntegerContent,
} from './der.ts'
import type { SubjectNames } from './names.ts'
import { ECDSA_WITH_SHA256_OID, p1363ToDer, type CaSigner } from './signer.ts'

/** Validity of a certificate. */
export interface Validity {
  readonly notBefore: Date
  readonly notAfter: Date
}

/** The issuer side of an issuance: its certificate and its signer. */
export interface Issuer {
  /** DER of the issuing certificate. */
  readonly certificate: Uint8Array
  readonly signer: CaSigner
}

/** Revocation pointers written into issued certificates (CRL DP, AIA OCSP). */
export interface RevocationUrls {
  readonly crlUrl?: string
  readonly ocspUrl?: string
}

/** Parameters of an end-entity certificate. */
export interface LeafCertParams extends Validity, RevocationUrls {
  readonly serialHex: string
  readonly publicKeySpki: Uint8Array
  /** Authorized subjectAltName entries. */
  readonly names: SubjectNames
  /** Optional subject CN (the CSR's, ≤ 64 characters). */
  readonly commonName?: string
}

const SEQUENCE = 0x30
const SET = 0x31
const OCTET_STRING = 0x04
const BIT_STRING = 0x03
const CRITICAL = Uint8Array.of(0x01, 0x01, 0xff)
const ascii = (s: string): Uint8Array => Buffer.from(s, 'latin1')
const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8')

const SIGNATURE_ALGORITHM = tlv(SEQUENCE, oid(ECDSA_WITH_SHA256_OID))
const VERSION_3 = tlv(0xa0, smallInteger(2))
const CN = oid('2.5.4.3')
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/

function extension(oidDotted: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? tlv(SEQUENCE, oid(oidDotted), CRITICAL, tlv(OCTET_STRING, value))
    : tlv(SEQUENCE, oid(oidDotted), tlv(OCTET_STRING, value))
}

// Fixed extensions of every leaf: basicConstraints CA:false (critical), keyUsage
// digitalSignature (critical), extendedKeyUsage clientAuth + serverAuth.
const BASIC_CONSTRAINTS_LEAF = extension('2.5.29.19', true, tlv(SEQUENCE))
const KEY_USAGE_DIGITAL_SIGNATURE = extension('2.5.29.15', true, tlv(BIT_STRING, Uint8Array.of(0x07, 0x80)))
const EKU_CLIENT_SERVER = extension(
  '2.5.29.37',
  false,
  tlv(SEQUENCE, oid('1.3.6.1.5.5.7.3.2'), oid('1.3.6.1.5.5.7.3.1')),
)
const OCSP_METHOD = oid('1.3.6.1.5.5.7.48.1')

/** SHA-1 of the subjectPublicKey bits of a SubjectPublicKeyInfo (RFC 5280 §4.2.1.2 method 1). */
export function spkiKeyIdentifier(spki: Uint8Array): Uint8Array {
  try {
    const seq = readSingle(spki, SEQUENCE)
    const [, bits] = childrenOf(spki, seq)
    if (bits === undefined || bits.tag !== BIT_STRING || bits.end - bits.contentStart < 2) {
      throw new DerError('no subjectPublicKey')
    }
    return new Uint8Array(
      createHash('sha1')
        .update(spki.subarray(bits.contentStart + 1, bits.end))
        .digest(),
    )
  } catch (err) {
    if (err instanceof DerError) throw new M2msecError('ERR_INVALID_ARGUMENT', 'not a SubjectPublicKeyInfo')
    throw err
  }
}

/** What issuing needs from an issuing certificate. */
interface IssuerInfo {
  /** DER of its subject Name (the issuer field of what it signs). */
  readonly subject: Uint8Array
  readonly keyId: Uint8Array
}

const issuers = new Map<string, IssuerInfo>()
const MAX_ISSUERS = 256

function issuerInfo(der: Uint8Array): IssuerInfo {
  const key = Buffer.from(der).toString('base64')
  const hit = issuers.get(key)
  if (hit !== undefined) return hit
  let info: IssuerInfo
  try {
    const cert = readSingle(der, SEQUENCE)
    const tbs = expectElement(der, cert.contentStart, SEQUENCE, cert.end)
    const fields = childrenOf(der, tbs)
    // [0] version is present in every v3 certificate; then serial, signature, issuer, validity, subject, spki.
    const offset = fields[0]?.tag === 0xa0 ? 1 : 0
    const subject = fields[offset + 4]
    const spki = fields[offset + 5]
    if (subject?.tag !== SEQUENCE || spki?.tag !== SEQUENCE) throw new DerError('not a certificate')
    info = {
      subject: encodingOf(der, subject).slice(),
      keyId: spkiKeyIdentifier(encodingOf(der, spki)),
    }
  } catch (err) {
    if (err instanceof DerError) throw new M2msecError('ERR_INVALID_ARGUMENT', 'the issuer is not a DER certificate')
    throw err
  }
  if (issuers.size >= MAX_ISSUERS) issuers.delete(issuers.keys().next().value ?? '')
  issuers.set(key, info)
  return info
}

function subjectName(commonName: string | undefined): Uint8Array {
  if (commonName === undefined) return tlv(SEQUENCE)
  // PrintableString when the CN allows it, UTF8String otherwise (what @peculiar/x509 chose too).
  const value = PRINTABLE.test(commonName) ? tlv(0x13, ascii(commonName)) : tlv(0x0c, utf8(commonName))
  return tlv(SEQUENCE, tlv(SET, tlv(SEQUENCE, CN, value)))
}

/**
 * DER of a certificate around `tbs`: signs it through `signer` (r‖s from the KMS) and adds
 * the ecdsa-with-SHA256 algorithm and the DER signature.
 */
export async function signTbsCertificate(tbs: Uint8Array, signer: CaSigner): Promise<Uint8Array> {
  const sig = p1363ToDer(await signer.sign(tbs))
  return tlv(SEQUENCE, tbs, SIGNATURE_ALGORITHM, tlv(BIT_STRING, Uint8Array.of(0), sig))
}

/** The TBSCertificate of a leaf (see {@link issueLeafCertificate}). */
export function leafTbsCertificate(p: LeafCertParams, issuerCertificate: Uint8Array): Uint8Array {
  const issuer = issuerInfo(issuerCertificate)
  if (!/^[0-9a-fA-F]{1,40}$/.test(p.serialHex)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'the serial number must be 1..40 hex digits')
  }
  const serialHex = p.serialHex.length % 2 === 0 ? p.serialHex : `0${p.serialHex}`
  const san = tlv(
    SEQUENCE,
    ...p.names.uris.map((u) => tlv(0x86, ascii(u))),
    ...p.names.dnsNames.map((d) => tlv(0x82, ascii(d))),
  )
  const extensions = [
    BASIC_CONSTRAINTS_LEAF,
    KEY_USAGE_DIGITAL_SIGNATURE,
    EKU_CLIENT_SERVER,
    extension('2.5.29.17', p.commonName === undefined, san),
    extension('2.5.29.14', false, tlv(OCTET_STRING, spkiKeyIdentifier(p.publicKeySpki))),
    extension('2.5.29.35', false, tlv(SEQUENCE, tlv(0x80, issuer.keyId))),
  ]
  if (p.crlUrl !== undefined) {
    extensions.push(
      extension('2.5.29.31', false, tlv(SEQUENCE, tlv(SEQUENCE, tlv(0xa0, tlv(0xa0, tlv(0x86, ascii(p.crlUrl))))))),
    )
  }
  if (p.ocspUrl !== undefined) {
    extensions.push(
      extension('1.3.6.1.5.5.7.1.1', false, tlv(SEQUENCE, tlv(SEQUENCE, OCSP_METHOD, tlv(0x86, ascii(p.ocspUrl))))),
    )
  }
  return tlv(
    SEQUENCE,
    VERSION_3,
    tlv(0x02, unsignedIntegerContent(Buffer.from(serialHex, 'hex'))),
    SIGNATURE_ALGORITHM,
    issuer.subject,
    tlv(SEQUENCE, time(p.notBefore), time(p.notAfter)),
    subjectName(p.commonName),
    p.publicKeySpki,
    tlv(0xa3, tlv(SEQUENCE, ...extensions)),
  )
}

/**
 * An end-entity certificate (AE-ID / CSE-ID / device): basicConstraints CA:false, keyUsage
 * digitalSignature, extendedKeyUsage clientAuth+serverAuth, the authorized names as
 * subjectAltName (critical when there is no subject CN), SKI/AKI, and the CRL and OCSP URLs.
 * Times are encoded in whole seconds. One call of `issuer.signer`.
 *
 * @example
 * ```ts
 * const der = await issueLeafCertificate({ serialHex, publicKeySpki, names, notBefore, notAfter, ocspUrl },
 *   { certificate: issuingCaDer, signer })
 * ```
 */
export async function issueLeafCertificate(p: LeafCertParams, issuer: Issuer): Promise<Uint8Array> {
  return signTbsCertificate(leafTbsCertificate(p, issuer.certificate), issuer.signer)
}

/** The DER TBSCertificate inside a DER certificate (what its signature covers). */
export function certificateTbs(der: Uint8Array): Uint8Array {
  try {
    const cert = readSingle(der, SEQUENCE)
    const tbs = expectElement(der, cert.contentStart, SEQUENCE, cert.end)
    return encodingOf(der, tbs)
  } catch (err) {
    if (err instanceof DerError) throw new M2msecError('ERR_INVALID_ARGUMENT', 'not a DER certificate')
    throw err
  }
}
