/**
 * The per-source limit of the bootstrap service's HTTP requests that arrive before any
 * authentication: every Ub request and every EST enrolment request. Each costs KV reads and
 * writes, an audit record and, on Ub, a KMS call (on EST without credentials, a fresh Digest
 * nonce); this bounds what one address can make a replica do. Per replica (R replicas allow R times the
 * rate); refused requests get `429` with `Retry-After` and are not audited (an audit record
 * per refusal would hand the flood to the audit log), only logged at debug level.
 */
import { createTokenBuckets } from '@m2msec/limits'

/** Takes one request of `source`; returns 0 when allowed, else the ms until the next is. */
export type SourceLimit = (source: string | undefined) => number

/**
 * @example
 * ```ts
 * const limit = createSourceLimit({ perSec: 20, burst: 40 }, () => Date.now())
 * if (limit(req.socket.remoteAddress) > 0) refuse429()
 * ```
 */
export function createSourceLimit(rate: { perSec: number; burst: number }, now: () => number): SourceLimit {
  const buckets = createTokenBuckets(rate)
  return (source) => buckets.take(source ?? 'unknown', now())
}
