/**
 * Generic runner for milenage.json (3GPP TS 35.207/35.208 MILENAGE test sets, plus the
 * libosmocore AUTN/AUTS vector). Every set runs through the software kernel and through a
 * call-counting kernel, which shows that MILENAGE only ever touches K through the injected
 * BlockCipher (as an HSM-backed kernel would).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import {
  aes128EcbBlockCipher,
  buildAutn,
  bytesToHex,
  computeOpc,
  generateAuthVector,
  hexToBytes,
  milenage,
  recoverSqnMs,
  sqnFromBytes,
  verifyAutn,
  type BlockCipher,
} from '../../src/index.ts'

interface TestSet {
  test_set: number
  k: string
  rand: string
  sqn: string
  amf: string
  op?: string
  opc: string
  f1: string
  f1star: string
  f2: string
  f3: string
  f4: string
  f5: string
  f5star: string
  derived_autn_computed?: string
}

interface ResyncVector {
  description: string
  k: string
  opc: string
  rand: string
  amf: string
  sqn: string
  expected_autn: string
  expected_ik: string
  expected_ck: string
  expected_res: string
  opc_from_op_zero?: string
  auts?: string
  auts_recovered_sqn_ms?: string
  source: string
}

const file = JSON.parse(readFileSync(new URL('./milenage.json', import.meta.url), 'utf8')) as {
  test_sets: TestSet[]
  resync_and_autn_vectors: ResyncVector[]
}

/** A kernel that counts its calls and checks it only ever sees 16-byte blocks. */
function countingKernel(k: Uint8Array): { kernel: BlockCipher; calls: () => number } {
  const inner = aes128EcbBlockCipher(k)
  let calls = 0
  return {
    kernel: async (block) => {
      calls++
      assert.equal(block.length, 16)
      return inner(block)
    },
    calls: () => calls,
  }
}

const kernels = [
  { name: 'software AES kernel', make: (k: Uint8Array) => ({ kernel: aes128EcbBlockCipher(k), calls: () => -1 }) },
  { name: 'counting kernel', make: countingKernel },
]

assert.ok(file.test_sets.length > 0, 'milenage.json has test sets')

for (const set of file.test_sets) {
  describe(`3GPP TS 35.207/35.208 MILENAGE test set ${set.test_set}`, () => {
    const h = hexToBytes
    for (const { name, make } of kernels) {
      if (set.op !== undefined) {
        const op = set.op
        test(`OPc from OP (${name})`, async () => {
          const { kernel, calls } = make(h(set.k))
          assert.equal(bytesToHex(await computeOpc(kernel, h(op))), set.opc)
          if (calls() >= 0) assert.equal(calls(), 1)
        })
      }

      test(`f1, f1*, f2, f3, f4, f5, f5* (${name})`, async () => {
        const { kernel, calls } = make(h(set.k))
        const out = await milenage(kernel, h(set.opc), { rand: h(set.rand), sqn: h(set.sqn), amf: h(set.amf) })
        assert.equal(bytesToHex(out.macA), set.f1, 'f1 (MAC-A)')
        assert.equal(bytesToHex(out.macS), set.f1star, 'f1* (MAC-S)')
        assert.equal(bytesToHex(out.res), set.f2, 'f2 (RES)')
        assert.equal(bytesToHex(out.ck), set.f3, 'f3 (CK)')
        assert.equal(bytesToHex(out.ik), set.f4, 'f4 (IK)')
        assert.equal(bytesToHex(out.ak), set.f5, 'f5 (AK)')
        assert.equal(bytesToHex(out.akStar), set.f5star, 'f5* (AK*)')
        if (calls() >= 0) assert.equal(calls(), 6, 'TEMP + OUT1..OUT5')
      })
    }

    if (set.derived_autn_computed !== undefined) {
      const expected = set.derived_autn_computed
      test('AUTN = (SQN xor AK) || AMF || MAC-A (derived value, computed by the vector author)', async () => {
        const kernel = aes128EcbBlockCipher(h(set.k))
        const out = await milenage(kernel, h(set.opc), { rand: h(set.rand), sqn: h(set.sqn), amf: h(set.amf) })
        assert.equal(bytesToHex(buildAutn({ sqn: h(set.sqn), ak: out.ak, amf: h(set.amf), macA: out.macA })), expected)
        const verified = await verifyAutn(kernel, h(set.opc), h(set.rand), h(expected))
        assert.equal(bytesToHex(verified.sqn), set.sqn)
      })
    }
  })
}

file.resync_and_autn_vectors.forEach((v, i) => {
  describe(`TS 33.102 §6.3 AUTN/AUTS vector ${i + 1} (${v.source.split(' ')[0]})`, () => {
    const h = hexToBytes
    for (const { name, make } of kernels) {
      test(`authentication vector: AUTN, RES, CK, IK (${name})`, async () => {
        const { kernel, calls } = make(h(v.k))
        const av = await generateAuthVector(kernel, h(v.opc), { rand: h(v.rand), sqn: h(v.sqn), amf: h(v.amf) })
        assert.equal(bytesToHex(av.autn), v.expected_autn)
        assert.equal(bytesToHex(av.xres), v.expected_res)
        assert.equal(bytesToHex(av.ck), v.expected_ck)
        assert.equal(bytesToHex(av.ik), v.expected_ik)
        if (calls() >= 0) assert.equal(calls(), 6)
      })

      test(`USIM recovers SQN from AUTN and checks MAC-A (${name})`, async () => {
        const { kernel } = make(h(v.k))
        const verified = await verifyAutn(kernel, h(v.opc), h(v.rand), h(v.expected_autn))
        assert.equal(bytesToHex(verified.sqn), v.sqn)
        assert.equal(bytesToHex(verified.res), v.expected_res)
      })

      if (v.auts !== undefined && v.auts_recovered_sqn_ms !== undefined) {
        const auts = v.auts
        const sqnMs = v.auts_recovered_sqn_ms
        test(`AUTS gives SQN_MS and MAC-S (AMF 0000) verifies (${name})`, async () => {
          const { kernel } = make(h(v.k))
          const recovered = await recoverSqnMs(kernel, h(v.opc), h(v.rand), h(auts))
          assert.equal(bytesToHex(recovered), sqnMs)
          assert.equal(sqnFromBytes(recovered), BigInt(`0x${sqnMs}`))
        })
      }
    }

    if (v.opc_from_op_zero !== undefined) {
      const expected = v.opc_from_op_zero
      test('OPc from OP = 0', async () => {
        assert.equal(bytesToHex(await computeOpc(aes128EcbBlockCipher(h(v.k)), new Uint8Array(16))), expected)
      })
    }
  })
})
