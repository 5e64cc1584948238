/**
 * ListCertificates, GetCertificate and RevokeCertificate (admin only). A revocation marks the
 * certificate (revision-checked), adds it to the CRL list and bumps the CA's revocation
 * counter so every replica rebuilds its cached CRL; OCSP reads the certificate record directly.
 */
import { M2msecError } from '@m2msec/errors'
import { kvKey } from '@m2msec/bus'
import type { RevocationReason } from '@m2msec/pki'
import { loadCa, requireAdmin } from './ca.ts'
import type { Caller, CertRecord, PkiContext, Versioned } from './model.ts'

const SERIAL_RE = /^[0-9a-f]{1,40}$/

/** Normalizes a hex serial (lowercase, no leading zeros); ERR_INVALID_ARGUMENT when malformed. */
export function normalizeSerial(serial: string): string {
  const s = serial.toLowerCase().replace(/^0+(?=.)/, '')
  if (!SERIAL_RE.test(s)) throw new M2msecError('ERR_INVALID_ARGUMENT', 'serial must be hex')
  return s
}

async function loadCert(ctx: PkiContext, tenant: string, serial: string): Promise<Versioned<CertRecord>> {
  const found = await ctx.store.certs.get(kvKey(tenant, normalizeSerial(serial)))
  if (found === undefined || found.value.tenant !== tenant) {
    throw new M2msecError('ERR_NOT_FOUND', 'certificate not found')
  }
  return found
}

/** One page of the tenant's certificates, by serial. */
export async function listCertificates(
  ctx: PkiContext,
  caller: Caller,
  page: { pageSize: number; pageToken: string },
): Promise<{ certificates: CertRecord[]; next?: string }> {
  requireAdmin(caller, 'ListCertificates')
  const limit = page.pageSize <= 0 ? 100 : Math.min(page.pageSize, 1000)
  let after: string | undefined
  if (page.pageToken !== '') {
    after = kvKey(caller.tenant, normalizeSerial(page.pageToken))
  }
  const res = await ctx.store.certs.list(kvKey(caller.tenant), { limit, ...(after === undefined ? {} : { after }) })
  const certificates = res.items.map((i) => i.value).filter((c) => c.tenant === caller.tenant)
  const last = certificates.at(-1)
  return res.next !== undefined && last !== undefined ? { certificates, next: last.serial } : { certificates }
}

/** One certificate; ERR_NOT_FOUND for unknown serials and other tenants' certificates. */
export async function getCertificate(ctx: PkiContext, caller: Caller, serial: string): Promise<CertRecord> {
  requireAdmin(caller, 'GetCertificate')
  return (await loadCert(ctx, caller.tenant, serial)).value
}

/**
 * Revokes a certificate (idempotent: an already revoked one is returned unchanged).
 *
 * @example
 * ```ts
 * await revokeCertificate(ctx, admin, serial, 'keyCompromise')
 * ```
 */
export async function revokeCertificate(
  ctx: PkiContext,
  caller: Caller,
  serial: string,
  reason: RevocationReason,
): Promise<CertRecord> {
  requireAdmin(caller, 'RevokeCertificate')
  const tenant = caller.tenant
  const ca = await loadCa(ctx, tenant)
  const found = await loadCert(ctx, tenant, serial)
  if (found.value.status === 'revoked') return found.value
  const revokedAt = ctx.clock.now().toISOString()
  const revoked: CertRecord = { ...found.value, status: 'revoked', revokedAt, reason }
  await ctx.store.certs.update(kvKey(tenant, found.value.serial), revoked, found.revision)
  await ctx.store.revoked
    .create(kvKey(tenant, found.value.serial), { serial: found.value.serial, revokedAt, reason })
    .catch((err: unknown) => {
      if ((err as { code?: string }).code !== 'ERR_ALREADY_EXISTS') throw err
    })
  // Bump the counter so cached CRLs on every replica go stale; retried on conflicts.
  let current = ca
  for (let attempt = 0; ; attempt++) {
    try {
      await ctx.store.cas.update(
        kvKey(tenant),
        { ...current.value, revocations: current.value.revocations + 1 },
        current.revision,
      )
      break
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_REVISION_CONFLICT' || attempt >= 10) throw err
      current = await loadCa(ctx, tenant)
    }
  }
  return revoked
}
