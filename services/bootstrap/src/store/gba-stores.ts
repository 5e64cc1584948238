/**
 * The GBA state in JetStream KV, one bucket per aggregate, every write revision-checked so
 * replicas share it safely:
 * - `gba-subscribers`: IMPI -> subscriber (tenant, MILENAGE key id, AMF, SQN_HE);
 * - `gba-challenges`: Ub nonce -> the outstanding challenge (single use: marked used with a
 *   revision check before any answer is acted on), bucket TTL = nonce TTL + sweep margin;
 * - `gba-sessions`: B-TID -> bootstrapping session (Ks key handle, lifetime, NAF key handles),
 *   bucket TTL = key lifetime + sweep margin.
 * Keys are `encodeToken`s of the IMPI / nonce / B-TID (they contain `@`, `.`, `+`, `/`, `=`).
 */
import { encodeToken, KvRepository } from '@m2msec/bus'
import { createRecentRecords, RECENT_RECORDS_MAX, type RecentRecords } from './recent-records.ts'

/** The NATS connection type, as @m2msec/bus takes it. */
type NatsConnection = Parameters<typeof KvRepository.open>[0]

/** A subscriber as stored. Bytes are hex; SQN a decimal string (48-bit). */
export interface SubscriberRecord {
  readonly tenant: string
  readonly impi: string
  readonly milenageKeyId: string
  readonly amf: string
  readonly sqn: string
  readonly createdAt: string
  readonly updatedAt: string
  /** Names a certificate enrolled over EST with GBA may carry (absent: no GBA enrolment). */
  readonly enrolmentNames?: { readonly uris: readonly string[]; readonly dnsNames: readonly string[] }
}

/** A Ub challenge as stored: the libs/gba `UbPending` with bytes in base64, plus its Ks key. */
export interface ChallengeRecord {
  readonly tenant: string
  readonly ksKeyId: string
  readonly impi: string
  readonly realm: string
  readonly nonce: string
  readonly opaque: string
  readonly qop: 'auth' | 'auth-int'
  readonly rand: string
  readonly autn: string
  readonly xres: string
  readonly issuedAt: number
  readonly expiresAt: number
  readonly used: boolean
  /** Set once the challenge led to a session, so the sweeper leaves its Ks alone. */
  readonly sessionBtid?: string
  /** Set once the Ks of a failed challenge was scheduled for destruction. */
  readonly retired?: boolean
}

/** A bootstrapping session (TS 33.220 §4.5.2) as stored. */
export interface SessionRecord {
  readonly tenant: string
  readonly btid: string
  readonly impi: string
  /** base64 RAND. */
  readonly rand: string
  readonly ksKeyId: string
  readonly bootstrappedAt: string
  readonly expiresAt: string
  /** KMS ids of the Ks_NAF keys handed out as handles (destroyed with the session). */
  readonly nafKeyIds: readonly string[]
}

/** A Digest nonce the EST endpoint handed out for GBA enrolment (used once, then deleted). */
export interface EstNonceRecord {
  readonly tenant: string
  readonly expiresAt: number
}

/** The repositories. */
export interface GbaStores {
  readonly subscribers: KvRepository<SubscriberRecord>
  readonly challenges: KvRepository<ChallengeRecord>
  readonly sessions: KvRepository<SessionRecord>
  readonly estNonces: KvRepository<EstNonceRecord>
}

/** Records of these stores this replica wrote or read moments ago (see recent-records.ts). */
export interface GbaRecent {
  readonly subscribers: RecentRecords<SubscriberRecord>
  readonly challenges: RecentRecords<ChallengeRecord>
}

const recent = new WeakMap<GbaStores, GbaRecent>()

/** The recent records kept next to `stores` (created on first use, one set per stores object). */
export function recentRecordsOf(stores: GbaStores): GbaRecent {
  let r = recent.get(stores)
  if (r === undefined) {
    r = {
      subscribers: createRecentRecords(RECENT_RECORDS_MAX),
      challenges: createRecentRecords(RECENT_RECORDS_MAX),
    }
    recent.set(stores, r)
  }
  return r
}

/** Bound of the EST nonce bucket: about 200 000 outstanding challenges. */
export const EST_NONCES_MAX_BYTES = 32 * 1024 * 1024

/** Extra time records stay in KV after they expire, so the sweeper sees them first. */
export const SWEEP_MARGIN_MS = 3_600_000

/** KV key of an IMPI, nonce or B-TID. */
export function gbaKey(id: string): string {
  return encodeToken(id)
}

/**
 * Opens (creating when missing) the GBA buckets.
 *
 * @example
 * ```ts
 * const stores = await openGbaStores(nc, { replicas: 1, nonceTtlMs: 300_000, keyLifetimeMs: 3_600_000 })
 * ```
 */
export async function openGbaStores(
  nc: NatsConnection,
  opts: { replicas: number; nonceTtlMs: number; keyLifetimeMs: number },
): Promise<GbaStores> {
  const [subscribers, challenges, sessions, estNonces] = await Promise.all([
    KvRepository.open<SubscriberRecord>(nc, 'gba-subscribers', { replicas: opts.replicas, history: 5 }),
    KvRepository.open<ChallengeRecord>(nc, 'gba-challenges', {
      replicas: opts.replicas,
      ttlMs: opts.nonceTtlMs + SWEEP_MARGIN_MS,
      maxValueBytes: 4096,
    }),
    KvRepository.open<SessionRecord>(nc, 'gba-sessions', {
      replicas: opts.replicas,
      ttlMs: opts.keyLifetimeMs + SWEEP_MARGIN_MS,
      maxValueBytes: 64 * 1024,
    }),
    // Every unauthenticated 401 of the EST endpoint writes one: bounded, so a flood fills
    // this bucket (new challenges then fail until old nonces expire), never the server's disk.
    KvRepository.open<EstNonceRecord>(nc, 'gba-est-nonces', {
      replicas: opts.replicas,
      ttlMs: opts.nonceTtlMs,
      maxValueBytes: 256,
      maxBytes: EST_NONCES_MAX_BYTES,
    }),
  ])
  return { subscribers, challenges, sessions, estNonces }
}
