/**
 * Certificate profiles of the tenant CA hierarchy (TS-0003 §10.1.1, RFC 5280): a root CA and
 * an issuing CA with nameConstraints on the tenant's domain (end-entity certificates for
 * AE-ID / CSE-ID / device names are in leaf.ts, written directly in DER). Everything is P-256 with ecdsa-with-SHA256, keyUsage always
 * present with digitalSignature; every certificate is signed through a {@link CaSigner}.
 */
import { X509Certificate } from 'node:crypto'
import * as asn1js from 'asn1js'
import { M2msecError } from '@m2msec/errors'
import { spkiKeyIdentifier, type Issuer, type Validity } from './leaf.ts'
import type { SubjectNames } from './names.ts'
import { signerCrypto, type CaSigner } from './signer.ts'
import { x509 } from './x509.ts'

/** OID of nameConstraints (RFC 5280 §4.2.1.10). */
const NAME_CONSTRAINTS_OID = '2.5.29.30'

/** Parameters of a CA certificate. */
export interface CaCertParams extends Validity {
  /** Positive serial number, hex (see {@link newSerialHex}). */
  readonly serialHex: string
  /** Subject common name, e.g. `acme Root CA`. */
  readonly commonName: string
  /** Subject organization (the tenant). */
  readonly organization: string
  /** SubjectPublicKeyInfo DER of the CA key (from the KMS). */
  readonly publicKeySpki: Uint8Array
  /** DNS domain that every name below this CA must lie in (nameConstraints). */
  readonly domain: string
  /** basicConstraints pathLenConstraint; undefined for none. */
  readonly pathLength?: number
}

/**
 * A new positive 128-bit serial number in hex, from 16 random bytes. The top bits are fixed to
 * 01 so the DER integer keeps all 16 bytes (no sign byte, no stripped leading zero) and the hex
 * string round-trips through every parser.
 */
export function newSerialHex(random: (n: number) => Uint8Array): string {
  const b = random(16)
  if (b.length !== 16) throw new M2msecError('ERR_INTERNAL', 'random source returned the wrong length')
  b[0] = ((b[0] ?? 0) & 0x3f) | 0x40
  return Buffer.from(b).toString('hex')
}

/** SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1), hex. */
export function keyIdentifierHex(spki: Uint8Array): string {
  return Buffer.from(spkiKeyIdentifier(spki)).toString('hex')
}

function generalSubtree(tag: number, value: string): asn1js.Sequence {
  return new asn1js.Sequence({
    value: [
      new asn1js.Primitive({
        idBlock: { tagClass: 3, tagNumber: tag },
        valueHex: new TextEncoder().encode(value),
      }),
    ],
  })
}

/**
 * nameConstraints (critical) permitting only URIs whose host is `domain` or below it
 * (`domain` and `.domain`, RFC 5280 host rules) and DNS names in `domain`.
 */
export function nameConstraintsExtension(domain: string): x509.Extension {
  const permitted = new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: 0 },
    value: [generalSubtree(6, domain), generalSubtree(6, `.${domain}`), generalSubtree(2, domain)],
  })
  const der = new asn1js.Sequence({ value: [permitted] }).toBER(false)
  return new x509.Extension(NAME_CONSTRAINTS_OID, true, der)
}

function caName(commonName: string, organization: string): x509.Name {
  return new x509.Name([{ CN: [commonName] }, { O: [organization] }])
}

/** What issuing a CA certificate needs from its parent, parsed once per certificate (x509 parsing is slow). */
interface ParentInfo {
  readonly subjectName: x509.Name
  readonly keyIdHex: string
}
const parents = new Map<string, ParentInfo>()
const MAX_PARENTS = 256

function parentInfo(der: Uint8Array): ParentInfo {
  const key = Buffer.from(der).toString('base64')
  const hit = parents.get(key)
  if (hit !== undefined) return hit
  const cert = new x509.X509Certificate(der.slice())
  const info = { subjectName: cert.subjectName, keyIdHex: keyIdentifierHex(new Uint8Array(cert.publicKey.rawData)) }
  if (parents.size >= MAX_PARENTS) parents.delete(parents.keys().next().value ?? '')
  parents.set(key, info)
  return info
}

async function create(
  params: Omit<x509.X509CertificateCreateWithKeyParams, 'signingKey'>,
  signer: CaSigner,
): Promise<Uint8Array> {
  const { crypto, signingKey } = signerCrypto(signer)
  const cert = await x509.X509CertificateGenerator.create({ ...params, signingKey }, crypto)
  return new Uint8Array(cert.rawData)
}

function caExtensions(p: CaCertParams, authorityKeyIdHex: string): x509.Extension[] {
  const keyId = keyIdentifierHex(p.publicKeySpki)
  return [
    new x509.BasicConstraintsExtension(true, p.pathLength, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    new x509.SubjectKeyIdentifierExtension(keyId),
    new x509.AuthorityKeyIdentifierExtension(authorityKeyIdHex),
    nameConstraintsExtension(p.domain),
  ]
}

/**
 * A self-signed root CA certificate; `signer` holds the private key of `publicKeySpki`.
 *
 * @example
 * ```ts
 * const root = await issueRootCaCertificate({ serialHex, commonName: 'acme Root CA', organization: 'acme',
 *   publicKeySpki, domain: 'acme.example', notBefore, notAfter, pathLength: 1 }, rootSigner)
 * ```
 */
export async function issueRootCaCertificate(p: CaCertParams, signer: CaSigner): Promise<Uint8Array> {
  const name = caName(p.commonName, p.organization)
  return create(
    {
      serialNumber: p.serialHex,
      subject: name,
      issuer: name,
      notBefore: p.notBefore,
      notAfter: p.notAfter,
      publicKey: p.publicKeySpki.slice(),
      extensions: caExtensions(p, keyIdentifierHex(p.publicKeySpki)),
    },
    signer,
  )
}

/** An issuing (subordinate) CA certificate signed by `issuer`. */
export async function issueSubCaCertificate(p: CaCertParams, issuer: Issuer): Promise<Uint8Array> {
  const parent = parentInfo(issuer.certificate)
  return create(
    {
      serialNumber: p.serialHex,
      subject: caName(p.commonName, p.organization),
      issuer: parent.subjectName,
      notBefore: p.notBefore,
      notAfter: p.notAfter,
      publicKey: p.publicKeySpki.slice(),
      extensions: caExtensions(p, parent.keyIdHex),
    },
    issuer.signer,
  )
}

/** What {@link describeCertificate} reads from a certificate. */
export interface CertificateInfo {
  readonly serialHex: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly names: SubjectNames
  readonly publicKeySpki: Uint8Array
  readonly commonName?: string
}

/** The entries of a Node `subjectAltName` string (`URI:a, DNS:b, URI:"quoted, value"`). */
function altNames(text: string | undefined): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = []
  for (const m of (text ?? '').matchAll(/(?:^|,\s*)([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const raw = m[2] ?? ''
    let value = raw.trim()
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string
      } catch {
        continue
      }
    }
    out.push({ type: m[1] ?? '', value })
  }
  return out
}

/**
 * Serial, validity, SAN URIs/DNS names, key and CN of a DER certificate (node:crypto's
 * native parser: this runs for every enrolment).
 */
export function describeCertificate(der: Uint8Array): CertificateInfo {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(der)
  } catch {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'not a DER certificate')
  }
  const names = altNames(cert.subjectAltName)
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1]
  return {
    serialHex: cert.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    names: {
      uris: names.filter((n) => n.type === 'URI').map((n) => n.value),
      dnsNames: names.filter((n) => n.type === 'DNS').map((n) => n.value),
    },
    publicKeySpki: new Uint8Array(cert.publicKey.export({ format: 'der', type: 'spki' })),
    ...(cn === undefined ? {} : { commonName: cn }),
  }
}

/** PEM of one DER certificate, ending in a newline (so PEMs can be concatenated). */
export function certificatePem(der: Uint8Array): string {
  return `${x509.PemConverter.encode(der.slice().buffer, 'CERTIFICATE')}\n`
}

/** DER of the first certificate in a PEM text; ERR_INVALID_ARGUMENT when there is none. */
export function certificateDerFromPem(pem: string): Uint8Array {
  try {
    const first = x509.PemConverter.decode(pem)[0]
    if (first === undefined) throw new Error('no PEM block')
    new x509.X509Certificate(first)
    return new Uint8Array(first)
  } catch {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'not a PEM certificate')
  }
}
