/**
 * OCSP client side (RFC 6960): the request for one certificate and the checks on the answer.
 *
 * - The request names the certificate by a SHA-1 CertID (hash of the issuer's name and of its
 *   public key, and the serial number; the hash every responder supports) and carries a random
 *   nonce (RFC 8954). A responder that echoes the nonce must echo ours; one that omits it (e.g.
 *   pre-signed answers) is still accepted, its freshness then rests on thisUpdate/nextUpdate.
 * - The answer counts only when it is a successful `id-pkix-ocsp-basic` response signed by the
 *   certificate's issuer itself or by a delegated responder certificate (RFC 6960 §4.2.2.2)
 *   that is carried in the response, issued and signed by that issuer, currently valid and has
 *   the extended key usage id-kp-OCSPSigning; whose SingleResponse names our CertID; and that is
 *   current: thisUpdate not in the future (5 min skew), nextUpdate not passed, or, without a
 *   nextUpdate, thisUpdate within the last 5 minutes.
 *
 * Anything else is "no answer" ({@link OcspProblem}), which the caller turns into a CRL
 * fallback; nothing here is logged and no key material is handled (public keys only).
 */
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto'
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'

const AIA_OID = '1.3.6.1.5.5.7.1.1'
const SHA1_OID = '1.3.14.3.2.26'
const OCSP_BASIC_OID = '1.3.6.1.5.5.7.48.1.1'
const OCSP_NONCE_OID = '1.3.6.1.5.5.7.48.1.2'
const OCSP_SIGNING_OID = '1.3.6.1.5.5.7.3.9'
const EXT_KEY_USAGE_OID = '2.5.29.37'
/** Tolerated clock skew, and the longest age of an answer without nextUpdate. */
export const OCSP_SKEW_MS = 5 * 60_000

/** Signature algorithms accepted on responses and responder certificates (SHA-1 is not). */
const SIGNATURE_HASHES: Readonly<Record<string, string | null>> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null, // Ed25519
}

/** Why an OCSP exchange gave no usable answer (the message is safe to show). */
export class OcspProblem extends Error {
  override readonly name = 'OcspProblem'
}

/** The http(s) OCSP responder URLs of a certificate's Authority Information Access. */
export function ocspUrls(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(AIA_OID)
  if (ext === null) return []
  const aia = new x509.AuthorityInfoAccessExtension(ext.rawData)
  return aia.ocsp.filter((n) => n.type === 'url' && /^https?:\/\//i.test(n.value)).map((n) => n.value)
}

/** One prepared OCSP question. */
export interface OcspQuery {
  /** DER OCSPRequest to POST (`application/ocsp-request`). */
  readonly der: Uint8Array
  readonly certId: pkijs.CertID
  /** The DER OCTET STRING of the nonce, as the responder echoes it. */
  readonly nonce: Uint8Array
  /** Stable cache key of the CertID (issuer hashes and serial, hex). */
  readonly key: string
}

function sha1(bytes: Uint8Array): Buffer {
  return createHash('sha1').update(bytes).digest()
}

function toPkijs(cert: x509.X509Certificate): pkijs.Certificate {
  return pkijs.Certificate.fromBER(new Uint8Array(cert.rawData))
}

function keyBits(cert: pkijs.Certificate): Uint8Array {
  return cert.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

/**
 * The OCSPRequest for `leaf` issued by `issuer`, with `nonceBytes` (16 random bytes are plenty).
 *
 * @example
 * ```ts
 * const q = buildOcspQuery(leaf, issuer, randomBytes(16))
 * const answer = await verifyOcspResponse(await post(url, q.der), q, issuer, Date.now())
 * ```
 */
export function buildOcspQuery(
  leaf: x509.X509Certificate,
  issuer: x509.X509Certificate,
  nonceBytes: Uint8Array,
): OcspQuery {
  const issuerNameHash = sha1(new Uint8Array(issuer.subjectName.toArrayBuffer()))
  const issuerKeyHash = sha1(keyBits(toPkijs(issuer)))
  const serial = toPkijs(leaf).serialNumber.valueBlock.valueHexView
  const certId = new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: SHA1_OID, algorithmParams: new asn1js.Null() }),
    issuerNameHash: new asn1js.OctetString({ valueHex: issuerNameHash }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: issuerKeyHash }),
    serialNumber: new asn1js.Integer({ valueHex: serial }),
  })
  const nonce = new Uint8Array(new asn1js.OctetString({ valueHex: nonceBytes }).toBER(false))
  const request = new pkijs.OCSPRequest({
    tbsRequest: new pkijs.TBSRequest({
      requestList: [new pkijs.Request({ reqCert: certId })],
      requestExtensions: [new pkijs.Extension({ extnID: OCSP_NONCE_OID, critical: false, extnValue: nonce.buffer })],
    }),
  })
  return {
    der: new Uint8Array(request.toSchema(true).toBER(false)),
    certId,
    nonce,
    key: `${hex(issuerNameHash)}:${hex(issuerKeyHash)}:${hex(serial)}`,
  }
}

/** A verified OCSP answer about one certificate. */
export interface OcspAnswer {
  readonly status: 'good' | 'revoked' | 'unknown'
  /** ms since the epoch */
  readonly thisUpdate: number
  /** ms since the epoch; absent when the responder gave none */
  readonly nextUpdate?: number
}

function spkiDer(cert: pkijs.Certificate): Buffer {
  return Buffer.from(cert.subjectPublicKeyInfo.toSchema().toBER(false))
}

function signatureValid(spki: Buffer, algorithmOid: string, data: Uint8Array, signature: Uint8Array): boolean {
  const hash = SIGNATURE_HASHES[algorithmOid]
  if (hash === undefined) return false
  try {
    return verifySignature(hash, data, createPublicKey({ key: spki, format: 'der', type: 'spki' }), signature)
  } catch {
    return false
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b))
}

/** Whether the ResponderID (byName or byKey) names `cert`. */
function namesResponder(responderId: unknown, cert: pkijs.Certificate): boolean {
  if (responderId instanceof pkijs.RelativeDistinguishedNames) return responderId.isEqual(cert.subject)
  if (responderId instanceof asn1js.OctetString)
    return sameBytes(responderId.valueBlock.valueHexView, sha1(keyBits(cert)))
  return false
}

/** A delegated responder certificate acceptable for answers about `issuer`'s certificates. */
function delegatedResponder(cert: pkijs.Certificate, issuer: pkijs.Certificate, now: number): boolean {
  if (!cert.issuer.isEqual(issuer.subject)) return false
  if (cert.notBefore.value.getTime() > now || cert.notAfter.value.getTime() < now) return false
  const eku = cert.extensions?.find((e) => e.extnID === EXT_KEY_USAGE_OID)?.parsedValue as unknown
  if (!(eku instanceof pkijs.ExtKeyUsage) || !eku.keyPurposes.includes(OCSP_SIGNING_OID)) return false
  return signatureValid(
    spkiDer(issuer),
    cert.signatureAlgorithm.algorithmId,
    cert.tbsView,
    cert.signatureValue.valueBlock.valueHexView,
  )
}

function sameCertId(a: pkijs.CertID, b: pkijs.CertID): boolean {
  return (
    a.hashAlgorithm.algorithmId === b.hashAlgorithm.algorithmId &&
    sameBytes(a.issuerNameHash.valueBlock.valueHexView, b.issuerNameHash.valueBlock.valueHexView) &&
    sameBytes(a.issuerKeyHash.valueBlock.valueHexView, b.issuerKeyHash.valueBlock.valueHexView) &&
    sameBytes(a.serialNumber.valueBlock.valueHexView, b.serialNumber.valueBlock.valueHexView)
  )
}

const STATUS_BY_TAG = ['good', 'revoked', 'unknown'] as const

/**
 * Parses and checks an OCSPResponse (DER) to `query` about a certificate of `issuer` at `now`
 * (ms). Throws {@link OcspProblem} when the response is not a usable answer (see the module
 * comment); `unknown` is returned as such.
 */
export function verifyOcspResponse(
  der: Uint8Array,
  query: OcspQuery,
  issuer: x509.X509Certificate,
  now: number,
): OcspAnswer {
  let basic: pkijs.BasicOCSPResponse
  try {
    const response = pkijs.OCSPResponse.fromBER(der.slice())
    const status = response.responseStatus.valueBlock.valueDec
    if (status !== 0) throw new OcspProblem(`the OCSP responder answered status ${status}`)
    if (response.responseBytes?.responseType !== OCSP_BASIC_OID) throw new OcspProblem('not a basic OCSP response')
    basic = pkijs.BasicOCSPResponse.fromBER(response.responseBytes.response.valueBlock.valueHexView.slice())
  } catch (err) {
    if (err instanceof OcspProblem) throw err
    throw new OcspProblem('the OCSP response is malformed')
  }
  const issuerCert = toPkijs(issuer)
  const data = basic.tbsResponseData
  const signer = namesResponder(data.responderID, issuerCert)
    ? issuerCert
    : (basic.certs ?? []).find((c) => namesResponder(data.responderID, c) && delegatedResponder(c, issuerCert, now))
  if (signer === undefined) throw new OcspProblem('the OCSP response is not from an authorized responder')
  const signed = signatureValid(
    spkiDer(signer),
    basic.signatureAlgorithm.algorithmId,
    data.tbsView,
    basic.signature.valueBlock.valueHexView,
  )
  if (!signed) throw new OcspProblem('the OCSP response signature is not valid')

  const nonce = data.responseExtensions?.find((e) => e.extnID === OCSP_NONCE_OID)
  if (nonce !== undefined && !sameBytes(nonce.extnValue.valueBlock.valueHexView, query.nonce)) {
    throw new OcspProblem('the OCSP response answers another request (nonce)')
  }
  const single = data.responses.find((r) => sameCertId(r.certID, query.certId))
  if (single === undefined) throw new OcspProblem('the OCSP response does not name the certificate')
  const tag = (single.certStatus as asn1js.BaseBlock).idBlock
  const status = tag.tagClass === 3 ? STATUS_BY_TAG[tag.tagNumber] : undefined
  if (status === undefined) throw new OcspProblem('the OCSP certificate status is malformed')

  const thisUpdate = single.thisUpdate.getTime()
  const nextUpdate = single.nextUpdate?.getTime()
  const current =
    thisUpdate <= now + OCSP_SKEW_MS && (nextUpdate === undefined ? thisUpdate >= now - OCSP_SKEW_MS : nextUpdate > now)
  if (!current) throw new OcspProblem('the OCSP response is not current')
  return { status, thisUpdate, ...(nextUpdate === undefined ? {} : { nextUpdate }) }
}
