/**
 * CreateCa and GetCaChain: the tenant's root and issuing CA, whose keys are KMS EC_P256_SIGN
 * keys, and helpers shared by the other operations (loading the CA, its signers, its URLs).
 */
import { M2msecError } from '@m2msec/errors'
import { kvKey } from '@m2msec/bus'
import {
  certificateDerFromPem,
  certificatePem,
  issueRootCaCertificate,
  issueSubCaCertificate,
  newSerialHex,
  validateDomain,
  type CaSigner,
} from '@m2msec/pki'
import type { CaRecord, Caller, PkiContext, Versioned } from './model.ts'

/** The admin role of a tenant. */
export const ADMIN_ROLE = 'admin'
const DAY_MS = 86_400_000
/** Most claim trust anchors per CA. */
export const MAX_CLAIM_ANCHORS = 16

/** Throws ERR_PERMISSION_DENIED unless the caller is a tenant admin. */
export function requireAdmin(caller: Caller, action: string): void {
  if (!caller.roles.includes(ADMIN_ROLE)) {
    throw new M2msecError('ERR_PERMISSION_DENIED', `${action} needs the ${ADMIN_ROLE} role`)
  }
}

/** The CA of a tenant, or ERR_NOT_FOUND. */
export async function loadCa(ctx: PkiContext, tenant: string): Promise<Versioned<CaRecord>> {
  const found = await ctx.store.cas.get(kvKey(tenant))
  if (found === undefined || found.value.tenant !== tenant) {
    throw new M2msecError('ERR_NOT_FOUND', 'the tenant has no CA')
  }
  return found
}

/** A CaSigner that signs with a tenant's KMS key. */
export function kmsSigner(ctx: PkiContext, tenant: string, keyId: string): CaSigner {
  return { sign: (data) => ctx.kms.sign(tenant, keyId, data) }
}

/** DER of a base64 field. */
export function der(b64: string): Uint8Array {
  return new Uint8Array(Buffer.from(b64, 'base64'))
}

/** The public URLs of a tenant's CA. */
export function caUrls(ctx: PkiContext, tenant: string): { est: string; crl: string; ocsp: string } {
  const { est, revocation } = ctx.urls()
  const t = encodeURIComponent(tenant)
  return { est: `${est}/.well-known/est/${t}`, crl: `${revocation}/pki/${t}/crl`, ocsp: `${revocation}/pki/${t}/ocsp` }
}

/** Input of {@link createCa}. */
export interface CreateCaInput {
  readonly domain: string
  readonly claimTrustAnchorsPem: readonly string[]
  readonly secureEnvironment?: string
}

/**
 * Creates the tenant's CA: two KMS keys (`pki-root-<rand>`, `pki-issuing-<rand>`), a
 * self-signed root certificate and an issuing CA certificate, both with nameConstraints on
 * `domain`. Admin only. ERR_ALREADY_EXISTS when the tenant has a CA (checked before any key
 * is created; a concurrent creation that loses leaves two unused KMS keys behind).
 *
 * @example
 * ```ts
 * const ca = await createCa(ctx, admin, { domain: 'acme.m2m.example', claimTrustAnchorsPem: [] })
 * ```
 */
export async function createCa(ctx: PkiContext, caller: Caller, input: CreateCaInput): Promise<CaRecord> {
  requireAdmin(caller, 'CreateCa')
  const domain = validateDomain(input.domain)
  if (input.claimTrustAnchorsPem.length > MAX_CLAIM_ANCHORS) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `at most ${MAX_CLAIM_ANCHORS} claim trust anchors`)
  }
  const anchors = input.claimTrustAnchorsPem.map((pem) => Buffer.from(certificateDerFromPem(pem)).toString('base64'))
  const tenant = caller.tenant
  if ((await ctx.store.cas.get(kvKey(tenant))) !== undefined) {
    throw new M2msecError('ERR_ALREADY_EXISTS', 'the tenant already has a CA')
  }
  const now = ctx.clock.now()
  const suffix = Buffer.from(ctx.random.bytes(6)).toString('hex')
  const se =
    input.secureEnvironment === undefined || input.secureEnvironment === ''
      ? {}
      : { secureEnvironment: input.secureEnvironment }
  const root = await ctx.kms.createSigningKey(tenant, {
    keyId: `pki-root-${suffix}`,
    purpose: 'm2msec bootstrap: tenant root CA',
    labels: { 'pki.role': 'root-ca' },
    ...se,
  })
  const issuing = await ctx.kms.createSigningKey(tenant, {
    keyId: `pki-issuing-${suffix}`,
    purpose: 'm2msec bootstrap: tenant issuing CA (certificates, CRLs, OCSP)',
    labels: { 'pki.role': 'issuing-ca' },
    ...se,
  })
  const notBefore = new Date(now.getTime() - ctx.settings.backdateSec * 1000)
  const rootNotAfter = new Date(now.getTime() + ctx.settings.rootCaValidityDays * DAY_MS)
  const rootSigner = kmsSigner(ctx, tenant, root.keyId)
  const random = (n: number) => ctx.random.bytes(n)
  const rootCert = await issueRootCaCertificate(
    {
      serialHex: newSerialHex(random),
      commonName: `${tenant} Root CA`.slice(0, 64),
      organization: tenant.slice(0, 64),
      publicKeySpki: root.publicKeySpki,
      domain,
      pathLength: 1,
      notBefore,
      notAfter: rootNotAfter,
    },
    rootSigner,
  )
  const issuingNotAfter = new Date(
    Math.min(now.getTime() + ctx.settings.issuingCaValidityDays * DAY_MS, rootNotAfter.getTime()),
  )
  const issuingCert = await issueSubCaCertificate(
    {
      serialHex: newSerialHex(random),
      commonName: `${tenant} Issuing CA`.slice(0, 64),
      organization: tenant.slice(0, 64),
      publicKeySpki: issuing.publicKeySpki,
      domain,
      pathLength: 0,
      notBefore,
      notAfter: issuingNotAfter,
    },
    { certificate: rootCert, signer: rootSigner },
  )
  const record: CaRecord = {
    tenant,
    domain,
    rootKeyId: root.keyId,
    issuingKeyId: issuing.keyId,
    rootCert: Buffer.from(rootCert).toString('base64'),
    issuingCert: Buffer.from(issuingCert).toString('base64'),
    claimAnchors: anchors,
    revocations: 0,
    createdAt: now.toISOString(),
    createdBy: caller.id,
  }
  await ctx.store.cas.create(kvKey(tenant), record)
  return record
}

/** The CA as GetCaChain shows it. */
export interface CaView {
  readonly record: CaRecord
  readonly chainPem: readonly string[]
  readonly claimAnchorsPem: readonly string[]
  readonly urls: { est: string; crl: string; ocsp: string }
}

/** A CA record with its PEMs and URLs. */
export function viewCa(ctx: PkiContext, record: CaRecord): CaView {
  return {
    record,
    chainPem: [certificatePem(der(record.issuingCert)), certificatePem(der(record.rootCert))],
    claimAnchorsPem: record.claimAnchors.map((a) => certificatePem(der(a))),
    urls: caUrls(ctx, record.tenant),
  }
}

/** GetCaChain: any caller of the tenant. ERR_NOT_FOUND without a CA. */
export async function getCaChain(ctx: PkiContext, caller: Caller): Promise<CaView> {
  return viewCa(ctx, (await loadCa(ctx, caller.tenant)).value)
}
