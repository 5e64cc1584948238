/**
 * @m2msec/limits: rate limits as pure data structures (no I/O, no timers; the caller passes
 * the time). Used by authn's flood protection (domain code) and by the bootstrap service's
 * unauthenticated HTTP endpoints.
 */
export { createTokenBuckets, type TokenBuckets } from './token-buckets.ts'
