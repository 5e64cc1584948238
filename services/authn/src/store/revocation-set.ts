/**
 * The set of revoked access tokens, shared by every replica (and embeddable in any service
 * that verifies authn tokens): JetStream KV bucket `authn-revoked`, key `<tenant>.<jti>`,
 * bucket TTL = the longest token lifetime. Each holder keeps the set in memory, fed by a KV
 * watch, so `isRevoked` costs no round trip and a revocation reaches every holder within
 * milliseconds. Entries are dropped once the token they name has expired.
 */
import { kvKey, KvRepository, type NatsConnection } from '@m2msec/bus'
import type { RevocationStore, RevokedToken } from '../domain/ports.ts'

/** The KV bucket of revoked tokens. */
export const REVOCATION_BUCKET = 'authn-revoked'

/** A RevocationStore that can be closed. */
export interface RevocationSet extends RevocationStore {
  /** Revoked tokens currently held (not yet expired). */
  readonly size: number
  close(): Promise<void>
}

/** Options of {@link createRevocationSet}. */
export interface RevocationSetOptions {
  /** Bucket TTL, ms, used when this call creates the bucket: at least the token lifetime. Default 10 min. */
  readonly ttlMs?: number
  /** JetStream replicas when the bucket is created. Default 1. */
  readonly replicas?: number
  /** The current time (tests). */
  readonly now?: () => Date
  /** Called when a watched entry cannot be read. */
  readonly onError?: (err: unknown) => void
}

/**
 * Opens (or creates) the revocation bucket and starts watching it. The first `isRevoked`
 * answers after the current entries were loaded (the promise resolves then).
 *
 * @example
 * ```ts
 * const revoked = await createRevocationSet(nc)
 * const auth = tokenAuthenticator({ jwks, issuer, audience, isRevoked: (t) => revoked.isRevoked(t.tenant, t.jti) })
 * ```
 */
export async function createRevocationSet(nc: NatsConnection, opts: RevocationSetOptions = {}): Promise<RevocationSet> {
  const repo = await KvRepository.open<RevokedToken>(nc, REVOCATION_BUCKET, {
    ttlMs: opts.ttlMs ?? 600_000,
    replicas: opts.replicas ?? 1,
    maxValueBytes: 4096,
  })
  return revocationSetOn(repo, opts)
}

/** {@link createRevocationSet} on an opened repository. */
export async function revocationSetOn(
  repo: KvRepository<RevokedToken>,
  opts: Pick<RevocationSetOptions, 'now' | 'onError'> = {},
): Promise<RevocationSet> {
  const now = opts.now ?? (() => new Date())
  /** key → expiry (seconds since the epoch). */
  const revoked = new Map<string, number>()
  const add = (key: string, t: RevokedToken) => {
    if (typeof t.exp === 'number') revoked.set(key, Math.max(revoked.get(key) ?? 0, t.exp))
  }
  const watcher = await repo.watch(
    '',
    (e) => {
      if (e.op === 'put' && e.value !== undefined) add(e.key, e.value)
    },
    opts.onError === undefined ? {} : { onError: opts.onError },
  )
  // The watch delivers the current entries asynchronously; listing them once gives a barrier.
  let after: string | undefined
  do {
    const page = await repo.list('', { limit: 1000, ...(after === undefined ? {} : { after }) })
    for (const item of page.items) add(item.key, item.value)
    after = page.next
  } while (after !== undefined)

  const prune = setInterval(() => {
    const t = now().getTime() / 1000
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
          // Another replica revoked the same token at the same moment: that record counts.
          if ((await repo.get(key)) === undefined) throw err
        },
      )
    },
    isRevoked(tenant, jti) {
      const exp = revoked.get(kvKey(tenant, jti))
      return exp !== undefined && exp > now().getTime() / 1000
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
