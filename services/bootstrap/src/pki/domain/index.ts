/**
 * The PKI operations, bound to their context. The gRPC handlers and the EST/CRL/OCSP HTTP
 * servers call only these.
 */
import type { RevocationReason, SubjectNames } from '@m2msec/pki'
import { createEnrolmentAuthorization } from './authorizations.ts'
import { createCa, getCaChain, viewCa, type CaView, type CreateCaInput } from './ca.ts'
import { getCertificate, listCertificates, revokeCertificate } from './certificates.ts'
import { simpleEnroll, simpleReenroll, type Enrolled, type EnrolmentCredential } from './enrol.ts'
import type { AuthorizationRecord, Caller, CertRecord, PkiContext } from './model.ts'
import { createRevocationService } from './revocation.ts'

/** Every PKI use case. */
export interface PkiOperations {
  createCa(caller: Caller, input: CreateCaInput): Promise<CaView>
  getCaChain(caller: Caller): Promise<CaView>
  /** The tenant's CA certificates (issuing, root) as DER, for EST /cacerts. ERR_NOT_FOUND without a CA. */
  caCertificates(tenant: string): Promise<Uint8Array[]>
  createEnrolmentAuthorization(
    caller: Caller,
    input: { names: SubjectNames; ttlSec: number },
  ): Promise<{ record: AuthorizationRecord; token: string }>
  listCertificates(
    caller: Caller,
    page: { pageSize: number; pageToken: string },
  ): Promise<{ certificates: CertRecord[]; next?: string }>
  getCertificate(caller: Caller, serial: string): Promise<CertRecord>
  revokeCertificate(caller: Caller, serial: string, reason: RevocationReason): Promise<CertRecord>
  simpleEnroll(tenant: string, csrDer: Uint8Array, credential: EnrolmentCredential): Promise<Enrolled>
  simpleReenroll(
    tenant: string,
    csrDer: Uint8Array,
    current: { certificate: Uint8Array; chain: readonly Uint8Array[] },
  ): Promise<Enrolled>
  crl(tenant: string): Promise<Uint8Array>
  ocsp(tenant: string, request: Uint8Array): Promise<Uint8Array>
}

/** Binds the operations to `ctx`. */
export function createPkiOperations(ctx: PkiContext): PkiOperations {
  const revocation = createRevocationService(ctx)
  return {
    createCa: async (caller, input) => viewCa(ctx, await createCa(ctx, caller, input)),
    getCaChain: (caller) => getCaChain(ctx, caller),
    caCertificates: async (tenant) => {
      const view = await getCaChain(ctx, { tenant, id: 'est', roles: [] })
      return [view.record.issuingCert, view.record.rootCert].map((b) => new Uint8Array(Buffer.from(b, 'base64')))
    },
    createEnrolmentAuthorization: (caller, input) => createEnrolmentAuthorization(ctx, caller, input),
    listCertificates: (caller, page) => listCertificates(ctx, caller, page),
    getCertificate: (caller, serial) => getCertificate(ctx, caller, serial),
    revokeCertificate: (caller, serial, reason) => revokeCertificate(ctx, caller, serial, reason),
    simpleEnroll: (tenant, csr, credential) => simpleEnroll(ctx, tenant, csr, credential),
    simpleReenroll: (tenant, csr, current) => simpleReenroll(ctx, tenant, csr, current),
    crl: (tenant) => revocation.crl(tenant),
    ocsp: (tenant, request) => revocation.ocsp(tenant, request),
  }
}

export type { CaView, CreateCaInput } from './ca.ts'
export type { Enrolled, EnrolmentCredential } from './enrol.ts'
export type * from './model.ts'
