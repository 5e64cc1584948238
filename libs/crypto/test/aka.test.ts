import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  aes128EcbBlockCipher,
  buildAutn,
  buildAuts,
  checkSqnFreshness,
  computeAuts,
  createSqnArrayState,
  DEFAULT_SQN_FRESHNESS_POLICY,
  generateAuthVector,
  hexToBytes,
  highestAcceptedSqn,
  joinSqn,
  nextSqn,
  parseAutn,
  parseAuts,
  recoverSqnMs,
  splitSqn,
  SQN_MAX,
  sqnFromBytes,
  sqnToBytes,
  verifyAutn,
  type SqnArrayState,
  type SqnFreshnessPolicy,
} from '../src/index.ts'

// libosmocore vector (also in test/vectors/milenage.json): K = OPc = 00..0f, RAND = 0.
const K = hexToBytes('000102030405060708090a0b0c0d0e0f')
const OPC = K
const RAND = new Uint8Array(16)
const e = aes128EcbBlockCipher(K)

describe('SQN encoding', () => {
  test('48-bit bigint <-> 6 bytes, big-endian', () => {
    assert.deepEqual(sqnToBytes(0x22n), hexToBytes('000000000022'))
    assert.deepEqual(sqnToBytes(SQN_MAX), hexToBytes('ffffffffffff'))
    assert.equal(sqnFromBytes(hexToBytes('ff9bb4d0b607')), 0xff9bb4d0b607n)
    assert.equal(sqnFromBytes(sqnToBytes(123456789n)), 123456789n)
  })
  test('out of range or wrong length is rejected', () => {
    assert.throws(() => sqnToBytes(-1n), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => sqnToBytes(SQN_MAX + 1n), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => sqnFromBytes(new Uint8Array(7)), { code: 'ERR_INVALID_ARGUMENT' })
  })
})

describe('AUTN and AUTS layout', () => {
  test('buildAutn/parseAutn', () => {
    const autn = buildAutn({
      sqn: hexToBytes('ffffffffffff'),
      ak: hexToBytes('0f0f0f0f0f0f'),
      amf: hexToBytes('8000'),
      macA: hexToBytes('0102030405060708'),
    })
    assert.deepEqual(autn, hexToBytes('f0f0f0f0f0f080000102030405060708'))
    const parts = parseAutn(autn)
    assert.deepEqual(parts.sqnXorAk, hexToBytes('f0f0f0f0f0f0'))
    assert.deepEqual(parts.amf, hexToBytes('8000'))
    assert.deepEqual(parts.macA, hexToBytes('0102030405060708'))
  })
  test('buildAuts/parseAuts', () => {
    const auts = buildAuts({
      sqnMs: hexToBytes('00000000001f'),
      akStar: hexToBytes('000000000001'),
      macS: new Uint8Array(8),
    })
    assert.deepEqual(auts, hexToBytes('00000000001e0000000000000000'))
    assert.deepEqual(parseAuts(auts).sqnMsXorAkStar, hexToBytes('00000000001e'))
  })
  test('bad lengths name the field', () => {
    assert.throws(() => parseAutn(new Uint8Array(15)), {
      code: 'ERR_INVALID_ARGUMENT',
      message: 'autn must be 16 bytes',
    })
    assert.throws(() => parseAuts(new Uint8Array(16)), {
      code: 'ERR_INVALID_ARGUMENT',
      message: 'auts must be 14 bytes',
    })
    assert.throws(
      () =>
        buildAutn({ sqn: new Uint8Array(6), ak: new Uint8Array(6), amf: new Uint8Array(2), macA: new Uint8Array(4) }),
      { code: 'ERR_INVALID_ARGUMENT', message: 'macA must be 8 bytes' },
    )
  })
})

describe('AKA round trips through MILENAGE', () => {
  test('tampered AUTN (MAC-A or SQN) fails with ERR_MAC_INVALID', async () => {
    const av = await generateAuthVector(e, OPC, { rand: RAND, sqn: sqnToBytes(0x22n), amf: new Uint8Array(2) })
    for (const index of [0, 7, 15]) {
      const bad = av.autn.slice()
      bad[index] = (bad[index] ?? 0) ^ 0x01
      await assert.rejects(verifyAutn(e, OPC, RAND, bad), { code: 'ERR_MAC_INVALID' })
    }
  })
  test('computeAuts then recoverSqnMs returns SQN_MS; tampering fails', async () => {
    const sqnMs = sqnToBytes(0x1234n)
    const auts = await computeAuts(e, OPC, RAND, sqnMs)
    assert.deepEqual(await recoverSqnMs(e, OPC, RAND, auts), sqnMs)
    const bad = auts.slice()
    bad[13] = (bad[13] ?? 0) ^ 0x80
    await assert.rejects(recoverSqnMs(e, OPC, RAND, bad), { code: 'ERR_MAC_INVALID' })
    // The same AUTS under another RAND must not verify.
    await assert.rejects(recoverSqnMs(e, OPC, new Uint8Array(16).fill(0xaa), auts), { code: 'ERR_MAC_INVALID' })
  })
  test('the libosmocore AUTS reproduces: SQN_MS 0x1f', async () => {
    assert.deepEqual(await computeAuts(e, OPC, RAND, sqnToBytes(0x1fn)), hexToBytes('8711a0ec9e1637df17f80b384ee4'))
  })
})

describe('SEQ/IND (TS 33.102 Annex C)', () => {
  const policy: SqnFreshnessPolicy = { indBits: 5, delta: 1n << 28n }

  test('split and join', () => {
    assert.deepEqual(splitSqn(42n, 5), { seq: 1n, ind: 10 })
    assert.equal(joinSqn(1n, 10, 5), 42n)
    assert.throws(() => joinSqn(1n, 32, 5), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => splitSqn(1n, 17), { code: 'ERR_INVALID_ARGUMENT' })
  })

  test('HE side nextSqn follows the libosmocore sequence 31 -> 42 -> 74 -> 106 (ind 10, 5 bits)', () => {
    const seen: bigint[] = []
    let sqn = 31n
    for (let i = 0; i < 3; i++) {
      sqn = nextSqn(sqn, 10, 5)
      seen.push(sqn)
    }
    assert.deepEqual(seen, [42n, 74n, 106n])
  })

  test('accepts increasing SQNs and rejects a replay with the highest accepted SQN', () => {
    let state = createSqnArrayState(policy)
    for (const sqn of [42n, 74n]) {
      const r = checkSqnFreshness(state, sqn, policy)
      assert.equal(r.accepted, true)
      if (r.accepted) state = r.state
    }
    const replay = checkSqnFreshness(state, 42n, policy)
    assert.deepEqual(replay, { accepted: false, reason: 'not-fresh', sqnMs: 74n })
    const same = checkSqnFreshness(state, 74n, policy)
    assert.equal(same.accepted, false)
  })

  test('out-of-order SQNs from different IND slots are both accepted (the point of the array)', () => {
    let state = createSqnArrayState(policy)
    // Node A (ind 3) got SEQ 5, node B (ind 7) got SEQ 4 but uses it later.
    for (const sqn of [joinSqn(5n, 3, 5), joinSqn(4n, 7, 5)]) {
      const r = checkSqnFreshness(state, sqn, policy)
      assert.equal(r.accepted, true, String(sqn))
      if (r.accepted) state = r.state
    }
    assert.equal(highestAcceptedSqn(state, policy), joinSqn(5n, 3, 5))
    // A lower SEQ in slot 3 is still stale.
    assert.equal(checkSqnFreshness(state, joinSqn(4n, 3, 5), policy).accepted, false)
  })

  test('a jump larger than delta is rejected before the array check', () => {
    const small: SqnFreshnessPolicy = { indBits: 5, delta: 10n }
    let state = createSqnArrayState(small)
    const first = checkSqnFreshness(state, joinSqn(10n, 0, 5), small)
    assert.ok(first.accepted)
    state = first.state
    assert.equal(checkSqnFreshness(state, joinSqn(20n, 1, 5), small).accepted, true)
    assert.deepEqual(checkSqnFreshness(state, joinSqn(21n, 1, 5), small), {
      accepted: false,
      reason: 'delta',
      sqnMs: joinSqn(10n, 0, 5),
    })
  })

  test('age limit L: SEQ_MS - SEQ must be < L', () => {
    const aged: SqnFreshnessPolicy = { indBits: 2, ageLimit: 3n }
    let state: SqnArrayState = { seqMs: [10n, 0n, 0n, 0n] }
    assert.deepEqual(checkSqnFreshness(state, joinSqn(7n, 1, 2), aged), {
      accepted: false,
      reason: 'age-limit',
      sqnMs: joinSqn(10n, 0, 2),
    })
    const ok = checkSqnFreshness(state, joinSqn(8n, 1, 2), aged)
    assert.ok(ok.accepted)
    state = ok.state
    assert.deepEqual(state.seqMs, [10n, 8n, 0n, 0n])
  })

  test('pure: the input state is never mutated', () => {
    const state = createSqnArrayState(policy)
    const r = checkSqnFreshness(state, 42n, policy)
    assert.ok(r.accepted)
    assert.equal(state.seqMs[10], 0n)
    assert.equal(r.state.seqMs[10], 1n)
  })

  test('indBits 0 is a plain monotonic counter', () => {
    const plain: SqnFreshnessPolicy = { indBits: 0 }
    let state = createSqnArrayState(plain)
    assert.equal(state.seqMs.length, 1)
    const r = checkSqnFreshness(state, 5n, plain)
    assert.ok(r.accepted)
    state = r.state
    assert.deepEqual(checkSqnFreshness(state, 5n, plain), { accepted: false, reason: 'not-fresh', sqnMs: 5n })
    assert.equal(checkSqnFreshness(state, 6n, plain).accepted, true)
  })

  test('the default policy is IND 5 bits, delta 2^28', () => {
    assert.equal(DEFAULT_SQN_FRESHNESS_POLICY.indBits, 5)
    assert.equal(DEFAULT_SQN_FRESHNESS_POLICY.delta, 1n << 28n)
    assert.equal(createSqnArrayState().seqMs.length, 32)
  })

  test('a state of the wrong size and a bad policy are rejected', () => {
    assert.throws(() => checkSqnFreshness({ seqMs: [0n] }, 1n, policy), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => createSqnArrayState({ indBits: 1.5 }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => createSqnArrayState({ indBits: 5, ageLimit: 0n }), { code: 'ERR_INVALID_ARGUMENT' })
  })

  test('USIM flow: verify AUTN, check freshness, answer a stale SQN with an AUTS the HE accepts', async () => {
    let state = createSqnArrayState(policy)
    const amf = new Uint8Array(2)
    const av1 = await generateAuthVector(e, OPC, { rand: RAND, sqn: sqnToBytes(nextSqn(0n, 3, 5)), amf })
    const v1 = await verifyAutn(e, OPC, RAND, av1.autn)
    const r1 = checkSqnFreshness(state, sqnFromBytes(v1.sqn), policy)
    assert.ok(r1.accepted)
    state = r1.state
    // Replay of the same AV: rejected, AUTS carries SQN_MS, HE recovers it.
    const r2 = checkSqnFreshness(state, sqnFromBytes(v1.sqn), policy)
    assert.equal(r2.accepted, false)
    if (r2.accepted) return
    const auts = await computeAuts(e, OPC, RAND, sqnToBytes(r2.sqnMs))
    const sqnMs = sqnFromBytes(await recoverSqnMs(e, OPC, RAND, auts))
    assert.equal(sqnMs, sqnFromBytes(v1.sqn))
    // HE resumes from SQN_MS; the next SQN is fresh.
    assert.equal(checkSqnFreshness(state, nextSqn(sqnMs, 3, 5), policy).accepted, true)
  })
})
