/**
 * A test home environment (HSS/AuC): issues authentication vectors with MILENAGE and
 * resynchronises from AUTS, the way the KMS `Milenage` operation will for the BSF service.
 */
import {
  aes128EcbBlockCipher,
  generateAuthVector,
  nextSqn,
  recoverSqnMs,
  sqnFromBytes,
  sqnToBytes,
} from '@m2msec/crypto'
import type { UbAuthVector } from '../../src/index.ts'

export interface TestHe {
  /** The last SQN issued (or learned from AUTS). */
  sqnHe(): bigint
  /** An AV for `rand`; with `sqn` given that SQN is used, else the next one for IND `ind`. */
  authVector(rand: Uint8Array, sqn?: bigint): Promise<UbAuthVector>
  /** TS 33.102 §6.3.5: SQN_HE := SQN_MS from AUTS (throws ERR_MAC_INVALID on a bad MAC-S). */
  resync(rand: Uint8Array, auts: Uint8Array): Promise<bigint>
}

export function createTestHe(config: {
  k: Uint8Array
  opc: Uint8Array
  amf: Uint8Array
  sqnHe: bigint
  ind?: number
  indBits?: number
}): TestHe {
  const e = aes128EcbBlockCipher(config.k)
  let sqnHe = config.sqnHe
  return {
    sqnHe: () => sqnHe,
    async authVector(rand, sqn) {
      sqnHe = sqn ?? nextSqn(sqnHe, config.ind ?? 0, config.indBits ?? 5)
      return generateAuthVector(e, config.opc, { rand, sqn: sqnToBytes(sqnHe), amf: config.amf })
    },
    async resync(rand, auts) {
      sqnHe = sqnFromBytes(await recoverSqnMs(e, config.opc, rand, auts))
      return sqnHe
    },
  }
}
