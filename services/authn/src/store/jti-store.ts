/**
 * JtiStore on JetStream KV (bucket `authn-jti`, key `<tenant>.<entity>.<jti>`, with a bucket
 * TTL). `create` succeeds for exactly one caller across all replicas: the first use wins.
 * The TTL must cover the longest assertion lifetime plus twice the clock skew, so that a jti
 * is forgotten only when its assertion can no longer be accepted anyway.
 */
import { isM2msecError } from '@m2msec/errors'
import { kvKey, type KvRepository } from '@m2msec/bus'
import type { JtiStore } from '../domain/ports.ts'

/** The JtiStore port on the `authn-jti` bucket (opened with a TTL). */
export function createJtiStore(repo: KvRepository<{ at: number }>, now: () => Date = () => new Date()): JtiStore {
  return {
    async claim(tenant, entityId, jti) {
      try {
        await repo.create(kvKey(tenant, entityId, jti), { at: now().getTime() })
        return true
      } catch (err) {
        if (isM2msecError(err) && err.code === 'ERR_ALREADY_EXISTS') return false
        throw err
      }
    },
  }
}
