/**
 * m2msec.bootstrap.v1: the bootstrap service gRPC API (generated from proto/m2msec/bootstrap/v1/*.proto).
 *
 * GBA (gba.proto): `GbaSubscribersService` / `GbaSubscribersClient` (subscriber provisioning) and
 * `GbaZnService` / `GbaZnClient` (Zn: NAF keys, oneM2M GBA RSPF credentials). Build messages with
 * `X.fromPartial({...})`; `bytes` fields are `Buffer`, `uint64` is `bigint`, Timestamps are `Date`.
 *
 * @example
 * ```ts
 * import { GbaZnClient, GetNafKeyRequest } from '@m2msec/proto/bootstrap/v1'
 * ```
 */
export * from '../gen/m2msec/bootstrap/v1/gba.ts'
// PKI (pki.proto): `PkiService` / `PkiClient` (tenant CA, enrolment authorizations, certificates).
// Named: both generated files export protobufPackage and the ts-proto helper types.
export {
  CertificateAuthority,
  CertificateStatus,
  CreateCaRequest,
  CreateCaResponse,
  CreateEnrolmentAuthorizationRequest,
  CreateEnrolmentAuthorizationResponse,
  EnrolmentAuthorization,
  EnrolmentAuthorizationState,
  EnrolmentMethod,
  GetCaChainRequest,
  GetCaChainResponse,
  GetCertificateRequest,
  GetCertificateResponse,
  IssuedCertificate,
  ListCertificatesRequest,
  ListCertificatesResponse,
  PkiClient,
  type PkiServer,
  PkiService,
  RevocationReason,
  RevokeCertificateRequest,
  RevokeCertificateResponse,
  certificateStatusFromJSON,
  certificateStatusToJSON,
  enrolmentAuthorizationStateFromJSON,
  enrolmentAuthorizationStateToJSON,
  enrolmentMethodFromJSON,
  enrolmentMethodToJSON,
  revocationReasonFromJSON,
  revocationReasonToJSON,
} from '../gen/m2msec/bootstrap/v1/pki.ts'
