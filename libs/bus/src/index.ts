/**
 * @m2msec/bus: NATS and JetStream for m2msec services.
 *
 * - `connectNats`: one connection per process, reconnecting forever.
 * - `KvRepository<T>`: one JetStream KV bucket per aggregate, revision-checked writes.
 * - `kvKey`/`encodeToken`: safe keys and subject tokens from user data.
 * - `createAuditLog`/`verifyAuditChain`: the append-only, hash-chained AUDIT stream.
 * - `publishEvent`/`subscribeEvents`/`subjects`: JSON event envelopes with W3C trace context
 *   in NATS headers.
 * - `createRevocationSet`: the in-memory, watch-fed set of revoked authn access tokens that
 *   every token verifier embeds.
 * Errors are `M2msecError`s (ERR_REVISION_CONFLICT, ERR_ALREADY_EXISTS, ERR_UNAVAILABLE,
 * ERR_AUDIT_UNAVAILABLE, ...). Format details: README.md.
 */
export { connectNats, connectionName, type ConnectNatsOptions, type NatsTlsOptions } from './connect.ts'
export { toBusError, isWrongLastSequence } from './errors.ts'
export { jsonCodec, type Codec } from './codec.ts'
export { kvKey, parseKvKey, encodeToken, decodeToken, isValidKvKey } from './tokens.ts'
export {
  KvRepository,
  type Versioned,
  type KvItem,
  type KvChange,
  type KvRepositoryOptions,
  type KvListOptions,
  type KvWatch,
} from './kv-repository.ts'
export {
  createAuditLog,
  createAuditSink,
  type AuditEntry,
  verifyAuditChain,
  checkAuditMessages,
  auditSubject,
  AUDIT_STREAM,
  AUDIT_SUBJECT_PREFIX,
  AUDIT_GENESIS,
  type AuditLog,
  type AuditLogOptions,
  type AuditRecord,
  type StoredAuditRecord,
  type AuditVerification,
  type AuditMessage,
} from './audit.ts'
export { subjects, type EventSubject } from './subjects.ts'
export {
  publishEvent,
  subscribeEvents,
  type EventEnvelope,
  type EventMeta,
  type EventSubscription,
  type PublishEventOptions,
} from './events.ts'
export {
  createRevocationSet,
  revocationSetOn,
  REVOCATION_BUCKET,
  DEFAULT_REVOCATION_TTL_MS,
  type RevocationSet,
  type RevocationSetOptions,
  type RevokedToken,
} from './revocation-set.ts'
export { injectTraceHeaders, extractTraceContext } from './trace.ts'
export type { NatsConnection } from '@nats-io/transport-node'
