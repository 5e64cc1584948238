/**
 * The home environment (HSS/AuC) part of the BSF: authentication vectors from the KMS
 * Milenage operation (K and OPc never leave the KMS; with `ks_key_spec` neither do CK and IK)
 * and SQN handling per TS 33.102 §6.3 and Annex C:
 * - every AV takes a fresh SQN: SEQ_HE + 1 with this BSF's IND (`nextSqn`), written with a
 *   revision check before the AV is made, so two replicas never issue the same SQN;
 * - on AUTS, SQN_MS = AUTS[0..5] ⊕ f5*(RAND) and MAC-S = f1*(SQN_MS, RAND, AMF 0000) is checked
 *   inside the KMS (ERR_MAC_INVALID when it fails); then SQN_HE := SQN_MS (§6.3.5).
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import {
  bytesToBase64,
  bytesToHex,
  constantTimeEqual,
  hexToBytes,
  nextSqn,
  sqnFromBytes,
  sqnToBytes,
} from '@m2msec/crypto'
import { buildAutn, parseAuts } from '@m2msec/crypto'
import { challenge } from '@m2msec/gba'
import { gbaKey, recentRecordsOf, type ChallengeRecord, type SubscriberRecord } from '../store/gba-stores.ts'
import type { GbaDeps } from './context.ts'

const ZERO_SQN = new Uint8Array(6)
const RESYNC_AMF = new Uint8Array(2) // TS 33.102 §6.3.3: f1* uses the dummy AMF 0000
// CK and IK stay in the KMS (Ks key handle); libs/gba's pending record wants 16 bytes each.
const PLACEHOLDER_KEY = new Uint8Array(16)

/** KMS key id of the Ks of a challenge: derived from RAND so logs and sessions can name it. */
export function ksKeyIdOf(rand: Uint8Array): string {
  return `gbaks-${bytesToHex(rand)}`
}

/** A new 401 challenge for a subscriber: the `WWW-Authenticate` value and the stored record. */
export interface IssuedChallenge {
  readonly wwwAuthenticate: string
  readonly record: ChallengeRecord
}

/**
 * Takes the next SQN of a subscriber (revision-checked read-modify-write) and returns the
 * updated record. Throws ERR_NOT_FOUND when the subscriber is unknown.
 */
export async function takeNextSqn(deps: GbaDeps, impi: string): Promise<SubscriberRecord> {
  const { settings } = deps
  const now = deps.clock.now()
  const advance = (current: SubscriberRecord): SubscriberRecord => {
    const sqn = nextSqn(BigInt(current.sqn), settings.ind, settings.indBits)
    return { ...current, sqn: sqn.toString(), updatedAt: now.toISOString() }
  }
  const key = gbaKey(impi)
  const recent = recentRecordsOf(deps.stores).subscribers
  // Usually this replica wrote the record last: write on its revision without reading it again.
  const known = recent.get(key)
  if (known !== undefined) {
    const next = advance(known.value)
    try {
      const revision = await deps.stores.subscribers.update(key, next, known.revision)
      recent.set(key, { value: next, revision })
      return next
    } catch (err) {
      recent.delete(key)
      if (!(isM2msecError(err) && err.code === 'ERR_REVISION_CONFLICT')) throw err
    }
  }
  const updated = await deps.stores.subscribers.modify(key, (current) => {
    if (current === undefined) throw new M2msecError('ERR_NOT_FOUND', 'unknown subscriber')
    return advance(current)
  })
  recent.set(key, updated)
  return updated.value
}

/**
 * Takes the next SQN, runs Milenage in the KMS (keeping Ks there), stores the challenge and
 * returns the `WWW-Authenticate` value. Throws ERR_NOT_FOUND when the subscriber vanished.
 */
export async function issueChallenge(deps: GbaDeps, impi: string): Promise<IssuedChallenge> {
  return challengeFor(deps, await takeNextSqn(deps, impi))
}

/**
 * The challenge for a subscriber whose SQN was just taken ({@link takeNextSqn}): Milenage in
 * the KMS (Ks kept there), the challenge record stored, the `WWW-Authenticate` value.
 */
export async function challengeFor(deps: GbaDeps, sub: SubscriberRecord): Promise<IssuedChallenge> {
  const { settings, stores } = deps
  const now = deps.clock.now()
  const impi = sub.impi
  const sqn = sqnToBytes(BigInt(sub.sqn))
  const amf = hexToBytes(sub.amf)
  const rand = deps.randomBytes(16)
  const ksKeyId = ksKeyIdOf(rand)
  const v = await deps.kms.milenageKeepKs(sub.tenant, {
    keyId: sub.milenageKeyId,
    rand,
    sqn,
    amf,
    ksKeyId,
    exportable: settings.wrappedNafKeys,
  })
  const autn = buildAutn({ sqn, ak: v.ak, amf, macA: v.macA })
  const c = challenge(
    { rand, autn, xres: v.res, ck: PLACEHOLDER_KEY, ik: PLACEHOLDER_KEY },
    settings.realm,
    now.getTime(),
    { impi, ttlMs: settings.nonceTtlMs, randomBytes: deps.randomBytes },
  )
  const p = c.pending
  const record: ChallengeRecord = {
    tenant: sub.tenant,
    ksKeyId,
    impi: p.impi,
    realm: p.realm,
    nonce: p.nonce,
    opaque: p.opaque,
    qop: p.qop,
    rand: bytesToBase64(p.av.rand),
    autn: bytesToBase64(p.av.autn),
    xres: bytesToBase64(p.av.xres),
    issuedAt: p.issuedAt,
    expiresAt: p.expiresAt,
    used: false,
  }
  const key = gbaKey(p.nonce)
  const revision = await stores.challenges.create(key, record)
  recentRecordsOf(stores).challenges.set(key, { value: record, revision })
  return { wwwAuthenticate: c.wwwAuthenticate, record }
}

/**
 * Resynchronisation (TS 33.102 §6.3.5): recovers SQN_MS from AUTS with the KMS, checks
 * MAC-S, sets SQN_HE := SQN_MS. Throws ERR_MAC_INVALID when MAC-S does not verify and
 * ERR_NOT_FOUND when the subscriber is gone or moved to another tenant.
 */
export async function resynchronise(
  deps: GbaDeps,
  sub: SubscriberRecord,
  rand: Uint8Array,
  auts: Uint8Array,
): Promise<bigint> {
  const parts = parseAuts(auts)
  const first = await deps.kms.milenage(sub.tenant, { keyId: sub.milenageKeyId, rand, sqn: ZERO_SQN, amf: RESYNC_AMF })
  const sqnMs = new Uint8Array(6)
  for (let i = 0; i < 6; i++) sqnMs[i] = (parts.sqnMsXorAkStar[i] ?? 0) ^ (first.akStar[i] ?? 0)
  const check = await deps.kms.milenage(sub.tenant, { keyId: sub.milenageKeyId, rand, sqn: sqnMs, amf: RESYNC_AMF })
  if (!constantTimeEqual(check.macS, parts.macS)) {
    throw new M2msecError('ERR_MAC_INVALID', 'AUTS MAC-S does not verify')
  }
  const value = sqnFromBytes(sqnMs)
  const now = deps.clock.now().toISOString()
  recentRecordsOf(deps.stores).subscribers.delete(gbaKey(sub.impi))
  await deps.stores.subscribers.modify(gbaKey(sub.impi), (current) => {
    if (current === undefined || current.tenant !== sub.tenant) {
      throw new M2msecError('ERR_NOT_FOUND', 'unknown subscriber')
    }
    return { ...current, sqn: value.toString(), updatedAt: now }
  })
  return value
}
