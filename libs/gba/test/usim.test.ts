import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  aes128EcbBlockCipher,
  checkSqnFreshness,
  createSqnArrayState,
  generateAuthVector,
  hexToBytes,
  highestAcceptedSqn,
  recoverSqnMs,
  sqnFromBytes,
  sqnToBytes,
  type SqnFreshnessPolicy,
} from '@m2msec/crypto'
import { createSimulatedUsim } from '../src/index.ts'
import { SET1 } from './support/vectors.ts'

// Set 1's SQN is far above a fresh card's 0, beyond the default Δ = 2^28; without Δ the
// card accepts it (Annex C makes Δ an operator choice).
const NO_DELTA: SqnFreshnessPolicy = { indBits: 5 }

describe('simulated USIM', () => {
  test('test set 1: RES, CK, IK are the published f2, f3, f4; SQN recorded', async () => {
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const r = await usim.authenticate(SET1.rand, SET1.autn)
    assert.equal(r.kind, 'success')
    assert.ok(r.kind === 'success')
    assert.deepEqual(r.res, SET1.res)
    assert.deepEqual(r.ck, SET1.ck)
    assert.deepEqual(r.ik, SET1.ik)
    assert.equal(highestAcceptedSqn(usim.sqnState(), NO_DELTA), SET1.sqn)
  })

  test('the same AUTN again: sync failure, AUTS carries SQN_MS = set-1 SQN (checked by recoverSqnMs)', async () => {
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    await usim.authenticate(SET1.rand, SET1.autn)
    const r = await usim.authenticate(SET1.rand, SET1.autn)
    assert.equal(r.kind, 'sync-failure')
    assert.ok(r.kind === 'sync-failure')
    assert.equal(r.auts.length, 14)
    const sqnMs = await recoverSqnMs(aes128EcbBlockCipher(SET1.k), SET1.opc, SET1.rand, r.auts)
    assert.equal(sqnFromBytes(sqnMs), SET1.sqn)
  })

  test('libosmocore vector: K = OPc = 00..0f, RAND = 0, SQN = 0x22', async () => {
    const k = hexToBytes('000102030405060708090a0b0c0d0e0f')
    const usim = createSimulatedUsim({ k, opc: k })
    const r = await usim.authenticate(new Uint8Array(16), hexToBytes('ec9320c2c2120000c8b7de2a3449f1bd'))
    assert.ok(r.kind === 'success')
    assert.deepEqual(r.res, hexToBytes('e9fc88ccc8a35381'))
    assert.deepEqual(r.ck, hexToBytes('7200a184d8f2c758fbdf87900ddbf275'))
    assert.deepEqual(r.ik, hexToBytes('12cb2dd3e0ec8378f6fc1d606c619f47'))
  })

  test('a flipped MAC-A bit is a MAC failure and leaves the SQN array alone', async () => {
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const before = usim.sqnState()
    const autn = SET1.autn.slice()
    autn[15] = (autn[15] as number) ^ 0x01
    assert.deepEqual(await usim.authenticate(SET1.rand, autn), { kind: 'mac-failure' })
    assert.deepEqual(usim.sqnState(), before)
  })

  test('another K (a BSF that is not the home network) is a MAC failure', async () => {
    const usim = createSimulatedUsim({ k: new Uint8Array(16).fill(7), opc: SET1.opc })
    assert.deepEqual(await usim.authenticate(SET1.rand, SET1.autn), { kind: 'mac-failure' })
  })

  test('default policy: a fresh card rejects a jump beyond Δ with AUTS for SQN_MS = 0', async () => {
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc })
    const r = await usim.authenticate(SET1.rand, SET1.autn)
    assert.ok(r.kind === 'sync-failure')
    const sqnMs = await recoverSqnMs(aes128EcbBlockCipher(SET1.k), SET1.opc, SET1.rand, r.auts)
    assert.equal(sqnFromBytes(sqnMs), 0n)
  })

  test('starting state: a card that has seen a higher SQN on the same IND answers with AUTS', async () => {
    const ahead = SET1.sqn + 0x100n // same IND (low 5 bits), higher SEQ
    const seen = checkSqnFreshness(createSqnArrayState(NO_DELTA), ahead, NO_DELTA)
    assert.ok(seen.accepted)
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA, sqnState: seen.state })
    const r = await usim.authenticate(SET1.rand, SET1.autn)
    assert.ok(r.kind === 'sync-failure')
    const sqnMs = await recoverSqnMs(aes128EcbBlockCipher(SET1.k), SET1.opc, SET1.rand, r.auts)
    assert.equal(sqnFromBytes(sqnMs), ahead)
  })

  test('concurrent commands run one at a time: one success, one sync failure', async () => {
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: NO_DELTA })
    const e = aes128EcbBlockCipher(SET1.k)
    const av = await generateAuthVector(e, SET1.opc, { rand: SET1.rand, sqn: sqnToBytes(SET1.sqn), amf: SET1.amf })
    const results = await Promise.all([usim.authenticate(av.rand, av.autn), usim.authenticate(av.rand, av.autn)])
    assert.deepEqual(results.map((r) => r.kind).sort(), ['success', 'sync-failure'])
  })

  test('configuration errors', () => {
    assert.throws(() => createSimulatedUsim({ k: SET1.k, opc: new Uint8Array(15) }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => createSimulatedUsim({ opc: SET1.opc }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(
      () => createSimulatedUsim({ k: SET1.k, opc: SET1.opc, policy: { indBits: 4 }, sqnState: createSqnArrayState() }),
      { code: 'ERR_INVALID_ARGUMENT' },
    )
  })

  test('bad RAND/AUTN lengths are ERR_INVALID_ARGUMENT', async () => {
    const usim = createSimulatedUsim({ k: SET1.k, opc: SET1.opc })
    await assert.rejects(usim.authenticate(new Uint8Array(15), SET1.autn), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(usim.authenticate(SET1.rand, new Uint8Array(17)), { code: 'ERR_INVALID_ARGUMENT' })
    // The queue survives a failed command.
    assert.equal((await usim.authenticate(SET1.rand, SET1.autn)).kind, 'sync-failure')
  })
})
