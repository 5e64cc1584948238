/**
 * UMTS AKA tokens and sequence numbers (3GPP TS 33.102 §6.3 and Annex C):
 * AUTN = (SQN ⊕ AK) || AMF || MAC-A, AUTS = (SQN_MS ⊕ AK*) || MAC-S, SQN as a 48-bit
 * integer, and the SEQ/IND freshness scheme of Annex C as pure functions.
 *
 * The async helpers take the same injected {@link BlockCipher} as {@link milenage}, so they
 * run unchanged against an HSM-held K.
 */
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { assertLength, concatBytes, constantTimeEqual, xorBytes } from './bytes.ts'
import { milenage, type BlockCipher } from './milenage.ts'

/** Largest SQN: SQN is 48 bits (6 octets). */
export const SQN_MAX = (1n << 48n) - 1n

/** AMF used for MAC-S in AUTS (TS 33.102 §6.3.3: the dummy all-zero AMF). */
export const RESYNC_AMF: Uint8Array = new Uint8Array(2)

/**
 * Encodes a 48-bit SQN as 6 big-endian octets.
 *
 * @example
 * ```ts
 * sqnToBytes(0x22n) // 00 00 00 00 00 22
 * ```
 */
export function sqnToBytes(sqn: bigint): Uint8Array {
  if (typeof sqn !== 'bigint' || sqn < 0n || sqn > SQN_MAX) {
    throw invalidArgument('sqn must be a bigint in 0..2^48-1', { field: 'sqn' })
  }
  const out = new Uint8Array(6)
  let v = sqn
  for (let i = 5; i >= 0; i--) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

/** Decodes 6 big-endian octets into a 48-bit SQN. */
export function sqnFromBytes(bytes: Uint8Array): bigint {
  assertLength(bytes, 6, 'sqn')
  let v = 0n
  for (const b of bytes) v = (v << 8n) | BigInt(b)
  return v
}

/** The three fields of an AUTN. */
export interface AutnParts {
  /** SQN ⊕ AK (6 bytes); equals SQN when AK is not used. */
  sqnXorAk: Uint8Array
  /** Authentication management field (2 bytes). */
  amf: Uint8Array
  /** MAC-A = f1(SQN, RAND, AMF) (8 bytes). */
  macA: Uint8Array
}

/**
 * Builds AUTN = (SQN ⊕ AK) || AMF || MAC-A (16 bytes).
 *
 * @example
 * ```ts
 * const autn = buildAutn({ sqn, ak: out.ak, amf, macA: out.macA })
 * ```
 */
export function buildAutn(parts: { sqn: Uint8Array; ak: Uint8Array; amf: Uint8Array; macA: Uint8Array }): Uint8Array {
  assertLength(parts.sqn, 6, 'sqn')
  assertLength(parts.ak, 6, 'ak')
  assertLength(parts.amf, 2, 'amf')
  assertLength(parts.macA, 8, 'macA')
  return concatBytes(xorBytes(parts.sqn, parts.ak), parts.amf, parts.macA)
}

/** Splits a 16-byte AUTN into its fields (copies). */
export function parseAutn(autn: Uint8Array): AutnParts {
  assertLength(autn, 16, 'autn')
  return { sqnXorAk: autn.slice(0, 6), amf: autn.slice(6, 8), macA: autn.slice(8, 16) }
}

/** The two fields of an AUTS. */
export interface AutsParts {
  /** SQN_MS ⊕ AK* (6 bytes). */
  sqnMsXorAkStar: Uint8Array
  /** MAC-S = f1*(SQN_MS, RAND, AMF = 0000) (8 bytes). */
  macS: Uint8Array
}

/**
 * Builds AUTS = (SQN_MS ⊕ AK*) || MAC-S (14 bytes).
 *
 * @example
 * ```ts
 * const auts = buildAuts({ sqnMs, akStar: out.akStar, macS: outResync.macS })
 * ```
 */
export function buildAuts(parts: { sqnMs: Uint8Array; akStar: Uint8Array; macS: Uint8Array }): Uint8Array {
  assertLength(parts.sqnMs, 6, 'sqnMs')
  assertLength(parts.akStar, 6, 'akStar')
  assertLength(parts.macS, 8, 'macS')
  return concatBytes(xorBytes(parts.sqnMs, parts.akStar), parts.macS)
}

/** Splits a 14-byte AUTS into its fields (copies). */
export function parseAuts(auts: Uint8Array): AutsParts {
  assertLength(auts, 14, 'auts')
  return { sqnMsXorAkStar: auts.slice(0, 6), macS: auts.slice(6, 14) }
}

/** An authentication vector (quintet) as the HE/AuC issues it. */
export interface AuthVector {
  rand: Uint8Array
  xres: Uint8Array
  ck: Uint8Array
  ik: Uint8Array
  autn: Uint8Array
}

/**
 * HE/AuC side: runs MILENAGE and assembles the quintet (RAND, XRES, CK, IK, AUTN).
 *
 * @example
 * ```ts
 * const av = await generateAuthVector(e, opc, { rand, sqn: sqnToBytes(sqnHe), amf })
 * ```
 */
export async function generateAuthVector(
  encryptBlock: BlockCipher,
  opc: Uint8Array,
  input: { rand: Uint8Array; sqn: Uint8Array; amf: Uint8Array },
): Promise<AuthVector> {
  const out = await milenage(encryptBlock, opc, input)
  return {
    rand: input.rand.slice(),
    xres: out.res,
    ck: out.ck,
    ik: out.ik,
    autn: buildAutn({ sqn: input.sqn, ak: out.ak, amf: input.amf, macA: out.macA }),
  }
}

// AK and AK* depend on RAND only (OUT2/OUT5 use TEMP, not IN1), so any SQN/AMF works here.
async function anonymityKeys(encryptBlock: BlockCipher, opc: Uint8Array, rand: Uint8Array) {
  const out = await milenage(encryptBlock, opc, { rand, sqn: new Uint8Array(6), amf: new Uint8Array(2) })
  return { ak: out.ak, akStar: out.akStar }
}

/** Result of a successful AUTN check on the USIM side. */
export interface VerifiedAutn {
  /** The SQN recovered from AUTN; check it with {@link checkSqnFreshness} next. */
  sqn: Uint8Array
  amf: Uint8Array
  res: Uint8Array
  ck: Uint8Array
  ik: Uint8Array
}

/**
 * USIM side (TS 33.102 §6.3.3): recovers SQN = AUTN[0..5] ⊕ f5(RAND), recomputes
 * f1(SQN, RAND, AMF) and compares it with MAC-A in constant time. Does NOT check SQN
 * freshness. Throws ERR_MAC_INVALID when MAC-A does not match.
 *
 * @example
 * ```ts
 * const { sqn, res } = await verifyAutn(e, opc, rand, autn)
 * ```
 */
export async function verifyAutn(
  encryptBlock: BlockCipher,
  opc: Uint8Array,
  rand: Uint8Array,
  autn: Uint8Array,
): Promise<VerifiedAutn> {
  const parts = parseAutn(autn)
  const { ak } = await anonymityKeys(encryptBlock, opc, rand)
  const sqn = xorBytes(parts.sqnXorAk, ak)
  const out = await milenage(encryptBlock, opc, { rand, sqn, amf: parts.amf })
  if (!constantTimeEqual(out.macA, parts.macA)) {
    throw new M2msecError('ERR_MAC_INVALID', 'AUTN MAC-A does not verify')
  }
  return { sqn, amf: parts.amf, res: out.res, ck: out.ck, ik: out.ik }
}

/**
 * USIM side: builds AUTS for a synchronisation failure, with MAC-S over AMF = 0000.
 *
 * @example
 * ```ts
 * const auts = await computeAuts(e, opc, rand, sqnToBytes(sqnMs))
 * ```
 */
export async function computeAuts(
  encryptBlock: BlockCipher,
  opc: Uint8Array,
  rand: Uint8Array,
  sqnMs: Uint8Array,
): Promise<Uint8Array> {
  const out = await milenage(encryptBlock, opc, { rand, sqn: sqnMs, amf: RESYNC_AMF })
  return buildAuts({ sqnMs, akStar: out.akStar, macS: out.macS })
}

/**
 * HE/AuC side of resynchronisation (TS 33.102 §6.3.5): SQN_MS = AUTS[0..5] ⊕ f5*(RAND),
 * then checks MAC-S = f1*(SQN_MS, RAND, AMF = 0000) in constant time. Returns SQN_MS
 * (6 bytes); throws ERR_MAC_INVALID when MAC-S does not match.
 *
 * @example
 * ```ts
 * const sqnMs = sqnFromBytes(await recoverSqnMs(e, opc, rand, auts))
 * ```
 */
export async function recoverSqnMs(
  encryptBlock: BlockCipher,
  opc: Uint8Array,
  rand: Uint8Array,
  auts: Uint8Array,
): Promise<Uint8Array> {
  const parts = parseAuts(auts)
  const { akStar } = await anonymityKeys(encryptBlock, opc, rand)
  const sqnMs = xorBytes(parts.sqnMsXorAkStar, akStar)
  const out = await milenage(encryptBlock, opc, { rand, sqn: sqnMs, amf: RESYNC_AMF })
  if (!constantTimeEqual(out.macS, parts.macS)) {
    throw new M2msecError('ERR_MAC_INVALID', 'AUTS MAC-S does not verify')
  }
  return sqnMs
}

// ---------------------------------------------------------------------------------------
// TS 33.102 Annex C: SQN = SEQ || IND, with an array of SEQ_MS(i) on the USIM side.
// ---------------------------------------------------------------------------------------

/**
 * Parameters of the Annex C freshness check.
 *
 * - `indBits`: length of IND in bits; the USIM keeps a = 2^indBits array entries (0..16).
 * - `delta`: Δ (C.2.1), the largest accepted forward jump SEQ − SEQ_MS; omit for no limit.
 * - `ageLimit`: L (C.2.2), accept only if SEQ_MS − SEQ < L; omit when no limit L is applied.
 */
export interface SqnFreshnessPolicy {
  indBits: number
  delta?: bigint
  ageLimit?: bigint
}

/**
 * Default policy: IND = 5 bits (a = 32 entries), Δ = 2^28, no age limit L.
 * IND = 5 bits matches libosmocore's default `ind_bitlen`; Δ = 2^28 is the value commonly
 * cited from TS 33.102 C.3. Neither was re-read from the spec text for this project,
 * so deployments should set them explicitly.
 */
export const DEFAULT_SQN_FRESHNESS_POLICY: Readonly<SqnFreshnessPolicy> = Object.freeze({
  indBits: 5,
  delta: 1n << 28n,
})

/** USIM-side state: SEQ_MS(i) for every IND value i (length 2^indBits), initially all zero. */
export interface SqnArrayState {
  readonly seqMs: readonly bigint[]
}

/** Outcome of {@link checkSqnFreshness}. */
export type SqnFreshnessResult =
  | { accepted: true; state: SqnArrayState }
  | {
      accepted: false
      /** `delta`: jump larger than Δ; `age-limit`: SEQ_MS − SEQ ≥ L; `not-fresh`: SEQ ≤ SEQ_MS(IND). */
      reason: 'delta' | 'age-limit' | 'not-fresh'
      /** SQN_MS to put in AUTS: the highest previously accepted SQN anywhere in the array. */
      sqnMs: bigint
    }

function assertPolicy(policy: SqnFreshnessPolicy): void {
  if (!Number.isInteger(policy.indBits) || policy.indBits < 0 || policy.indBits > 16) {
    throw invalidArgument('indBits must be an integer in 0..16', { field: 'indBits' })
  }
  if (policy.delta !== undefined && (typeof policy.delta !== 'bigint' || policy.delta < 0n)) {
    throw invalidArgument('delta must be a non-negative bigint', { field: 'delta' })
  }
  if (policy.ageLimit !== undefined && (typeof policy.ageLimit !== 'bigint' || policy.ageLimit <= 0n)) {
    throw invalidArgument('ageLimit must be a positive bigint', { field: 'ageLimit' })
  }
}

function assertState(state: SqnArrayState, policy: SqnFreshnessPolicy): void {
  if (state.seqMs.length !== 2 ** policy.indBits) {
    throw invalidArgument('state.seqMs must have 2^indBits entries', { field: 'state', indBits: policy.indBits })
  }
}

/**
 * Splits SQN into SEQ (high bits) and IND (low `indBits` bits).
 *
 * @example
 * ```ts
 * splitSqn(42n, 5) // { seq: 1n, ind: 10 }
 * ```
 */
export function splitSqn(sqn: bigint, indBits: number): { seq: bigint; ind: number } {
  sqnToBytes(sqn) // range check
  assertPolicy({ indBits })
  const bits = BigInt(indBits)
  return { seq: sqn >> bits, ind: Number(sqn & ((1n << bits) - 1n)) }
}

/** Joins SEQ and IND back into a 48-bit SQN. */
export function joinSqn(seq: bigint, ind: number, indBits: number): bigint {
  assertPolicy({ indBits })
  if (!Number.isInteger(ind) || ind < 0 || ind >= 2 ** indBits) {
    throw invalidArgument('ind must be an integer in 0..2^indBits-1', { field: 'ind' })
  }
  const sqn = (seq << BigInt(indBits)) | BigInt(ind)
  sqnToBytes(sqn) // range check
  return sqn
}

/**
 * HE/AuC side: the next SQN for a node that uses IND value `ind`: SEQ_HE + 1 with IND
 * replaced (the scheme libosmocore implements: after 31 with ind 10, ind_bitlen 5, comes 42,
 * then 74, 106).
 *
 * @example
 * ```ts
 * nextSqn(31n, 10, 5) // 42n
 * ```
 */
export function nextSqn(sqnHe: bigint, ind: number, indBits: number): bigint {
  const { seq } = splitSqn(sqnHe, indBits)
  return joinSqn(seq + 1n, ind, indBits)
}

/** A fresh USIM state (all SEQ_MS(i) zero) for `policy`. */
export function createSqnArrayState(policy: SqnFreshnessPolicy = DEFAULT_SQN_FRESHNESS_POLICY): SqnArrayState {
  assertPolicy(policy)
  return { seqMs: new Array<bigint>(2 ** policy.indBits).fill(0n) }
}

/**
 * SQN_MS: the highest previously accepted SQN anywhere in the array (0n when none was
 * accepted yet; an accepted SEQ is always ≥ 1 so a zero entry means "never used").
 */
export function highestAcceptedSqn(
  state: SqnArrayState,
  policy: SqnFreshnessPolicy = DEFAULT_SQN_FRESHNESS_POLICY,
): bigint {
  assertPolicy(policy)
  assertState(state, policy)
  let best = 0n
  state.seqMs.forEach((seq, ind) => {
    if (seq > 0n) {
      const sqn = (seq << BigInt(policy.indBits)) | BigInt(ind)
      if (sqn > best) best = sqn
    }
  })
  return best
}

/**
 * USIM-side freshness check of TS 33.102 Annex C.2, in the spec's order:
 * 1. Δ (C.2.1): reject if SEQ − SEQ_MS > Δ, where SEQ_MS is the highest accepted SEQ;
 * 2. L (C.2.2, optional): reject unless SEQ_MS − SEQ < L;
 * 3. array (C.2.2): accept iff SEQ > SEQ_MS(IND), then set SEQ_MS(IND) = SEQ.
 * Pure: returns the new state on acceptance and never mutates `state`; on rejection
 * returns SQN_MS for the AUTS.
 *
 * @example
 * ```ts
 * const r = checkSqnFreshness(state, sqnFromBytes(verified.sqn))
 * if (!r.accepted) auts = await computeAuts(e, opc, rand, sqnToBytes(r.sqnMs))
 * ```
 */
export function checkSqnFreshness(
  state: SqnArrayState,
  sqn: bigint,
  policy: SqnFreshnessPolicy = DEFAULT_SQN_FRESHNESS_POLICY,
): SqnFreshnessResult {
  assertPolicy(policy)
  assertState(state, policy)
  const { seq, ind } = splitSqn(sqn, policy.indBits)
  const sqnMs = highestAcceptedSqn(state, policy)
  const seqMsMax = sqnMs >> BigInt(policy.indBits)

  if (policy.delta !== undefined && seq - seqMsMax > policy.delta) {
    return { accepted: false, reason: 'delta', sqnMs }
  }
  if (policy.ageLimit !== undefined && seqMsMax - seq >= policy.ageLimit) {
    return { accepted: false, reason: 'age-limit', sqnMs }
  }
  if (seq <= (state.seqMs[ind] ?? 0n)) {
    return { accepted: false, reason: 'not-fresh', sqnMs }
  }
  const seqMs = state.seqMs.slice()
  seqMs[ind] = seq
  return { accepted: true, state: { seqMs } }
}
