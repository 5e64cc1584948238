/**
 * The JetStream KV group tree store on a real nats-server: the store contract (head revisions,
 * write-once journals and snapshot chunks, removal), and the group key operations on it with
 * a small compaction policy, so journals, compactions and cold loads from snapshot + journals
 * all go through real KV records.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { connectNats, KvRepository, type NatsConnection } from '@m2msec/bus'
import { isM2msecError } from '@m2msec/errors'
import { createMemberKeyRing, deriveMemberWrapKey } from '@m2msec/groupkeys'
import { startNats, type NatsServer } from '@m2msec/testkit'
import { createGroupKeyOperations } from '../../src/group-keys/operations.ts'
import { createKvGroupTreeStore, type GroupTreeStore, type TreeHead } from '../../src/group-keys/store.ts'
import type { KeyRecord } from '../../src/domain/model.ts'
import { admin, kmsFixture } from '../unit/kms-fixture.ts'

let nats: NatsServer
let nc: NatsConnection
let bucketSeq = 0

before(async () => {
  nats = await startNats()
  nc = await connectNats({ servers: nats.url, name: 'kms-group-tree-test' })
})
after(async () => {
  await nc?.close()
  await nats?.stop()
})

async function openStore(): Promise<{ store: GroupTreeStore; keys: () => Promise<string[]> }> {
  const repo = await KvRepository.open<never>(nc, `kms-group-keys-test-${++bucketSeq}`)
  const keys = async () => (await repo.list('', { limit: 1000 })).items.map((i) => i.key).sort()
  return { store: createKvGroupTreeStore(repo), keys }
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => isM2msecError(err) && err.code === code)
}

const head = (epoch: number): TreeHead => ({
  v: 2,
  groupId: 'g',
  arity: 2,
  height: 1,
  epoch,
  slotsUsed: 0,
  memberCount: 0,
  createdAt: '2026-01-01T00:00:00.000Z',
  snapshot: null,
  journal: null,
})

describe('KV group tree store', () => {
  test('head revisions, write-once journals and chunks, record removal, tree deletion', async () => {
    const { store, keys } = await openStore()
    const r1 = await store.createHead('acme', 'g', head(0))
    await rejects(store.createHead('acme', 'g', head(0)), 'ERR_ALREADY_EXISTS')
    const r2 = await store.updateHead('acme', 'g', head(1), r1)
    await rejects(store.updateHead('acme', 'g', head(2), r1), 'ERR_REVISION_CONFLICT')
    assert.deepEqual(await store.getHead('acme', 'g'), { value: head(1), revision: r2 })
    assert.equal(await store.getHead('other', 'g'), undefined)

    const journal = { epoch: 1, prev: null, slots: [[0, 'm', 'cred-m'] as const], nodes: [], dropped: [] }
    await store.putJournal('acme', 'g', 'J1', journal)
    await rejects(store.putJournal('acme', 'g', 'J1', journal), 'ERR_ALREADY_EXISTS')
    assert.deepEqual(await store.getJournal('acme', 'g', 'J1'), journal)
    assert.equal(await store.getJournal('acme', 'g', 'nope'), undefined)

    const chunks = [
      { epoch: 1, slots: [[0, 'm', 'cred-m'] as const], nodes: [] },
      { epoch: 1, slots: [], nodes: [[1, 0, 1, 'c2VhbGVk'] as const] },
    ]
    const ref = { id: 'S1', epoch: 1, chunks: 2, bytes: 100 }
    await store.putSnapshot('acme', 'g', 'S1', chunks)
    assert.deepEqual(await store.getSnapshot('acme', 'g', ref), chunks)
    assert.equal(await store.getSnapshot('acme', 'g', { ...ref, chunks: 3 }), undefined, 'a missing chunk')

    await store.deleteRecords('acme', 'g', { journals: ['J1', 'nope'], snapshot: ref })
    assert.equal(await store.getJournal('acme', 'g', 'J1'), undefined)
    assert.equal(await store.getSnapshot('acme', 'g', ref), undefined)
    await store.putJournal('acme', 'g', 'J2', { ...journal, epoch: 2 })
    await store.deleteTree('acme', 'g')
    assert.deepEqual(await keys(), [])
  })

  test('group key operations on KV: journals, compactions and cold loads keep every member current', async () => {
    const fx = await kmsFixture()
    const { store, keys } = await openStore()
    const compaction = { maxJournals: 4, snapshotShare: 0.25, minBytes: 1 << 30 }
    const groups = createGroupKeyOperations({ kms: fx.deps, store, compaction })
    const credentialOf = (id: string) => new Uint8Array(createHash('sha256').update(`kv/${id}`).digest())
    const register = async (id: string) => {
      const keyId = `cred-${id}`
      const created = await fx.se.importKey({ algorithm: 'HMAC_SHA256', label: keyId, material: credentialOf(id) })
      const now = new Date().toISOString()
      const record: KeyRecord = {
        tenant: 'acme',
        id: keyId,
        algorithm: 'HMAC_SHA256',
        purpose: 'credential',
        state: 'ENABLED',
        secureEnvironment: 'software',
        exportable: false,
        primaryVersion: 1,
        versions: [{ version: 1, ref: created.ref, createdAt: now }],
        usagePolicy: [],
        labels: {},
        createdAt: now,
        updatedAt: now,
        createdBy: 'test',
      }
      await fx.deps.keys.create(record)
      return { memberId: id, credentialKeyId: keyId }
    }
    const groupKeyOf = async (ops: typeof groups, id: string) => {
      const ring = createMemberKeyRing({
        groupId: 'meters',
        memberId: id,
        wrapKeyFor: (e) => deriveMemberWrapKey(credentialOf(id), 'meters', e),
      })
      await ring.accept(
        (await ops.memberEnvelopes(admin, { groupId: 'meters', memberId: id })).envelopes.map((e) => e.jwe),
      )
      return ring.groupKey()
    }

    await groups.createTree(admin, { groupId: 'meters', arity: 2 })
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => register(`m${i}`)))
    await groups.applyChange(admin, { groupId: 'meters', expectedEpoch: 0, joins: first, leaves: [] })
    let epoch = 1
    for (let i = 0; i < 10; i++) {
      const change = i % 2 === 0 ? { joins: [], leaves: [`m${i}`] } : { joins: [await register(`n${i}`)], leaves: [] }
      await groups.applyChange(admin, { groupId: 'meters', expectedEpoch: epoch, ...change })
      epoch++
      // A cold replica after every change reads the KV records (snapshot and/or journals).
      const replica = createGroupKeyOperations({ kms: fx.deps, store, compaction })
      const gk = await groupKeyOf(replica, 'm19')
      assert.equal(gk?.epoch, epoch)
      assert.deepEqual(gk?.key, (await groupKeyOf(groups, 'm19'))?.key)
    }
    await rejects(groupKeyOf(groups, 'm0'), 'ERR_NOT_FOUND')
    const h = (await store.getHead('acme', 'meters'))!.value
    assert.ok(h.snapshot !== null && h.snapshot.epoch >= 8, 'compactions moved the snapshot forward')
    const stored = await keys()
    const journals = stored.filter((k) => k.includes('.j.')).length
    assert.equal(journals, h.journal?.count ?? 0, 'only the current chain of journals is left')
    assert.equal(stored.filter((k) => k.includes('.c.')).length, h.snapshot.chunks, 'one snapshot')
    await groups.deleteTree(admin, 'meters')
    assert.deepEqual(await keys(), [])
  })
})
