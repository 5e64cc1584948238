/**
 * MILENAGE (3GPP TS 35.205/35.206): the 3GPP authentication and key generation functions
 * f1, f1*, f2, f3, f4, f5 and f5*.
 *
 * The AES-128 kernel E_K is injected as a {@link BlockCipher}, so the subscriber key K can
 * stay inside a secure environment (an HSM doing CKM_AES_ECB) while the XOR/rotate glue runs
 * here. {@link aes128EcbBlockCipher} is the software kernel on node:crypto.
 */
import { createCipheriv, createSecretKey } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import { assertLength, toBytes, xorBytes } from './bytes.ts'

/**
 * AES-128-ECB encryption of one 16-byte block under the subscriber key K (E_K in TS 35.206).
 * Implementations must return a new 16-byte array and must not keep the input.
 */
export type BlockCipher = (block: Uint8Array) => Promise<Uint8Array>

/** Per-authentication inputs: RAND (16 bytes), SQN (6 bytes), AMF (2 bytes). */
export interface MilenageInput {
  rand: Uint8Array
  sqn: Uint8Array
  amf: Uint8Array
}

/** All MILENAGE outputs for one (RAND, SQN, AMF). */
export interface MilenageOutput {
  /** f1, network authentication code, 8 bytes. */
  macA: Uint8Array
  /** f1*, resynchronisation authentication code, 8 bytes. */
  macS: Uint8Array
  /** f2, (expected) response RES/XRES, 8 bytes. */
  res: Uint8Array
  /** f3, cipher key CK, 16 bytes. */
  ck: Uint8Array
  /** f4, integrity key IK, 16 bytes. */
  ik: Uint8Array
  /** f5, anonymity key AK, 6 bytes. */
  ak: Uint8Array
  /** f5*, resynchronisation anonymity key AK*, 6 bytes. */
  akStar: Uint8Array
}

// TS 35.206 §4.1: c1..c5 differ only in the last octet; r1..r5 are rotations in bits.
const C_LAST_OCTET = [0x00, 0x01, 0x02, 0x04, 0x08] as const
const R_BITS = [64, 0, 32, 64, 96] as const

/** Cyclic left rotation of a 16-byte block by `bits` (a multiple of 8 here). */
function rotateLeft(block: Uint8Array, bits: number): Uint8Array {
  const shift = bits / 8
  const out = new Uint8Array(16)
  for (let i = 0; i < 16; i++) out[i] = block[(i + shift) % 16] ?? 0
  return out
}

async function encrypt(encryptBlock: BlockCipher, block: Uint8Array): Promise<Uint8Array> {
  const out = await encryptBlock(block)
  if (!(out instanceof Uint8Array) || out.length !== 16) {
    // A kernel returning anything else is a bug in the SE adapter, not a caller error.
    throw new M2msecError('ERR_INTERNAL', 'block cipher must return 16 bytes')
  }
  return out
}

/**
 * Computes OPc = OP ⊕ E_K(OP) (TS 35.206 §4.1). One block-cipher call.
 *
 * @example
 * ```ts
 * const opc = await computeOpc(aes128EcbBlockCipher(k), op)
 * ```
 */
export async function computeOpc(encryptBlock: BlockCipher, op: Uint8Array): Promise<Uint8Array> {
  assertLength(op, 16, 'op')
  return xorBytes(op, await encrypt(encryptBlock, op))
}

/**
 * Runs f1, f1*, f2, f3, f4, f5 and f5* for one (RAND, SQN, AMF). Six block-cipher calls,
 * made one after another (TEMP first, then OUT1..OUT5).
 *
 * @example
 * ```ts
 * const out = await milenage(aes128EcbBlockCipher(k), opc, { rand, sqn, amf })
 * out.res // XRES, 8 bytes
 * ```
 */
export async function milenage(
  encryptBlock: BlockCipher,
  opc: Uint8Array,
  input: MilenageInput,
): Promise<MilenageOutput> {
  assertLength(opc, 16, 'opc')
  assertLength(input.rand, 16, 'rand')
  assertLength(input.sqn, 6, 'sqn')
  assertLength(input.amf, 2, 'amf')

  const temp = await encrypt(encryptBlock, xorBytes(input.rand, opc))

  const in1 = new Uint8Array(16)
  in1.set(input.sqn, 0)
  in1.set(input.amf, 6)
  in1.set(input.sqn, 8)
  in1.set(input.amf, 14)

  const outs: Uint8Array[] = []
  for (let i = 0; i < 5; i++) {
    // OUT1 mixes TEMP with IN1; OUT2..OUT5 depend on TEMP only.
    const base = i === 0 ? xorBytes(in1, opc) : xorBytes(temp, opc)
    const x = rotateLeft(base, R_BITS[i] ?? 0)
    x[15] = (x[15] ?? 0) ^ (C_LAST_OCTET[i] ?? 0)
    const block = i === 0 ? xorBytes(temp, x) : x
    outs.push(xorBytes(await encrypt(encryptBlock, block), opc))
  }
  const [out1, out2, out3, out4, out5] = outs as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array]

  return {
    macA: out1.slice(0, 8),
    macS: out1.slice(8, 16),
    res: out2.slice(8, 16),
    ck: out3,
    ik: out4,
    ak: out2.slice(0, 6),
    akStar: out5.slice(0, 6),
  }
}

/**
 * Software AES-128-ECB kernel on node:crypto. The key is copied into a KeyObject at
 * creation, so later changes to `k` do not affect the cipher.
 *
 * @example
 * ```ts
 * const e = aes128EcbBlockCipher(k) // k: 16 bytes
 * const out = await milenage(e, opc, { rand, sqn, amf })
 * ```
 */
export function aes128EcbBlockCipher(k: Uint8Array): BlockCipher {
  assertLength(k, 16, 'k')
  const key = createSecretKey(Uint8Array.from(k))
  return async (block: Uint8Array): Promise<Uint8Array> => {
    assertLength(block, 16, 'block')
    const cipher = createCipheriv('aes-128-ecb', key, null)
    cipher.setAutoPadding(false)
    const first = cipher.update(block)
    const rest = cipher.final()
    return toBytes(rest.length === 0 ? first : Buffer.concat([first, rest]))
  }
}
