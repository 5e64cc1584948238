/**
 * What every GBA module of the service shares: its settings, its collaborators, the caller
 * type, audit and background helpers.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import type { AuditEntry } from '@m2msec/bus'
import type { GbaStores } from '../store/gba-stores.ts'
import type { NafRule } from '../config.ts'
import type { GbaAudit, GbaKms } from './ports.ts'

/** Settings of the GBA part (from the `gba`, `ub`, `zn` and `kms` config sections). */
export interface GbaSettings {
  /** Domain of every B-TID. */
  readonly bsfHost: string
  /** Digest realm on Ub. */
  readonly realm: string
  /** Request-URI of the bootstrapping resource. */
  readonly uri: string
  readonly keyLifetimeMs: number
  readonly nonceTtlMs: number
  readonly indBits: number
  readonly ind: number
  /** The service's own principal id in the KMS (granted EXPORT on keys it wraps for NAFs). */
  readonly kmsPrincipal: string
  readonly nafRules: readonly NafRule[]
  /**
   * Whether some NAF receives Ks_NAF itself (a Zn rule with allowWrapped, or GBA enrolment on
   * the EST endpoint). Only then is Ks made so that exportable keys may be derived from it;
   * Ks itself is never exportable (its policy grants DERIVE to the BSF alone).
   */
  readonly wrappedNafKeys: boolean
}

/** Collaborators of the GBA modules. */
export interface GbaDeps {
  readonly kms: GbaKms
  readonly stores: GbaStores
  readonly audit: GbaAudit
  readonly clock: { now(): Date }
  readonly randomBytes: (length: number) => Uint8Array
  readonly settings: GbaSettings
  /** Failures of best-effort background work (key destruction); never thrown. */
  readonly onBackgroundError?: (err: unknown, what: string) => void
}

/** An authenticated gRPC caller (structurally a runtime Principal). */
export interface GbaCaller {
  readonly tenant: string
  readonly id: string
  readonly roles: readonly string[]
}

/** Tenant of audit records about requests whose subscriber (and so tenant) is unknown. */
export const UNKNOWN_TENANT = '_unknown'

/** Appends an audit record; failures become ERR_AUDIT_UNAVAILABLE. */
export async function audit(deps: GbaDeps, entry: AuditEntry): Promise<void> {
  try {
    await deps.audit.append(entry)
  } catch (err) {
    if (isM2msecError(err) && err.code === 'ERR_AUDIT_UNAVAILABLE') throw err
    throw new M2msecError('ERR_AUDIT_UNAVAILABLE', 'audit log unavailable', {}, { cause: err })
  }
}

/**
 * Runs `op` and audits its outcome (`ok`, `denied` for permission/not-found errors, else
 * `error`). The caller gets the original error.
 */
export async function audited<T>(
  deps: GbaDeps,
  base: Omit<AuditEntry, 'result' | 'code'>,
  op: () => Promise<T>,
): Promise<T> {
  let result: T
  try {
    result = await op()
  } catch (err) {
    const code = isM2msecError(err) ? err.code : 'ERR_INTERNAL'
    const denied = isM2msecError(err) && (err.status === 'PERMISSION_DENIED' || err.status === 'NOT_FOUND')
    if (code !== 'ERR_AUDIT_UNAVAILABLE') await audit(deps, { ...base, result: denied ? 'denied' : 'error', code })
    throw err
  }
  await audit(deps, { ...base, result: 'ok' })
  return result
}

/**
 * Schedules a KMS key for destruction a little over the KMS minimum (one minute) ahead. Best
 * effort, in the background: a failure is reported and the sweeper (or the KV TTL) is the
 * backstop.
 */
export function retireKeyInBackground(deps: GbaDeps, tenant: string, keyId: string): void {
  const after = new Date(deps.clock.now().getTime() + 65_000)
  deps.kms.scheduleDestruction(tenant, keyId, after).catch((err: unknown) => {
    if (isM2msecError(err) && (err.code === 'ERR_KEY_NOT_FOUND' || err.code === 'ERR_KEY_DESTROYED')) return
    deps.onBackgroundError?.(err, 'schedule key destruction')
  })
}

/** Throws ERR_PERMISSION_DENIED unless the caller is an admin of its tenant. */
export function requireAdmin(caller: GbaCaller, action: string): void {
  if (!caller.roles.includes('admin')) {
    throw new M2msecError('ERR_PERMISSION_DENIED', `${action} needs the admin role`)
  }
}
