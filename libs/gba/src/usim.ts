/**
 * A simulated USIM for the SDK and tests: K, OPc and the SQN array of TS 33.102 Annex C,
 * running the USIM side of UMTS AKA (TS 33.102 §6.3.3) with MILENAGE from @m2msec/crypto.
 */
import {
  aes128EcbBlockCipher,
  assertLength,
  checkSqnFreshness,
  computeAuts,
  createSqnArrayState,
  DEFAULT_SQN_FRESHNESS_POLICY,
  highestAcceptedSqn,
  sqnFromBytes,
  sqnToBytes,
  verifyAutn,
  type BlockCipher,
  type SqnArrayState,
  type SqnFreshnessPolicy,
} from '@m2msec/crypto'
import { isM2msecError } from '@m2msec/errors'

/**
 * Outcome of an AUTHENTICATE command:
 * - `success`: MAC-A verified and SQN fresh; RES, CK, IK returned, SQN recorded;
 * - `sync-failure`: MAC-A verified but SQN out of range; AUTS carries SQN_MS;
 * - `mac-failure`: AUTN does not come from the home network (MAC-A wrong).
 */
export type UsimAuthResult =
  | { kind: 'success'; res: Uint8Array; ck: Uint8Array; ik: Uint8Array }
  | { kind: 'sync-failure'; auts: Uint8Array }
  | { kind: 'mac-failure' }

/** The one operation the UE side of Ub needs from a (real or simulated) USIM. */
export interface Usim {
  authenticate(rand: Uint8Array, autn: Uint8Array): Promise<UsimAuthResult>
}

/** A simulated USIM whose SQN array can be read back (to persist a simulated device). */
export interface SimulatedUsim extends Usim {
  /** A copy of the current SEQ_MS array. */
  sqnState(): SqnArrayState
}

/** Configuration of {@link createSimulatedUsim}. */
export interface SimulatedUsimConfig {
  /** Subscriber key K (16 bytes); ignored when `encryptBlock` is given. */
  k?: Uint8Array
  /** E_K kernel, for a K that lives elsewhere; default AES-128 over `k`. */
  encryptBlock?: BlockCipher
  /** OPc (16 bytes). */
  opc: Uint8Array
  /** Annex C parameters; default {@link DEFAULT_SQN_FRESHNESS_POLICY}. */
  policy?: SqnFreshnessPolicy
  /** Starting SEQ_MS array; default all zero (a fresh card). */
  sqnState?: SqnArrayState
}

/**
 * Creates a simulated USIM. Commands run one at a time (as on a card), so concurrent
 * `authenticate` calls never race on the SQN array.
 *
 * @example
 * ```ts
 * const usim = createSimulatedUsim({ k, opc })
 * const r = await usim.authenticate(rand, autn)
 * if (r.kind === 'sync-failure') sendAuts(r.auts)
 * ```
 */
export function createSimulatedUsim(config: SimulatedUsimConfig): SimulatedUsim {
  assertLength(config.opc, 16, 'opc')
  const opc = config.opc.slice()
  let encryptBlock: BlockCipher
  if (config.encryptBlock !== undefined) {
    encryptBlock = config.encryptBlock
  } else {
    assertLength(config.k, 16, 'k')
    encryptBlock = aes128EcbBlockCipher(config.k)
  }
  const policy = config.policy ?? DEFAULT_SQN_FRESHNESS_POLICY
  let state: SqnArrayState = config.sqnState ?? createSqnArrayState(policy)
  highestAcceptedSqn(state, policy) // validates `state` against `policy` (ERR_INVALID_ARGUMENT)
  state = { seqMs: state.seqMs.slice() }
  let queue: Promise<unknown> = Promise.resolve()

  const run = async (rand: Uint8Array, autn: Uint8Array): Promise<UsimAuthResult> => {
    assertLength(rand, 16, 'rand')
    assertLength(autn, 16, 'autn')
    let verified
    try {
      verified = await verifyAutn(encryptBlock, opc, rand, autn)
    } catch (err) {
      if (isM2msecError(err) && err.code === 'ERR_MAC_INVALID') return { kind: 'mac-failure' }
      throw err
    }
    const fresh = checkSqnFreshness(state, sqnFromBytes(verified.sqn), policy)
    if (!fresh.accepted) {
      return { kind: 'sync-failure', auts: await computeAuts(encryptBlock, opc, rand, sqnToBytes(fresh.sqnMs)) }
    }
    state = fresh.state
    return { kind: 'success', res: verified.res, ck: verified.ck, ik: verified.ik }
  }

  return {
    authenticate(rand, autn) {
      const result = queue.then(() => run(rand, autn))
      queue = result.catch(() => undefined)
      return result
    },
    sqnState() {
      return { seqMs: state.seqMs.slice() }
    },
  }
}
