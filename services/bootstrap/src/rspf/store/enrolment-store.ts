/**
 * {@link EnrolmentStore} on a JetStream KV bucket (`bootstrap-rspf-enrolments`), key
 * `<tenant>.<relativeKeID hex>`. Records hold metadata and the KMS key id of Ke, never key
 * bytes. The bucket's max age is the longest Enrolment Expiry, so expired enrolments go away
 * by themselves (readers also check `expiresAt`).
 */
import { KvRepository, kvKey, type NatsConnection } from '@m2msec/bus'
import type { EnrolmentRecord } from '../domain/enrolment.ts'
import type { EnrolmentStore } from '../domain/ports.ts'

/** Name of the bucket. */
export const ENROLMENT_BUCKET = 'bootstrap-rspf-enrolments'

/** Options of {@link openEnrolmentStore}. */
export interface EnrolmentStoreOptions {
  /** Replicas of the bucket (1 in development, 3 in production). */
  readonly replicas: number
  /** Age after which NATS removes a record: the longest Enrolment Expiry, ms. */
  readonly ttlMs: number
}

/**
 * @example
 * ```ts
 * const store = await openEnrolmentStore(nc, { replicas: 1, ttlMs: 86_400_000 })
 * ```
 */
export async function openEnrolmentStore(nc: NatsConnection, opts: EnrolmentStoreOptions): Promise<EnrolmentStore> {
  const repo = await KvRepository.open<EnrolmentRecord>(nc, ENROLMENT_BUCKET, {
    replicas: opts.replicas,
    ttlMs: opts.ttlMs,
    maxValueBytes: 8192,
  })
  return {
    async create(record) {
      await repo.create(kvKey(record.tenant, record.relativeHex), record)
    },
    async get(tenant, relativeHex) {
      const found = await repo.get(kvKey(tenant, relativeHex))
      return found === undefined || found.value.tenant !== tenant ? undefined : found.value
    },
  }
}
