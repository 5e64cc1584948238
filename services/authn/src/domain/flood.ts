/**
 * Flood protection of the token endpoint (oneM2M SER-001): limits on authentication attempts
 * per entity and per source address.
 *
 * Two mechanisms, chosen for what each costs on the hot path:
 * - **Failure back-off, shared by all replicas** (AttemptStore, a JetStream KV bucket watched
 *   by every replica): after `freeFailures` failed attempts, every further failure blocks the
 *   key for `baseDelayMs · 2^(n-1)` up to `maxDelayMs`. Failures are what a guessing attack
 *   produces, so only they cost a KV write (paid by the attacker); checking is a memory read.
 *   A replica therefore cannot be used to multiply an attacker's guesses.
 * - **Attempt rate, per replica** (token buckets in memory): every attempt, successful or not,
 *   takes a token. Sharing it would cost a KV write per token issued (about halving the
 *   issuance rate), so the documented bound is per replica: with R replicas an entity gets at
 *   most R × the rate.
 *
 * Attempts refused by either are not verified at all (no KMS call) and do not extend a block.
 */
import { M2msecError } from '@m2msec/errors'
import { createTokenBuckets, type TokenBuckets } from '@m2msec/limits'
import type { AuthnDeps, BackoffSettings, FailureState } from './ports.ts'

/** The state after one more failure at `now` (ms). */
export function afterFailure(
  current: FailureState | undefined,
  now: number,
  policy: BackoffSettings,
  windowMs: number,
): FailureState {
  const previous = current !== undefined && now - current.lastFailureAt < windowMs ? current.failures : 0
  const failures = previous + 1
  const over = failures - policy.freeFailures
  const delay = over > 0 ? Math.min(policy.baseDelayMs * 2 ** Math.min(over - 1, 40), policy.maxDelayMs) : 0
  const blockedUntil = Math.max(delay > 0 ? now + delay : 0, current?.blockedUntil ?? 0)
  return { failures, lastFailureAt: now, blockedUntil }
}

/** Milliseconds until `state` lets attempts through again (0 = now). */
export function retryAfterMs(state: FailureState | undefined, now: number): number {
  return state === undefined ? 0 : Math.max(0, state.blockedUntil - now)
}

/** What a refusal names: the entity (with its tenant) or the source address. */
export type FloodScope = 'entity' | 'source'

/** The RESOURCE_EXHAUSTED error of a refused attempt, with retry information. */
export function rateLimited(scope: FloodScope, retryMs: number): M2msecError {
  const ms = Math.max(1, Math.ceil(retryMs))
  return new M2msecError('ERR_RATE_LIMITED', 'too many authentication attempts; retry later', {
    scope,
    retryAfterMs: ms,
    retryAfterSec: Math.ceil(ms / 1000),
  })
}

/** The AttemptStore key of an entity. */
export function entityKey(tenant: string, entityId: string): string {
  return `e\u0000${tenant}\u0000${entityId}`
}

/** The AttemptStore key of a source address. */
export function sourceKey(source: string): string {
  return `s\u0000${source}`
}

/**
 * The source address of a gRPC peer string (grpc-js: `10.0.0.7:53412`, `[::1]:53412`; other
 * stacks prefix `ipv4:` / `ipv6:`): the address without the port, IPv4-mapped IPv6 as IPv4,
 * so that one client's connections share one budget.
 */
export function sourceOfPeer(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, '')
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:\d+$/.exec(bare)
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(bare)
  const address = v6?.[1] ?? v4?.[1]
  if (address === undefined) return bare.slice(0, 128) || 'unknown'
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  return mapped?.[1] ?? address.toLowerCase()
}

/** The checks and bookkeeping IssueToken performs around an attempt. */
export interface FloodGuard {
  /** Throws ERR_RATE_LIMITED when the source may not attempt now. */
  checkSource(source: string): void
  /** Throws ERR_RATE_LIMITED when the entity may not attempt now. */
  checkEntity(tenant: string, entityId: string): void
  /**
   * Records a failed attempt of the source (and of the entity, when the assertion named one);
   * returns the back-offs that started, for the audit record.
   */
  failed(source: string, entity?: { tenant: string; id: string }): Promise<Array<{ scope: FloodScope; ms: number }>>
  /** A successful attempt: forgets the entity's failures (a write only when there were any). */
  succeeded(tenant: string, entityId: string): Promise<void>
}

/** A FloodGuard over the shared AttemptStore and this replica's token buckets. */
export function createFloodGuard(deps: Pick<AuthnDeps, 'attempts' | 'clock' | 'settings'>): FloodGuard {
  const s = deps.settings.flood
  const entityBuckets = createTokenBuckets(s.entityRate)
  const sourceBuckets = createTokenBuckets(s.sourceRate)
  const now = () => deps.clock.now().getTime()

  function check(scope: FloodScope, key: string, buckets: TokenBuckets): void {
    const t = now()
    const blocked = retryAfterMs(deps.attempts.get(key), t)
    if (blocked > 0) throw rateLimited(scope, blocked)
    const wait = buckets.take(key, t)
    if (wait > 0) throw rateLimited(scope, wait)
  }

  async function fail(scope: FloodScope, key: string, policy: BackoffSettings) {
    const t = now()
    const state = await deps.attempts.record(key, (cur) => afterFailure(cur, t, policy, s.failureWindowMs))
    const ms = retryAfterMs(state, t)
    return ms > 0 ? [{ scope, ms }] : []
  }

  return {
    checkSource: (source) => check('source', sourceKey(source), sourceBuckets),
    checkEntity: (tenant, id) => check('entity', entityKey(tenant, id), entityBuckets),
    async failed(source, entity) {
      const results = await Promise.all([
        fail('source', sourceKey(source), s.source),
        ...(entity === undefined ? [] : [fail('entity', entityKey(entity.tenant, entity.id), s.entity)]),
      ])
      return results.flat()
    },
    async succeeded(tenant, id) {
      const key = entityKey(tenant, id)
      if (deps.attempts.get(key) !== undefined) await deps.attempts.clear(key)
    },
  }
}
