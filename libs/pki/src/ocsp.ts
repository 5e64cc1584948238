/**
 * OCSP (RFC 6960) for an issuing CA: parse a request, answer each CertID (good / revoked /
 * unknown), echo the nonce, and sign the BasicOCSPResponse with the CA key through its
 * {@link CaSigner}. The CA is its own responder; its certificate is attached to the response.
 */
import { createHash } from 'node:crypto'
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import { M2msecError } from '@m2msec/errors'
import { REVOCATION_REASONS, type RevocationReason } from './crl.ts'
import { ECDSA_WITH_SHA256_OID, p1363ToDer, type CaSigner } from './signer.ts'
import { x509 } from './x509.ts'

const OCSP_BASIC_OID = '1.3.6.1.5.5.7.48.1.1'
const OCSP_NONCE_OID = '1.3.6.1.5.5.7.48.1.2'
const HASHES: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
}
/** Most CertIDs answered in one request. */
export const MAX_OCSP_REQUESTS = 32

/** One certificate asked about. */
export interface OcspCertId {
  readonly serialHex: string
  /** pkijs CertID, echoed verbatim in the response. */
  readonly certId: pkijs.CertID
}

/** A parsed OCSP request. */
export interface OcspRequestInfo {
  readonly certIds: readonly OcspCertId[]
  /** The nonce extension of the request, echoed in the response. */
  readonly nonce?: pkijs.Extension
}

/** What the CA knows about one serial number. */
export type OcspStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly revokedAt: Date; readonly reason: RevocationReason }
  | { readonly status: 'unknown' }

/** Unsuccessful OCSPResponseStatus values (RFC 6960 §4.2.1). */
export type OcspErrorStatus = 'malformedRequest' | 'internalError' | 'tryLater' | 'unauthorized'
const ERROR_STATUS: Readonly<Record<OcspErrorStatus, number>> = {
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  unauthorized: 6,
}

function hex(bytes: Uint8Array): string {
  let i = 0
  while (i < bytes.length - 1 && bytes[i] === 0) i++
  return Buffer.from(bytes.subarray(i)).toString('hex')
}

/**
 * Parses a DER OCSPRequest. ERR_INVALID_ARGUMENT when malformed, empty or with more than
 * {@link MAX_OCSP_REQUESTS} CertIDs.
 */
export function parseOcspRequest(der: Uint8Array): OcspRequestInfo {
  let req: pkijs.OCSPRequest
  try {
    req = pkijs.OCSPRequest.fromBER(der.slice())
  } catch {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'not a DER OCSP request')
  }
  const list = req.tbsRequest.requestList
  if (list.length === 0 || list.length > MAX_OCSP_REQUESTS) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `an OCSP request asks about 1..${MAX_OCSP_REQUESTS} certificates`)
  }
  const nonce = req.tbsRequest.requestExtensions?.find((e) => e.extnID === OCSP_NONCE_OID)
  return {
    certIds: list.map((r) => ({
      serialHex: hex(r.reqCert.serialNumber.valueBlock.valueHexView),
      certId: r.reqCert,
    })),
    ...(nonce === undefined ? {} : { nonce }),
  }
}

/** Whether a CertID names `issuer` (its name and key hashes, SHA-1 or SHA-256). */
function issuedBy(certId: pkijs.CertID, issuerNameDer: Uint8Array, issuerKeyBits: Uint8Array): boolean {
  const alg = HASHES[certId.hashAlgorithm.algorithmId]
  if (alg === undefined) return false
  const nameHash = createHash(alg).update(issuerNameDer).digest()
  const keyHash = createHash(alg).update(issuerKeyBits).digest()
  return (
    nameHash.equals(Buffer.from(certId.issuerNameHash.valueBlock.valueHexView)) &&
    keyHash.equals(Buffer.from(certId.issuerKeyHash.valueBlock.valueHexView))
  )
}

function certStatus(s: OcspStatus): asn1js.BaseBlock {
  if (s.status === 'good') return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } })
  if (s.status === 'unknown') return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } })
  return new asn1js.Constructed({
    idBlock: { tagClass: 3, tagNumber: 1 },
    value: [
      new asn1js.GeneralizedTime({ valueDate: s.revokedAt }),
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [new asn1js.Enumerated({ value: REVOCATION_REASONS[s.reason] })],
      }),
    ],
  })
}

/** Parameters of {@link buildOcspResponse}. */
export interface OcspResponseParams {
  readonly request: OcspRequestInfo
  /** DER certificate of the CA that issued the certificates and signs the response. */
  readonly issuerCertificate: Uint8Array
  /** Status of a serial issued by this CA. Not called for CertIDs of other issuers ("unknown"). */
  readonly statusOf: (serialHex: string) => Promise<OcspStatus>
  readonly producedAt: Date
  /** nextUpdate of every SingleResponse (how long a client may cache it). */
  readonly nextUpdate: Date
}

/**
 * Builds and signs a successful OCSPResponse (DER) answering every CertID of the request.
 *
 * @example
 * ```ts
 * const der = await buildOcspResponse({ request: parseOcspRequest(body), issuerCertificate, statusOf,
 *   producedAt: now, nextUpdate }, signer)
 * ```
 */
export async function buildOcspResponse(p: OcspResponseParams, signer: CaSigner): Promise<Uint8Array> {
  const issuer = new x509.X509Certificate(p.issuerCertificate.slice())
  const issuerNameDer = new Uint8Array(issuer.subjectName.toArrayBuffer())
  const spki = asn1js.fromBER(issuer.publicKey.rawData).result as asn1js.Sequence
  const keyBits = (spki.valueBlock.value[1] as asn1js.BitString).valueBlock.valueHexView

  const responses: pkijs.SingleResponse[] = []
  for (const id of p.request.certIds) {
    const status = issuedBy(id.certId, issuerNameDer, keyBits)
      ? await p.statusOf(id.serialHex)
      : ({ status: 'unknown' } as const)
    responses.push(
      new pkijs.SingleResponse({
        certID: id.certId,
        certStatus: certStatus(status),
        thisUpdate: p.producedAt,
        nextUpdate: p.nextUpdate,
      }),
    )
  }
  const basic = new pkijs.BasicOCSPResponse()
  const data = basic.tbsResponseData
  data.responderID = new asn1js.OctetString({ valueHex: createHash('sha1').update(keyBits).digest() })
  data.producedAt = p.producedAt
  data.responses = responses
  if (p.request.nonce !== undefined) {
    data.responseExtensions = [
      new pkijs.Extension({
        extnID: OCSP_NONCE_OID,
        critical: false,
        extnValue: p.request.nonce.extnValue.valueBlock.valueHexView.slice().buffer,
      }),
    ]
  }
  const tbs = new Uint8Array(data.toSchema(true).toBER(false))
  data.tbsView = tbs
  basic.signatureAlgorithm = new pkijs.AlgorithmIdentifier({ algorithmId: ECDSA_WITH_SHA256_OID })
  basic.signature = new asn1js.BitString({ valueHex: p1363ToDer(await signer.sign(tbs)) })
  // The signer's certificate travels along, so a client holding only the root finds it.
  basic.certs = [pkijs.Certificate.fromBER(p.issuerCertificate.slice())]
  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: OCSP_BASIC_OID,
      response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER(false) }),
    }),
  })
  return new Uint8Array(response.toSchema().toBER(false))
}

/** An unsuccessful OCSPResponse (status only, unsigned, as RFC 6960 §2.3 prescribes). */
export function ocspErrorResponse(status: OcspErrorStatus): Uint8Array {
  const response = new pkijs.OCSPResponse({ responseStatus: new asn1js.Enumerated({ value: ERROR_STATUS[status] }) })
  return new Uint8Array(response.toSchema().toBER(false))
}
