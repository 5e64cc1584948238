/**
 * The PKI operations, bound to their context. The gRPC handlers and the EST/CRL/OCSP HTTP
 * servers call only these.
 */
import type { RevocationReason, SubjectNames } from '@m2msec/pki'
import { createEnrolmentAuthorization } from './authorizations.ts'
import { createCa, getCaChain, viewCa, type CaView, type CreateCaInput } from './ca.ts'
import { getCertificate, listCertificates, revokeCertificate } from './certificates.ts'
import { simpleEnroll, simpleReenroll, type Enrolled, type EnrolmentCredential } from './enrol.ts'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import type { AuthorizationRecord, Caller, CertRecord, PkiAuditEntry, PkiContext } from './model.ts'
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

/** Who an enrolment credential names, for the audit record (never the token secret). */
function enrolee(credential: EnrolmentCredential): string {
  if (credential.kind === 'token') return `authorization:${credential.id.slice(0, 64)}`
  if (credential.kind === 'gba') return `gba:${credential.identity}`
  return 'claim-certificate'
}

/**
 * Binds the operations to `ctx`. Every change is audited (`pki.<Operation>`): CA creation,
 * enrolment authorizations, enrolments and re-enrolments (ok, denied or error, with the serial
 * of the issued certificate) and revocations. If the record cannot be written the caller gets
 * ERR_AUDIT_UNAVAILABLE, not the result. Reads, CRL and OCSP are not audited.
 */
export function createPkiOperations(ctx: PkiContext): PkiOperations {
  const revocation = createRevocationService(ctx)
  const audited = async <T>(
    base: Omit<PkiAuditEntry, 'result' | 'code' | 'details'>,
    run: () => Promise<T>,
    detailsOf: (value: T) => PkiAuditEntry['details'] = () => undefined,
  ): Promise<T> => {
    let value: T
    try {
      value = await run()
    } catch (err) {
      const code = isM2msecError(err) ? err.code : 'ERR_INTERNAL'
      const denied =
        isM2msecError(err) &&
        (err.status === 'PERMISSION_DENIED' || err.status === 'NOT_FOUND' || err.status === 'UNAUTHENTICATED')
      await appendOrFail({ ...base, result: denied ? 'denied' : 'error', code })
      throw err
    }
    const details = detailsOf(value)
    await appendOrFail({ ...base, result: 'ok', ...(details === undefined ? {} : { details }) })
    return value
  }
  const appendOrFail = async (entry: PkiAuditEntry): Promise<void> => {
    try {
      await ctx.audit.append(entry)
    } catch (err) {
      if (isM2msecError(err) && err.code === 'ERR_AUDIT_UNAVAILABLE') throw err
      throw new M2msecError('ERR_AUDIT_UNAVAILABLE', 'audit log unavailable', {}, { cause: err })
    }
  }
  const by = (caller: Caller, action: string, resource: string) => ({
    tenant: caller.tenant,
    principal: caller.id,
    action: `pki.${action}`,
    resource,
  })
  const issued = (e: Enrolled) => ({ serial: e.record.serial, method: e.record.method })
  return {
    createCa: (caller, input) =>
      audited(by(caller, 'CreateCa', 'ca'), async () => viewCa(ctx, await createCa(ctx, caller, input))),
    getCaChain: (caller) => getCaChain(ctx, caller),
    caCertificates: async (tenant) => {
      const view = await getCaChain(ctx, { tenant, id: 'est', roles: [] })
      return [view.record.issuingCert, view.record.rootCert].map((b) => new Uint8Array(Buffer.from(b, 'base64')))
    },
    createEnrolmentAuthorization: (caller, input) =>
      audited(
        by(caller, 'CreateEnrolmentAuthorization', 'authorizations'),
        () => createEnrolmentAuthorization(ctx, caller, input),
        (out) => ({ id: out.record.id }),
      ),
    listCertificates: (caller, page) => listCertificates(ctx, caller, page),
    getCertificate: (caller, serial) => getCertificate(ctx, caller, serial),
    revokeCertificate: (caller, serial, reason) =>
      audited(
        { ...by(caller, 'RevokeCertificate', `certificate/${serial.slice(0, 64)}`) },
        () => revokeCertificate(ctx, caller, serial, reason),
        () => ({ reason }),
      ),
    simpleEnroll: (tenant, csr, credential) =>
      audited(
        { tenant, principal: enrolee(credential), action: 'pki.SimpleEnroll', resource: 'certificates' },
        () => simpleEnroll(ctx, tenant, csr, credential),
        issued,
      ),
    simpleReenroll: (tenant, csr, current) =>
      audited(
        { tenant, principal: 'certificate', action: 'pki.SimpleReenroll', resource: 'certificates' },
        () => simpleReenroll(ctx, tenant, csr, current),
        issued,
      ),
    crl: (tenant) => revocation.crl(tenant),
    ocsp: (tenant, request) => revocation.ocsp(tenant, request),
  }
}

export type { CaView, CreateCaInput } from './ca.ts'
export type { Enrolled, EnrolmentCredential } from './enrol.ts'
export type * from './model.ts'
