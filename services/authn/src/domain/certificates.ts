/**
 * X.509 for certificate credentials (oneM2M TS-0003 §8.1.2.5): trust anchors of a tenant,
 * and validation of an entity's chain: RFC 5280 path to a trust anchor (signatures, validity
 * at the given time, basicConstraints cA and pathLen, keyUsage keyCertSign on CAs and
 * digitalSignature on the leaf), a P-256 leaf key (ES256), and the name binding (a URI
 * subjectAltName equal to the entity id, or for an absolute id `//…` equal to it with a URI
 * scheme in front, the "full URI" of TS-0003 §8.1.2.1; only when the leaf has no URI SAN,
 * its subject CN). Revocation is checked by the token operation through the
 * CertificateRevocation port (revocation.ts); nameConstraints and policies are not checked.
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { createHash, createPublicKey, webcrypto, type KeyObject } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import { LIMITS, type TrustAnchorRecord } from './model.ts'

x509.cryptoProvider.set(webcrypto)

const SAN_OID = '2.5.29.17'
const BASIC_CONSTRAINTS_OID = '2.5.29.19'
const KEY_USAGE_OID = '2.5.29.15'

/** A chain that validated, with what tokens and proofs need of its leaf. */
export interface ValidatedCertificate {
  readonly subject: string
  /** base64url SHA-256 of the leaf DER (`x5t#S256`). */
  readonly sha256: string
  readonly notBefore: Date
  readonly notAfter: Date
  /** The leaf's P-256 public key. */
  readonly publicKey: KeyObject
  /** The chain as given, PEM, leaf first. */
  readonly chainPem: string
  readonly leaf: x509.X509Certificate
  /** The certificate that signed the leaf (an intermediate or the trust anchor). */
  readonly issuer: x509.X509Certificate
}

function invalid(message: string): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', message, { field: 'certificate' })
}

function thumbprint(der: ArrayBuffer): string {
  return createHash('sha256').update(new Uint8Array(der)).digest('base64url')
}

/** Parses every certificate of a PEM text; throws ERR_INVALID_ARGUMENT when one is malformed. */
export function parsePemCertificates(pem: string, what: string): x509.X509Certificate[] {
  let ders: ArrayBuffer[]
  try {
    ders = x509.PemConverter.decode(pem)
  } catch {
    throw invalid(`${what} is not PEM`)
  }
  if (ders.length === 0) throw invalid(`${what} holds no certificate`)
  return ders.map((der) => {
    try {
      return new x509.X509Certificate(der)
    } catch {
      throw invalid(`${what} holds a malformed certificate`)
    }
  })
}

/** Parses DER certificates (the `x5c` header: standard base64 DER, leaf first). */
export function parseDerCertificates(x5c: readonly string[]): x509.X509Certificate[] {
  return x5c.map((b64) => {
    try {
      return new x509.X509Certificate(Buffer.from(b64, 'base64'))
    } catch {
      throw invalid('x5c holds a malformed certificate')
    }
  })
}

function basicConstraints(cert: x509.X509Certificate): { ca: boolean; pathLength?: number } {
  const ext = cert.getExtension(BASIC_CONSTRAINTS_OID)
  if (ext === null) return { ca: false }
  const bc = new x509.BasicConstraintsExtension(ext.rawData)
  return bc.pathLength === undefined ? { ca: bc.ca } : { ca: bc.ca, pathLength: bc.pathLength }
}

function keyUsageAllows(cert: x509.X509Certificate, flag: x509.KeyUsageFlags): boolean {
  const ext = cert.getExtension(KEY_USAGE_OID)
  if (ext === null) return true
  return (new x509.KeyUsagesExtension(ext.rawData).usages & flag) !== 0
}

function validAt(cert: x509.X509Certificate, at: Date): boolean {
  return cert.notBefore.getTime() <= at.getTime() && at.getTime() <= cert.notAfter.getTime()
}

/**
 * Checks trust anchor PEMs (one CA certificate each, at most 16, each at most 8 KiB,
 * basicConstraints cA, keyCertSign if keyUsage is present) and returns their records,
 * without duplicates. ERR_INVALID_ARGUMENT names the first bad one.
 */
export function parseTrustAnchors(pems: readonly string[]): TrustAnchorRecord[] {
  if (pems.length > LIMITS.trustAnchors) throw invalid(`at most ${LIMITS.trustAnchors} trust anchors`)
  const out: TrustAnchorRecord[] = []
  pems.forEach((pem, i) => {
    const what = `trust anchor ${i}`
    if (Buffer.byteLength(pem) > LIMITS.trustAnchorPemBytes) throw invalid(`${what} is larger than 8 KiB`)
    const certs = parsePemCertificates(pem, what)
    const cert = certs[0]
    if (cert === undefined || certs.length !== 1) throw invalid(`${what} must hold exactly one certificate`)
    if (!basicConstraints(cert).ca || !keyUsageAllows(cert, x509.KeyUsageFlags.keyCertSign)) {
      throw invalid(`${what} is not a CA certificate`)
    }
    const sha256 = thumbprint(cert.rawData)
    if (out.some((a) => a.sha256 === sha256)) return
    out.push({ pem: cert.toString('pem'), subject: cert.subject, sha256, notAfter: cert.notAfter.toISOString() })
  })
  return out
}

function uriSans(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(SAN_OID)
  if (ext === null) return []
  return new x509.SubjectAlternativeNameExtension(ext.rawData).names.items
    .filter((n) => n.type === 'url')
    .map((n) => n.value)
}

/** `m2m://sp/cse/Cae` → `//sp/cse/Cae`; undefined for a URI without an authority. */
function withoutScheme(uri: string): string | undefined {
  return /^[A-Za-z][A-Za-z0-9+.-]*:(\/\/.+)$/.exec(uri)?.[1]
}

/**
 * True when the leaf names the entity: a URI SAN equal to the id, or, for an absolute id
 * (`//<SP-domain>/…`), a URI SAN that is the id with a scheme in front (`m2m://acme.example/in-cse/Cae1`
 * names `//acme.example/in-cse/Cae1`); the subject CN only when the leaf has no URI SAN.
 */
export function namesEntity(cert: x509.X509Certificate, entityId: string): boolean {
  const uris = uriSans(cert)
  if (uris.length > 0) {
    return uris.some((u) => u === entityId || (entityId.startsWith('//') && withoutScheme(u) === entityId))
  }
  return cert.subjectName.getField('CN').includes(entityId)
}

async function signedBy(cert: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  if (cert.issuer !== issuer.subject) return false
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true })
  } catch {
    return false
  }
}

/**
 * Validates a chain (leaf first, then at most 4 intermediates in any order) against trust
 * anchor PEMs at time `at`, for entity `entityId`. Throws ERR_INVALID_ARGUMENT saying what
 * failed; callers on the token path turn that into ERR_TOKEN_INVALID.
 *
 * @example
 * ```ts
 * const v = await validateChain(parsePemCertificates(pem, 'chain'), tenant.trustAnchors, 'urn:dev:mac:0a1b', now)
 * v.sha256 // the cnf x5t#S256 of tokens issued with it
 * ```
 */
export async function validateChain(
  chain: readonly x509.X509Certificate[],
  anchors: readonly TrustAnchorRecord[],
  entityId: string,
  at: Date,
): Promise<ValidatedCertificate> {
  const [leaf, ...intermediates] = chain
  if (leaf === undefined) throw invalid('certificate chain is empty')
  if (intermediates.length > LIMITS.chainIntermediates) {
    throw invalid(`at most ${LIMITS.chainIntermediates} intermediate certificates`)
  }
  if (!validAt(leaf, at)) throw invalid('certificate is expired or not yet valid')
  if (basicConstraints(leaf).ca) throw invalid('certificate is a CA certificate, not an entity certificate')
  if (!keyUsageAllows(leaf, x509.KeyUsageFlags.digitalSignature)) {
    throw invalid('certificate keyUsage lacks digitalSignature')
  }
  const publicKey = createPublicKey({ key: Buffer.from(leaf.publicKey.rawData), format: 'der', type: 'spki' })
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw invalid('certificate key is not a P-256 key')
  }
  if (!namesEntity(leaf, entityId)) throw invalid('certificate does not name the entity (URI SAN or CN)')

  const trusted = anchors.map((a) => new x509.X509Certificate(a.pem))
  let current = leaf
  let issuer: x509.X509Certificate | undefined
  const used = new Set<x509.X509Certificate>()
  for (let below = 0; ; below++) {
    for (const anchor of trusted) {
      if (!(await signedBy(current, anchor))) continue
      const { pathLength } = basicConstraints(anchor)
      if (!validAt(anchor, at)) throw invalid('trust anchor is expired or not yet valid')
      if (pathLength !== undefined && pathLength < below) throw invalid('trust anchor pathLen exceeded')
      return {
        subject: leaf.subject,
        sha256: thumbprint(leaf.rawData),
        notBefore: leaf.notBefore,
        notAfter: leaf.notAfter,
        publicKey,
        chainPem: chain.map((c) => c.toString('pem')).join('\n'),
        leaf,
        issuer: issuer ?? anchor,
      }
    }
    let next: x509.X509Certificate | undefined
    for (const candidate of intermediates) {
      if (!used.has(candidate) && (await signedBy(current, candidate))) {
        next = candidate
        break
      }
    }
    if (next === undefined) throw invalid('certificate does not chain to a trust anchor of the tenant')
    const bc = basicConstraints(next)
    if (!bc.ca || !keyUsageAllows(next, x509.KeyUsageFlags.keyCertSign)) {
      throw invalid('an intermediate certificate is not a CA')
    }
    if (!validAt(next, at)) throw invalid('an intermediate certificate is expired or not yet valid')
    if (bc.pathLength !== undefined && bc.pathLength < below) throw invalid('intermediate pathLen exceeded')
    used.add(next)
    issuer ??= next
    current = next
  }
}
