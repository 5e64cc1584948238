/**
 * The `m2msec.bootstrap.v1.Pki` handlers: decode, call the operation with the authenticated
 * principal, encode. Tenant scoping and the admin checks live in the operations.
 */
import { M2msecError } from '@m2msec/errors'
import type { RevocationReason as DomainReason } from '@m2msec/pki'
import {
  CertificateStatus,
  CreateCaResponse,
  CreateEnrolmentAuthorizationResponse,
  EnrolmentAuthorizationState,
  EnrolmentMethod,
  GetCaChainResponse,
  GetCertificateResponse,
  ListCertificatesResponse,
  RevocationReason,
  RevokeCertificateResponse,
  type CertificateAuthority,
  type EnrolmentAuthorization,
  type IssuedCertificate,
  type PkiService,
} from '@m2msec/proto/bootstrap/v1'
import type { CallContext, UnaryHandlers } from '@m2msec/runtime'
import type { CaView, PkiOperations } from '../domain/index.ts'
import type { AuthorizationRecord, Caller, CertRecord, EnrolmentMethod as DomainMethod } from '../domain/model.ts'
import { certificatePem } from '@m2msec/pki'

const REASONS: ReadonlyArray<[RevocationReason, DomainReason]> = [
  [RevocationReason.REVOCATION_REASON_UNSPECIFIED, 'unspecified'],
  [RevocationReason.REVOCATION_REASON_UNSPECIFIED_REASON, 'unspecified'],
  [RevocationReason.REVOCATION_REASON_KEY_COMPROMISE, 'keyCompromise'],
  [RevocationReason.REVOCATION_REASON_AFFILIATION_CHANGED, 'affiliationChanged'],
  [RevocationReason.REVOCATION_REASON_SUPERSEDED, 'superseded'],
  [RevocationReason.REVOCATION_REASON_CESSATION_OF_OPERATION, 'cessationOfOperation'],
  [RevocationReason.REVOCATION_REASON_PRIVILEGE_WITHDRAWN, 'privilegeWithdrawn'],
]

const METHODS: Readonly<Record<DomainMethod, EnrolmentMethod>> = {
  token: EnrolmentMethod.ENROLMENT_METHOD_TOKEN,
  claim: EnrolmentMethod.ENROLMENT_METHOD_CLAIM_CERTIFICATE,
  gba: EnrolmentMethod.ENROLMENT_METHOD_GBA,
  reenroll: EnrolmentMethod.ENROLMENT_METHOD_REENROLL,
}

function toDomainReason(reason: RevocationReason): DomainReason {
  const found = REASONS.find(([p]) => p === reason)
  if (found === undefined) throw new M2msecError('ERR_INVALID_ARGUMENT', 'unknown revocation reason')
  return found[1]
}

function toProtoReason(reason: DomainReason | undefined): RevocationReason {
  if (reason === undefined) return RevocationReason.REVOCATION_REASON_UNSPECIFIED
  if (reason === 'unspecified') return RevocationReason.REVOCATION_REASON_UNSPECIFIED_REASON
  return REASONS.find(([, d]) => d === reason)?.[0] ?? RevocationReason.REVOCATION_REASON_UNSPECIFIED_REASON
}

function caller(ctx: CallContext): Caller {
  return { tenant: ctx.principal.tenant, id: ctx.principal.id, roles: ctx.principal.roles }
}

/** Proto form of a CA view. */
export function caToProto(view: CaView): CertificateAuthority {
  return {
    tenant: view.record.tenant,
    domain: view.record.domain,
    chainPem: [...view.chainPem],
    rootKeyId: view.record.rootKeyId,
    issuingKeyId: view.record.issuingKeyId,
    claimTrustAnchorsPem: [...view.claimAnchorsPem],
    crlUrl: view.urls.crl,
    ocspUrl: view.urls.ocsp,
    estUrl: view.urls.est,
    createdAt: new Date(view.record.createdAt),
  }
}

/** Proto form of a certificate record. */
export function certToProto(c: CertRecord): IssuedCertificate {
  return {
    serial: c.serial,
    certificatePem: certificatePem(new Uint8Array(Buffer.from(c.cert, 'base64'))),
    uris: [...c.uris],
    dnsNames: [...c.dnsNames],
    notBefore: new Date(c.notBefore),
    notAfter: new Date(c.notAfter),
    status:
      c.status === 'revoked'
        ? CertificateStatus.CERTIFICATE_STATUS_REVOKED
        : CertificateStatus.CERTIFICATE_STATUS_VALID,
    ...(c.revokedAt === undefined ? {} : { revokedAt: new Date(c.revokedAt) }),
    revocationReason: c.status === 'revoked' ? toProtoReason(c.reason) : RevocationReason.REVOCATION_REASON_UNSPECIFIED,
    method: METHODS[c.method],
    enrolledBy: c.enrolledBy,
    renewsSerial: c.renews ?? '',
  }
}

function authorizationToProto(a: AuthorizationRecord): EnrolmentAuthorization {
  return {
    id: a.id,
    allowedUris: [...a.allowed.uris],
    allowedDnsNames: [...a.allowed.dnsNames],
    expiresAt: new Date(a.expiresAt),
    state:
      a.state === 'used'
        ? EnrolmentAuthorizationState.ENROLMENT_AUTHORIZATION_STATE_USED
        : EnrolmentAuthorizationState.ENROLMENT_AUTHORIZATION_STATE_ACTIVE,
    certificateSerial: a.certificateSerial ?? '',
    createdBy: a.createdBy,
    createdAt: new Date(a.createdAt),
  }
}

/**
 * The Pki service implementation for `GrpcServer.addUnaryService(PkiService, handlers)`.
 *
 * @example
 * ```ts
 * server.addUnaryService(PkiService, createPkiGrpcService(ops))
 * ```
 */
export function createPkiGrpcService(ops: PkiOperations): UnaryHandlers<typeof PkiService> {
  return {
    async createCa(req, ctx) {
      const view = await ops.createCa(caller(ctx), {
        domain: req.domain,
        claimTrustAnchorsPem: req.claimTrustAnchorsPem,
        secureEnvironment: req.secureEnvironment,
      })
      return CreateCaResponse.fromPartial({ ca: caToProto(view) })
    },
    async getCaChain(_req, ctx) {
      return GetCaChainResponse.fromPartial({ ca: caToProto(await ops.getCaChain(caller(ctx))) })
    },
    async createEnrolmentAuthorization(req, ctx) {
      const { record, token } = await ops.createEnrolmentAuthorization(caller(ctx), {
        names: { uris: req.allowedUris, dnsNames: req.allowedDnsNames },
        ttlSec: req.ttlSeconds,
      })
      return CreateEnrolmentAuthorizationResponse.fromPartial({ authorization: authorizationToProto(record), token })
    },
    async listCertificates(req, ctx) {
      const page = await ops.listCertificates(caller(ctx), { pageSize: req.pageSize, pageToken: req.pageToken })
      return ListCertificatesResponse.fromPartial({
        certificates: page.certificates.map(certToProto),
        nextPageToken: page.next ?? '',
      })
    },
    async getCertificate(req, ctx) {
      return GetCertificateResponse.fromPartial({
        certificate: certToProto(await ops.getCertificate(caller(ctx), req.serial)),
      })
    },
    async revokeCertificate(req, ctx) {
      const revoked = await ops.revokeCertificate(caller(ctx), req.serial, toDomainReason(req.reason))
      return RevokeCertificateResponse.fromPartial({ certificate: certToProto(revoked) })
    },
  }
}
