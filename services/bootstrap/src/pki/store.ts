/**
 * The PKI's JetStream KV buckets (revision-checked writes through @m2msec/bus KvRepository):
 * `bootstrap-pki-cas`, `bootstrap-pki-certs`, `bootstrap-pki-enrolments`, `bootstrap-pki-revoked`.
 */
import { KvRepository, type NatsConnection } from '@m2msec/bus'
import type { AuthorizationRecord, CaRecord, CertRecord, PkiStore, RevokedRecord } from './domain/model.ts'

/** Opens (creating when missing) the PKI buckets. */
export async function openPkiStore(nc: NatsConnection, opts: { replicas?: number } = {}): Promise<PkiStore> {
  const replicas = opts.replicas ?? 1
  const [cas, certs, authorizations, revoked] = await Promise.all([
    KvRepository.open<CaRecord>(nc, 'bootstrap-pki-cas', { replicas, history: 5, maxValueBytes: 256 * 1024 }),
    KvRepository.open<CertRecord>(nc, 'bootstrap-pki-certs', { replicas, history: 3, maxValueBytes: 64 * 1024 }),
    KvRepository.open<AuthorizationRecord>(nc, 'bootstrap-pki-enrolments', {
      replicas,
      history: 3,
      maxValueBytes: 16 * 1024,
    }),
    KvRepository.open<RevokedRecord>(nc, 'bootstrap-pki-revoked', { replicas, maxValueBytes: 1024 }),
  ])
  return { cas, certs, authorizations, revoked }
}
