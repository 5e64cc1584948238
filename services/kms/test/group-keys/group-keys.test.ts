/**
 * KMS group key operations on the real software SE and an in-memory tree store: members open
 * exactly the keys they should with their own credential (SDK derivation), the agent opens
 * nothing, rekeys give backward and forward secrecy, state survives a reload and a writer
 * that dies half way, group authentication finds the one forged member, broadcasts seal under
 * the current group key, and every operation is authorized and audited.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { isM2msecError } from '@m2msec/errors'
import {
  answerChallenge,
  answerSubsetQuery,
  buildAggregate,
  checkVerdict,
  createBroadcastReceiver,
  createBroadcastSender,
  createGroupChallenge,
  createMemberKeyRing,
  deriveGroupSessionKey,
  type MemberAnswer,
  type MemberKeyRing,
} from '@m2msec/groupkeys'
import { memberAuthKey, memberWrapKey, sessionConfirmTag } from '@m2msec/sdk/groups'
import {
  createGroupKeyOperations,
  type CompactionPolicy,
  type GroupKeyOperations,
} from '../../src/group-keys/operations.ts'
import type { Caller, KeyRecord } from '../../src/domain/model.ts'
import { admin, alice, kmsFixture, mallory } from '../unit/kms-fixture.ts'
import { createMemoryTreeStore, type MemoryTreeStore } from './memory-tree-store.ts'

const GID = 'meters'

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isM2msecError(err), String(err))
    assert.equal(err.code, code)
    return true
  })
}

function credentialOf(id: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`credential/${id}`).digest())
}

/** A KMS with group key operations and helpers to register member credentials. */
async function setup(opts: { compaction?: CompactionPolicy } = {}) {
  const fx = await kmsFixture()
  const store: MemoryTreeStore = createMemoryTreeStore()
  const groups: GroupKeyOperations = createGroupKeyOperations({ kms: fx.deps, store, ...opts })
  /** Imports `credentialOf(id)` as HMAC key `cred-<id>` of `tenant`, as authn would register it. */
  const register = async (id: string, tenant = 'acme'): Promise<string> => {
    const keyId = `cred-${id.replace(/[^A-Za-z0-9]/g, '-')}`
    const created = await fx.se.importKey({ algorithm: 'HMAC_SHA256', label: keyId, material: credentialOf(id) })
    const now = new Date().toISOString()
    const record: KeyRecord = {
      tenant,
      id: keyId,
      algorithm: 'HMAC_SHA256',
      purpose: 'credential',
      state: 'ENABLED',
      secureEnvironment: 'software',
      exportable: false,
      primaryVersion: 1,
      versions: [{ version: 1, ref: created.ref, createdAt: now }],
      usagePolicy: [{ principals: ['svc:authn'], operations: ['MAC', 'VERIFY_MAC'] }],
      labels: {},
      createdAt: now,
      updatedAt: now,
      createdBy: 'svc:authn',
    }
    await fx.deps.keys.create(record)
    return keyId
  }
  const join = async (ids: readonly string[]) => {
    const joins = []
    for (const id of ids) joins.push({ memberId: id, credentialKeyId: await register(id) })
    return joins
  }
  return { fx, store, groups, register, join }
}

function ringOf(id: string): MemberKeyRing {
  return createMemberKeyRing({ groupId: GID, memberId: id, wrapKeyFor: (e) => memberWrapKey(credentialOf(id), GID, e) })
}

describe('KMS group keys: distribution and rekey', () => {
  test('members open the group key with their own credential; the agent opens nothing', async () => {
    const { groups, join, fx } = await setup()
    const created = await groups.createTree(admin, { groupId: GID, arity: 0 })
    assert.equal(created.epoch, 0)
    assert.equal(created.groupKeyKid, '')
    const ids = Array.from({ length: 8 }, (_, i) => `meter-${i}`)
    const first = await groups.applyChange(admin, {
      groupId: GID,
      expectedEpoch: 0,
      joins: await join(ids),
      leaves: [],
    })
    assert.equal(first.tree.epoch, 1)
    assert.equal(first.tree.memberCount, 8)
    assert.equal(first.tree.groupKeyKid, `node:3.0#1`)
    const jwes = first.envelopes.map((e) => e.jwe)
    const rings = ids.map(ringOf)
    for (const r of rings) await r.accept(jwes)
    const gk = rings[0]!.groupKey()
    assert.ok(gk !== undefined)
    assert.equal(gk.kid, 'node:3.0#1')
    for (const r of rings) assert.deepEqual(r.groupKey()?.key, gk.key)
    // The agent has no member credential: with its own one it opens nothing.
    const agentRing = createMemberKeyRing({
      groupId: GID,
      memberId: 'gw-1',
      wrapKeyFor: (e) => memberWrapKey(credentialOf('gw-1'), GID, e),
    })
    assert.deepEqual(await agentRing.accept(jwes), { opened: 0, rejected: 0 })
    assert.equal(agentRing.groupKey(), undefined)
    // No envelope or audit record carries the group key bytes.
    const hex = Buffer.from(gk.key).toString('hex')
    assert.ok(!JSON.stringify(first).includes(hex))
    assert.ok(!JSON.stringify(fx.audit).includes(hex))
    assert.ok(fx.audit.some((a) => a.action === 'kms.GroupKeys.ApplyMembershipChange' && a.result === 'ok'))
  })

  test('leave: the leaver cannot open the new group key; join: the joiner gets only the new one', async () => {
    const { groups, join } = await setup()
    await groups.createTree(admin, { groupId: GID, arity: 2 })
    const ids = Array.from({ length: 16 }, (_, i) => `car-${i}`)
    const rings = new Map(ids.map((id) => [id, ringOf(id)]))
    const e1 = await groups.applyChange(admin, { groupId: GID, expectedEpoch: 0, joins: await join(ids), leaves: [] })
    for (const r of rings.values()) await r.accept(e1.envelopes.map((e) => e.jwe))
    const old = rings.get('car-3')!.groupKey()!

    const e2 = await groups.applyChange(admin, { groupId: GID, expectedEpoch: 1, joins: [], leaves: ['car-3'] })
    assert.ok(e2.envelopes.length <= 2 * 4, `leave cost ${e2.envelopes.length} envelopes`)
    for (const r of rings.values()) await r.accept(e2.envelopes.map((e) => e.jwe))
    assert.equal(rings.get('car-3')!.groupKey()!.epoch, 1, 'the leaver still only has epoch 1')
    const gk2 = rings.get('car-0')!.groupKey()!
    assert.equal(gk2.epoch, 2)
    assert.notDeepEqual(gk2.key, old.key)
    for (const [id, r] of rings) if (id !== 'car-3') assert.deepEqual(r.groupKey()!.key, gk2.key)

    const newcomer = ringOf('car-99')
    const e3 = await groups.applyChange(admin, {
      groupId: GID,
      expectedEpoch: 2,
      joins: await join(['car-99']),
      leaves: [],
    })
    assert.ok(e3.envelopes.length <= 2 * 4)
    await newcomer.accept([...e1.envelopes, ...e2.envelopes, ...e3.envelopes].map((e) => e.jwe))
    assert.equal(newcomer.groupKey()!.epoch, 3)
    assert.ok(!newcomer.has(gk2.kid) && !newcomer.has(old.kid), 'no earlier group key')
  })

  test('resync envelopes give a member its current path; state survives a reload', async () => {
    const { groups, join, fx, store } = await setup()
    await groups.createTree(admin, { groupId: GID, arity: 2 })
    const ids = Array.from({ length: 5 }, (_, i) => `m${i}`)
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: 0, joins: await join(ids), leaves: [] })
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: 1, joins: [], leaves: ['m1'] })
    const r = ringOf('m4')
    const resync = await groups.memberEnvelopes(admin, { groupId: GID, memberId: 'm4' })
    assert.equal(resync.epoch, 2)
    await r.accept(resync.envelopes.map((e) => e.jwe))
    assert.equal(r.groupKey()!.epoch, 2)
    // A second replica (fresh operations, same store) loads and unseals the same tree.
    const replica = createGroupKeyOperations({ kms: fx.deps, store })
    const again = ringOf('m0')
    await again.accept(
      (await replica.memberEnvelopes(admin, { groupId: GID, memberId: 'm0' })).envelopes.map((e) => e.jwe),
    )
    assert.deepEqual(again.groupKey()!.key, r.groupKey()!.key)
    await rejects(groups.memberEnvelopes(admin, { groupId: GID, memberId: 'm1' }), 'ERR_NOT_FOUND')
  })

  test('a writer whose head update fails changes nothing; the next change and a reload work', async () => {
    const { groups, join, fx, store } = await setup()
    await groups.createTree(admin, { groupId: GID, arity: 2 })
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: 0, joins: await join(['a', 'b', 'c']), leaves: [] })
    const before = store.count('acme', GID)
    const d = await join(['d'])
    store.failNext('updateHead')
    await rejects(
      groups.applyChange(admin, { groupId: GID, expectedEpoch: 1, joins: d, leaves: [] }),
      'ERR_UNAVAILABLE',
    )
    assert.equal(store.count('acme', GID), before, 'the orphan journal was removed')
    assert.equal((await groups.getTree(admin, GID)).epoch, 1)
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: 1, joins: d, leaves: ['a'] })
    const replica = createGroupKeyOperations({ kms: fx.deps, store })
    const ring = ringOf('d')
    await ring.accept(
      (await replica.memberEnvelopes(admin, { groupId: GID, memberId: 'd' })).envelopes.map((e) => e.jwe),
    )
    assert.equal(ring.groupKey()!.epoch, 2)
    await rejects(replica.memberEnvelopes(admin, { groupId: GID, memberId: 'a' }), 'ERR_NOT_FOUND')
  })

  test('a warm change costs three store calls whatever the group size', async () => {
    for (const n of [4, 200]) {
      const { groups, join, store } = await setup()
      const gid = `g${n}`
      await groups.createTree(admin, { groupId: gid, arity: 2 })
      const ids = Array.from({ length: n }, (_, i) => `s${i}`)
      await groups.applyChange(admin, { groupId: gid, expectedEpoch: 0, joins: await join(ids), leaves: [] })
      const joiner = await join(['new'])
      store.resetCalls()
      await groups.applyChange(admin, { groupId: gid, expectedEpoch: 1, joins: [], leaves: ['s1'] })
      await groups.applyChange(admin, { groupId: gid, expectedEpoch: 2, joins: joiner, leaves: [] })
      assert.deepEqual(
        Object.fromEntries(store.calls),
        { getHead: 2, putJournal: 2, updateHead: 2 },
        `n = ${n}: one head read, one journal, one head update per change`,
      )
    }
  })

  test('compaction folds the journals into a snapshot; cold replicas load snapshot + journals', async () => {
    const compaction = { maxJournals: 3, snapshotShare: 0.25, minBytes: 1 << 30 }
    const { groups, join, fx, store } = await setup({ compaction })
    await groups.createTree(admin, { groupId: GID, arity: 2 })
    const ids = Array.from({ length: 12 }, (_, i) => `c${i}`)
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: 0, joins: await join(ids), leaves: [] })
    let epoch = 1
    const changes: (() => Promise<{ joins: { memberId: string; credentialKeyId: string }[]; leaves: string[] }>)[] = [
      async () => ({ joins: [], leaves: ['c0'] }),
      async () => ({ joins: await join(['c12', 'c13']), leaves: [] }),
      async () => ({ joins: [], leaves: ['c5', 'c6'] }),
      async () => ({ joins: await join(['c14']), leaves: ['c13'] }),
    ]
    for (const next of changes) {
      const change = await next()
      await groups.applyChange(admin, { groupId: GID, expectedEpoch: epoch, ...change })
      epoch++
      // A cold replica after every change: from journals only, from a snapshot, or both.
      const replica = createGroupKeyOperations({ kms: fx.deps, store, compaction })
      const who = change.joins[0]?.memberId === 'c14' ? 'c14' : 'c1'
      const ring = ringOf(who)
      const { envelopes } = await replica.memberEnvelopes(admin, { groupId: GID, memberId: who })
      await ring.accept(envelopes.map((e) => e.jwe))
      assert.equal(ring.groupKey()!.epoch, epoch)
    }
    // The compaction ran in the group's queue after the third journal (epoch 3): queue behind it.
    await groups.memberEnvelopes(admin, { groupId: GID, memberId: 'c1' })
    const head = (await store.getHead('acme', GID))!.value
    assert.equal(head.snapshot?.epoch, 3)
    assert.equal(head.journal?.count, 2)
    assert.equal(store.count('acme', GID), 1 + head.snapshot!.chunks + 2, 'the folded journals are gone')

    // A compaction that fails half way (snapshot written, head not moved) changes nothing...
    store.failNext('updateHead', 1) // the change's own head update passes, the compaction's fails
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: epoch++, joins: [], leaves: ['c2'] })
    await groups.memberEnvelopes(admin, { groupId: GID, memberId: 'c1' })
    const failed = (await store.getHead('acme', GID))!.value
    assert.equal(failed.snapshot?.epoch, 3, 'the failed compaction did not move the head')
    assert.equal(failed.journal?.count, 3)
    assert.equal(store.count('acme', GID), 1 + failed.snapshot!.chunks + 3, 'its snapshot was removed again')
    // ...and the next change compacts again.
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: epoch++, joins: [], leaves: ['c3'] })
    await groups.memberEnvelopes(admin, { groupId: GID, memberId: 'c1' })
    const folded = (await store.getHead('acme', GID))!.value
    assert.equal(folded.snapshot?.epoch, epoch)
    assert.equal(folded.journal, null)
    assert.equal(store.count('acme', GID), 1 + folded.snapshot!.chunks)
    const replica = createGroupKeyOperations({ kms: fx.deps, store, compaction })
    const ring = ringOf('c1')
    await ring.accept(
      (await replica.memberEnvelopes(admin, { groupId: GID, memberId: 'c1' })).envelopes.map((e) => e.jwe),
    )
    assert.equal(ring.groupKey()!.epoch, epoch)
    await rejects(replica.memberEnvelopes(admin, { groupId: GID, memberId: 'c3' }), 'ERR_NOT_FOUND')
    assert.equal((await replica.getTree(admin, GID)).memberCount, 9)
  })

  test('conflicts, bad input, authorization and tenant isolation change nothing', async () => {
    const { groups, join, register, fx, store } = await setup()
    await groups.createTree(admin, { groupId: GID, arity: 2 })
    await rejects(groups.createTree(admin, { groupId: GID, arity: 2 }), 'ERR_ALREADY_EXISTS')
    await rejects(groups.createTree(admin, { groupId: 'x', arity: 1 }), 'ERR_INVALID_ARGUMENT')
    await rejects(groups.createTree(admin, { groupId: '../x', arity: 2 }), 'ERR_INVALID_ARGUMENT')
    const joins = await join(['a', 'b'])
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: 0, joins, leaves: [] })
    const before = store.count('acme', GID)
    await rejects(
      groups.applyChange(admin, { groupId: GID, expectedEpoch: 0, joins: await join(['c']), leaves: [] }),
      'ERR_REVISION_CONFLICT',
    )
    await rejects(
      groups.applyChange(admin, { groupId: GID, expectedEpoch: 1, joins: [joins[0]!], leaves: [] }),
      'ERR_ALREADY_EXISTS',
    )
    await rejects(
      groups.applyChange(admin, { groupId: GID, expectedEpoch: 1, joins: [], leaves: ['zz'] }),
      'ERR_NOT_FOUND',
    )
    await rejects(
      groups.applyChange(admin, {
        groupId: GID,
        expectedEpoch: 1,
        joins: [{ memberId: 'q', credentialKeyId: 'nope' }],
        leaves: [],
      }),
      'ERR_KEY_NOT_FOUND',
    )
    const foreign = await register('f', 'evil')
    await rejects(
      groups.applyChange(admin, {
        groupId: GID,
        expectedEpoch: 1,
        joins: [{ memberId: 'f', credentialKeyId: foreign }],
        leaves: [],
      }),
      'ERR_KEY_NOT_FOUND',
    )
    const aes = await fx.ops.createKey(admin, { keyId: 'not-hmac', algorithm: 'AES_256_GCM' })
    await rejects(
      groups.applyChange(admin, {
        groupId: GID,
        expectedEpoch: 1,
        joins: [{ memberId: 'q', credentialKeyId: aes.id }],
        leaves: [],
      }),
      'ERR_KEY_TYPE_MISMATCH',
    )
    assert.equal(store.count('acme', GID), before)
    assert.equal((await groups.getTree(admin, GID)).epoch, 1)
    await rejects(groups.getTree(alice, GID), 'ERR_PERMISSION_DENIED')
    await rejects(groups.getTree(mallory, GID), 'ERR_NOT_FOUND')
    await rejects(groups.memberEnvelopes(mallory, { groupId: GID, memberId: 'a' }), 'ERR_NOT_FOUND')
    assert.ok(fx.audit.some((a) => a.action === 'kms.GroupKeys.GetGroupTree' && a.result === 'denied'))
    await groups.deleteTree(admin, GID)
    assert.equal(store.count('acme', GID), 0)
    await rejects(groups.getTree(admin, GID), 'ERR_NOT_FOUND')
  })
})

describe('KMS group keys: group authentication', () => {
  const AGENT = 'gw-1'

  async function authScene(n: number, forged: readonly number[]) {
    const s = await setup()
    await s.groups.createTree(admin, { groupId: GID, arity: 2 })
    const ids = Array.from({ length: n }, (_, i) => `meter-${i}`)
    await s.groups.applyChange(admin, { groupId: GID, expectedEpoch: 0, joins: await s.join(ids), leaves: [] })
    const agentCred = await s.register(AGENT)
    const challenge = createGroupChallenge({
      groupId: GID,
      random: (k) => randomBytes(k),
      now: () => s.fx.deps.clock.now().getTime(),
    })
    const next = createGroupChallenge({
      groupId: GID,
      random: (k) => randomBytes(k),
      now: () => s.fx.deps.clock.now().getTime(),
    })
    const answers: MemberAnswer[] = ids.map((id, i) => {
      const a = answerChallenge(challenge, id, memberAuthKey(credentialOf(id), GID), (k) => randomBytes(k))
      return forged.includes(i) ? { ...a, mac: randomBytes(32) } : a
    })
    const agentKey = memberAuthKey(credentialOf(AGENT), GID)
    const response = buildAggregate(challenge, AGENT, answers, agentKey)
    return { ...s, ids, agentCred, challenge, next, answers, agentKey, response }
  }

  async function run(sc: Awaited<ReturnType<typeof authScene>>, caller: Caller = admin) {
    const subsetAnswers: { round: number; values: Uint8Array[]; proof: Uint8Array }[] = []
    for (;;) {
      const out = await sc.groups.authenticate(caller, {
        groupId: GID,
        agent: { memberId: AGENT, credentialKeyId: sc.agentCred },
        challenge: sc.challenge,
        next: sc.next,
        answer: sc.response,
        subsetAnswers,
      })
      if (out.kind === 'verdict') return { out, rounds: subsetAnswers.length }
      const a = answerSubsetQuery(
        sc.challenge,
        AGENT,
        sc.answers,
        { challengeId: sc.challenge.challengeId, round: out.round, ranges: out.ranges },
        sc.agentKey,
      )
      subsetAnswers.push({ round: a.round, values: [...a.values], proof: a.proof })
    }
  }

  test('all honest: verdict at once, proven to the agent, session keys confirmed per member', async () => {
    const sc = await authScene(40, [])
    const { out, rounds } = await run(sc)
    assert.equal(rounds, 0)
    assert.deepEqual(out.rejected, [])
    assert.ok(
      checkVerdict(
        { challengeId: sc.challenge.challengeId, rejected: [], next: sc.next, proof: out.proof },
        sc.challenge,
        sc.response,
        sc.agentKey,
      ),
    )
    assert.equal(out.confirmations.length, 40)
    for (const [i, c] of out.confirmations.entries()) {
      const a = sc.answers[i]!
      assert.equal(c.memberId, a.memberId)
      const sk = deriveGroupSessionKey(memberAuthKey(credentialOf(a.memberId), GID), sc.challenge, a.memberId, a.nonce)
      assert.deepEqual(c.tag, sessionConfirmTag(sk, sc.challenge.challenge, GID, a.memberId, a.nonce))
    }
  })

  test('one forged MAC among 200: found by bisection, only that member fails', async () => {
    const sc = await authScene(200, [137])
    const { out, rounds } = await run(sc)
    assert.deepEqual(out.rejected, [137])
    assert.ok(rounds >= 7 && rounds <= 8, `${rounds} rounds`)
    assert.equal(out.confirmations.length, 199)
    assert.ok(!out.confirmations.some((c) => c.memberId === 'meter-137'))
    assert.ok(
      checkVerdict(
        { challengeId: sc.challenge.challengeId, rejected: [137], next: sc.next, proof: out.proof },
        sc.challenge,
        sc.response,
        sc.agentKey,
      ),
    )
  })

  test('a bad agent proof, an expired challenge, a non-member and a non-admin are refused', async () => {
    const sc = await authScene(4, [])
    const base = {
      groupId: GID,
      agent: { memberId: AGENT, credentialKeyId: sc.agentCred },
      challenge: sc.challenge,
      subsetAnswers: [],
    }
    await rejects(
      sc.groups.authenticate(admin, { ...base, answer: { ...sc.response, proof: randomBytes(32) } }),
      'ERR_MAC_INVALID',
    )
    await rejects(
      sc.groups.authenticate(admin, {
        ...base,
        answer: { ...sc.response, members: [...sc.response.members, { memberId: 'x', nonce: randomBytes(16) }] },
      }),
      'ERR_INVALID_ARGUMENT',
    )
    await rejects(sc.groups.authenticate(alice, { ...base, answer: sc.response }), 'ERR_PERMISSION_DENIED')
    sc.fx.advance(120_000)
    await rejects(sc.groups.authenticate(admin, { ...base, answer: sc.response }), 'ERR_REPLAY')
  })
})

describe('KMS group keys: broadcast', () => {
  test('seals a signed command under the current group key; a wrong epoch is refused', async () => {
    const { groups, join } = await setup()
    await groups.createTree(admin, { groupId: GID, arity: 2 })
    const e1 = await groups.applyChange(admin, {
      groupId: GID,
      expectedEpoch: 0,
      joins: await join(['door-1', 'door-2']),
      leaves: [],
    })
    const ring = ringOf('door-1')
    await ring.accept(e1.envelopes.map((e) => e.jwe))
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    // Sign only: the test sender's seal() also encrypts, so take the JWS from a known key.
    const sender = createBroadcastSender({ groupId: GID, senderId: 'ops', signingKey: privateKey, now: Date.now })
    const probe = await sender.seal(new TextEncoder().encode('open'), { epoch: 1, key: ring.groupKey()!.key })
    const { compactDecrypt } = await import('jose')
    const jws = new TextDecoder().decode((await compactDecrypt(probe, ring.groupKey()!.key)).plaintext)
    const sealed = await groups.sealBroadcast(admin, { groupId: GID, jws })
    assert.equal(sealed.epoch, 1)
    const rx = createBroadcastReceiver({ groupId: GID, senderKey: () => publicKey, now: Date.now })
    rx.setGroupKey(ring.groupKey()!)
    assert.equal(new TextDecoder().decode((await rx.open(sealed.jwe)).payload), 'open')
    await groups.applyChange(admin, { groupId: GID, expectedEpoch: 1, joins: [], leaves: ['door-2'] })
    await rejects(groups.sealBroadcast(admin, { groupId: GID, jws }), 'ERR_KEY_VERSION_NOT_FOUND')
    await rejects(groups.sealBroadcast(admin, { groupId: GID, jws: 'a.b' }), 'ERR_INVALID_ARGUMENT')
  })
})
