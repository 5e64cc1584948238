/**
 * EST simpleenroll / simplereenroll (RFC 7030 §4.2): authenticate the enrolee, check the CSR
 * (size, P-256, proof of possession, names), issue an end-entity certificate signed by the
 * tenant's issuing CA key in the KMS, and record it. Bad input changes nothing: a token is
 * consumed only after every check passed (and put back if issuance then fails).
 */
import { M2msecError } from '@m2msec/errors'
import { kvKey } from '@m2msec/bus'
import {
  assertNamesAllowed,
  checkCsr,
  describeCertificate,
  issueLeafCertificate,
  newSerialHex,
  normalizeNames,
  sameNames,
  verifyCertificatePath,
  type SubjectNames,
} from '@m2msec/pki'
import { checkEnrolmentToken, consumeEnrolmentToken, restoreEnrolmentToken } from './authorizations.ts'
import { caUrls, der, kmsSigner, loadCa } from './ca.ts'
import type { AuthorizationRecord, CertRecord, EnrolmentMethod, PkiContext, Versioned } from './model.ts'

const DAY_MS = 86_400_000

/** What issuing needs from a tenant's CA record, decoded once. */
interface IssuingCa {
  readonly domain: string
  readonly issuingKeyId: string
  readonly issuingCert: Uint8Array
  readonly issuingNotAfter: number
  readonly claimAnchors: Uint8Array[]
  readonly loadedAt: number
}

/**
 * CA records per context and tenant, kept for {@link CA_CACHE_MS}: the fields enrolment uses
 * (domain, issuing key and certificate, claim anchors) never change after CreateCa, so this
 * saves a KV read and the decoding on every enrolment. A tenant without a CA is not cached.
 */
const caCache = new WeakMap<PkiContext, Map<string, IssuingCa>>()
const CA_CACHE_MS = 60_000
const CA_CACHE_MAX = 1024

async function issuingCa(ctx: PkiContext, tenant: string): Promise<IssuingCa> {
  let byTenant = caCache.get(ctx)
  if (byTenant === undefined) {
    byTenant = new Map()
    caCache.set(ctx, byTenant)
  }
  const now = ctx.clock.now().getTime()
  const hit = byTenant.get(tenant)
  if (hit !== undefined && now - hit.loadedAt < CA_CACHE_MS) return hit
  const ca = (await loadCa(ctx, tenant)).value
  const issuingCert = der(ca.issuingCert)
  const entry: IssuingCa = {
    domain: ca.domain,
    issuingKeyId: ca.issuingKeyId,
    issuingCert,
    issuingNotAfter: describeCertificate(issuingCert).notAfter.getTime(),
    claimAnchors: ca.claimAnchors.map(der),
    loadedAt: now,
  }
  byTenant.delete(tenant)
  if (byTenant.size >= CA_CACHE_MAX) byTenant.delete(byTenant.keys().next().value ?? '')
  byTenant.set(tenant, entry)
  return entry
}

/** `t` truncated to whole seconds, as certificates encode it. */
const wholeSeconds = (t: number): Date => new Date(Math.floor(t / 1000) * 1000)

/** How the enrolee authenticated (built by the EST server from the HTTP request). */
export type EnrolmentCredential =
  | { readonly kind: 'token'; readonly id: string; readonly secret: string }
  | { readonly kind: 'claim'; readonly certificate: Uint8Array; readonly chain: readonly Uint8Array[] }
  | { readonly kind: 'gba'; readonly identity: string; readonly allowed: SubjectNames }

/** The outcome of an enrolment. */
export interface Enrolled {
  readonly certificate: Uint8Array
  readonly record: CertRecord
}

interface Authorized {
  readonly allowed: SubjectNames
  readonly method: EnrolmentMethod
  readonly enrolledBy: string
  readonly token?: Versioned<AuthorizationRecord>
  readonly renews?: string
  /** Re-enrolment: the CSR must ask for exactly these names (RFC 7030 §4.2.2). */
  readonly exactNames?: SubjectNames
}

async function issue(
  ctx: PkiContext,
  tenant: string,
  csrDer: Uint8Array,
  authorize: (domain: string, issuingCert: Uint8Array, claimAnchors: Uint8Array[]) => Promise<Authorized>,
): Promise<Enrolled> {
  const ca = await issuingCa(ctx, tenant)
  const issuingCert = ca.issuingCert
  const auth = await authorize(ca.domain, issuingCert, ca.claimAnchors)
  const csr = await checkCsr(csrDer, { maxBytes: ctx.settings.maxCsrBytes })
  const names = normalizeNames(csr.names, ca.domain)
  assertNamesAllowed(names, auth.allowed)
  if (auth.exactNames !== undefined && !sameNames(names, auth.exactNames)) {
    throw new M2msecError('ERR_PERMISSION_DENIED', 're-enrolment must request the names of the current certificate')
  }

  const random = (n: number) => ctx.random.bytes(n)
  const serial = newSerialHex(random)
  const now = ctx.clock.now()
  const urls = caUrls(ctx, tenant)
  // Whole seconds, so the record says exactly what the certificate says (no re-parsing).
  const notBefore = wholeSeconds(now.getTime() - ctx.settings.backdateSec * 1000)
  const notAfter = wholeSeconds(Math.min(now.getTime() + ctx.settings.leafValidityDays * DAY_MS, ca.issuingNotAfter))
  // The token is claimed (revision-checked) while the KMS signs: both are round trips. A
  // certificate signed for a claim that then fails (a concurrent second use of the token)
  // is dropped unseen: never stored, never returned.
  const [claim, signed] = await Promise.allSettled([
    auth.token === undefined ? Promise.resolve(undefined) : consumeEnrolmentToken(ctx, auth.token, serial),
    issueLeafCertificate(
      {
        serialHex: serial,
        publicKeySpki: csr.publicKeySpki,
        names,
        notBefore,
        notAfter,
        crlUrl: urls.crl,
        ocspUrl: urls.ocsp,
        ...(csr.commonName === undefined ? {} : { commonName: csr.commonName }),
      },
      { certificate: issuingCert, signer: kmsSigner(ctx, tenant, ca.issuingKeyId) },
    ),
  ])
  const consumed = claim.status === 'fulfilled' ? claim.value : undefined
  try {
    if (claim.status === 'rejected') throw claim.reason
    if (signed.status === 'rejected') throw signed.reason
    const certificate = signed.value
    const record: CertRecord = {
      tenant,
      serial,
      cert: Buffer.from(certificate).toString('base64'),
      uris: names.uris,
      dnsNames: names.dnsNames,
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      status: 'valid',
      method: auth.method,
      enrolledBy: auth.enrolledBy,
      ...(auth.renews === undefined ? {} : { renews: auth.renews }),
      issuedAt: now.toISOString(),
    }
    await ctx.store.certs.create(kvKey(tenant, serial), record)
    return { certificate, record }
  } catch (err) {
    if (auth.token !== undefined && consumed !== undefined) await restoreEnrolmentToken(ctx, auth.token.value, consumed)
    throw err
  }
}

/**
 * simpleenroll. Errors: ERR_NOT_FOUND (tenant without CA); token: ERR_TOKEN_INVALID,
 * ERR_TOKEN_EXPIRED, ERR_REPLAY; claim certificate: ERR_UNAUTHENTICATED; CSR:
 * ERR_PAYLOAD_TOO_LARGE, ERR_INVALID_ARGUMENT, ERR_KEY_TYPE_MISMATCH, ERR_SIGNATURE_INVALID;
 * names: ERR_PERMISSION_DENIED.
 *
 * With a claim (manufacturer) certificate the enrolee may request the URIs and DNS names of
 * that certificate's subjectAltName that lie within the CA domain.
 *
 * @example
 * ```ts
 * const { certificate } = await simpleEnroll(ctx, 'acme', csrDer, { kind: 'token', id, secret })
 * ```
 */
export async function simpleEnroll(
  ctx: PkiContext,
  tenant: string,
  csrDer: Uint8Array,
  credential: EnrolmentCredential,
): Promise<Enrolled> {
  return issue(ctx, tenant, csrDer, async (_domain, _issuing, claimAnchors) => {
    if (credential.kind === 'token') {
      const token = await checkEnrolmentToken(ctx, tenant, credential.id, credential.secret)
      return { allowed: token.value.allowed, method: 'token', enrolledBy: `authorization:${token.value.id}`, token }
    }
    if (credential.kind === 'gba') {
      return { allowed: credential.allowed, method: 'gba', enrolledBy: `gba:${credential.identity}` }
    }
    if (claimAnchors.length === 0) {
      throw new M2msecError('ERR_UNAUTHENTICATED', 'the tenant accepts no claim certificates')
    }
    verifyCertificatePath(credential.certificate, credential.chain, claimAnchors, ctx.clock.now())
    const claim = describeCertificate(credential.certificate)
    return { allowed: claim.names, method: 'claim', enrolledBy: `claim:${claim.serialHex}` }
  })
}

/**
 * simplereenroll: the current certificate (TLS client certificate) must chain to the tenant's
 * issuing CA, be known, unexpired and not revoked (ERR_UNAUTHENTICATED otherwise); the CSR must
 * request exactly its names (ERR_PERMISSION_DENIED). The key may be new (rekey) or the same.
 * The old certificate stays valid until it expires or is revoked.
 */
export async function simpleReenroll(
  ctx: PkiContext,
  tenant: string,
  csrDer: Uint8Array,
  current: { readonly certificate: Uint8Array; readonly chain: readonly Uint8Array[] },
): Promise<Enrolled> {
  return issue(ctx, tenant, csrDer, async (_domain, issuingCert) => {
    verifyCertificatePath(current.certificate, current.chain, [issuingCert], ctx.clock.now())
    const info = describeCertificate(current.certificate)
    const found = await ctx.store.certs.get(kvKey(tenant, info.serialHex))
    if (found === undefined || found.value.cert !== Buffer.from(current.certificate).toString('base64')) {
      throw new M2msecError('ERR_UNAUTHENTICATED', 'the client certificate is not one this CA issued')
    }
    if (found.value.status === 'revoked') {
      throw new M2msecError('ERR_UNAUTHENTICATED', 'the client certificate is revoked')
    }
    const names = { uris: found.value.uris, dnsNames: found.value.dnsNames }
    return {
      allowed: names,
      exactNames: names,
      method: 'reenroll',
      enrolledBy: `certificate:${info.serialHex}`,
      renews: info.serialHex,
    }
  })
}
