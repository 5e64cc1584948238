/**
 * The set of revoked access tokens of the authn service, shared by every replica of every
 * service that verifies those tokens: JetStream KV bucket `authn-revoked`, key
 * `<tenant>.<jti>`, value {@link RevokedToken}. Each holder keeps the set in memory, fed by a
 * KV watch, so `isRevoked` costs no round trip and a revocation reaches every holder within
 * milliseconds. Entries are dropped once the token they name has expired.
 *
 * It lives here, not in the authn service, so that the KMS, authz and any other service can
 * embed it without importing another service's package.
 */
import { kvKey } from './tokens.ts'
import { KvRepository } from './kv-repository.ts'
import type { NatsConnection } from '@nats-io/transport-node'

/** The KV bucket of revoked tokens. */
export const REVOCATION_BUCKET = 'authn-revoked'

/**
 * The default bucket TTL, used when the caller that creates the bucket names none: longer than
 * the longest access token authn can issue (24 h) plus clock skew, so a bucket created by a
 * verifier that starts before authn never forgets a revocation while its token is valid.
 */
export const DEFAULT_REVOCATION_TTL_MS = (86_400 + 600) * 1000

/** The record of a revoked token in the `authn-revoked` bucket. */
export interface RevokedToken {
  readonly tenant: string
  /** The access token's `jti`. */
  readonly jti: string
  /** Until when the record counts, seconds since the epoch (at least the token's expiry). */
  readonly exp: number
  /** ISO-8601 time of the revocation. */
  readonly revokedAt: string
  /** Who revoked it (principal id). */
  readonly revokedBy: string
}

/** The revocation set as its holders use it. */
export interface RevocationSet {
  /**
   * Records a revocation (idempotent; a later `exp` extends an earlier record). Resolves once
   * JetStream stored it; the other holders see it through their watch.
   */
  revoke(token: RevokedToken): Promise<void>
  /** True when the token is revoked and its record has not expired. Answers from memory. */
  isRevoked(tenant: string, jti: string): boolean
  /** Revoked tokens currently held (not yet pruned). */
  readonly size: number
  /** Stops the watch. */
  close(): Promise<void>
}

/** Options of {@link createRevocationSet}. */
export interface RevocationSetOptions {
  /**
   * Bucket TTL, ms, used only when this call creates the bucket (an existing bucket keeps its
   * configuration): at least the longest token lifetime. Default {@link DEFAULT_REVOCATION_TTL_MS}.
   */
  readonly ttlMs?: number
  /** JetStream replicas when the bucket is created. Default 1. */
  readonly replicas?: number
  /** The current time (tests). */
  readonly now?: () => Date
  /** Called when a watched entry cannot be read. */
  readonly onError?: (err: unknown) => void
}

/**
 * Opens (or creates) the revocation bucket and starts watching it. Resolves after the current
 * entries were loaded, so the first `isRevoked` already knows every earlier revocation.
 *
 * @example
 * ```ts
 * import { createRevocationSet } from '@m2msec/bus'
 * import { tokenAuthenticator } from '@m2msec/runtime'
 * const revoked = await createRevocationSet(nc)
 * const auth = tokenAuthenticator({ jwks, issuer, audience, isRevoked: (t) => revoked.isRevoked(t.tenant, t.jti) })
 * ```
 */
export async function createRevocationSet(nc: NatsConnection, opts: RevocationSetOptions = {}): Promise<RevocationSet> {
  const repo = await KvRepository.open<RevokedToken>(nc, REVOCATION_BUCKET, {
    ttlMs: opts.ttlMs ?? DEFAULT_REVOCATION_TTL_MS,
    replicas: opts.replicas ?? 1,
    maxValueBytes: 4096,
  })
  return revocationSetOn(repo, opts)
}

/** {@link createRevocationSet} on an opened repository (any bucket with the same records). */
export async function revocationSetOn(
  repo: KvRepository<RevokedToken>,
  opts: Pick<RevocationSetOptions, 'now' | 'onError'> = {},
): Promise<RevocationSet> {
  const now = opts.now ?? (() => new Date())
  const nowSec = () => now().getTime() / 1000
  /** key → expiry (seconds since the epoch). */
  const revoked = new Map<string, number>()
  const add = (key: string, t: RevokedToken) => {
    if (typeof t.exp !== 'number' || t.exp <= nowSec()) return
    revoked.set(key, Math.max(revoked.get(key) ?? 0, t.exp))
  }
  const watcher = await repo.watch(
    '',
    (e) => {
      if (e.op === 'put' && e.value !== undefined) add(e.key, e.value)
    },
    opts.onError === undefined ? {} : { onError: opts.onError },
  )
  try {
    // The watch delivers the current entries asynchronously; listing them once gives a barrier.
    let after: string | undefined
    do {
      const page = await repo.list('', { limit: 1000, ...(after === undefined ? {} : { after }) })
      for (const item of page.items) add(item.key, item.value)
      after = page.next
    } while (after !== undefined)
  } catch (err) {
    await watcher.stop()
    throw err
  }

  const prune = setInterval(() => {
    const t = nowSec()
    for (const [k, exp] of revoked) if (exp <= t) revoked.delete(k)
  }, 30_000)
  prune.unref()

  return {
    async revoke(token) {
      const key = kvKey(token.tenant, token.jti)
      add(key, token)
      const found = await repo.get(key)
      if (found !== undefined && found.value.exp >= token.exp) return
      await (found === undefined ? repo.create(key, token) : repo.update(key, token, found.revision)).catch(
        async (err: unknown) => {
          // Another holder revoked the same token at the same moment: that record counts.
          if ((await repo.get(key)) === undefined) throw err
        },
      )
    },
    isRevoked(tenant, jti) {
      const exp = revoked.get(kvKey(tenant, jti))
      return exp !== undefined && exp > nowSec()
    },
    get size() {
      return revoked.size
    },
    async close() {
      clearInterval(prune)
      await watcher.stop()
    },
  }
}
