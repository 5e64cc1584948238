import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startNats, type NatsServer } from '@m2msec/testkit'
import { connectNats, KvRepository } from '@m2msec/bus'
import type { KeyRecord } from '../../src/domain/model.ts'
import type { StoredSecret } from '../../src/domain/ports.ts'
import { createKeyStore, type CachedKeyStore } from '../../src/store/key-store.ts'
import { createSecretStore } from '../../src/store/secret-store.ts'
import { runKeyStoreContract, runSecretStoreContract, sampleKey } from './store-contract.ts'

let nats: NatsServer
const connections: Array<{ close(): Promise<void> }> = []
const stores: CachedKeyStore[] = []
let bucketSeq = 0

before(async () => {
  nats = await startNats()
})
after(async () => {
  for (const s of stores) await s.close()
  for (const c of connections) await c.close()
  await nats.stop()
})

async function keyStore(bucket: string): Promise<CachedKeyStore> {
  const nc = await connectNats({ servers: nats.url, name: 'kms-store-test' })
  connections.push(nc)
  const store = await createKeyStore(await KvRepository.open<KeyRecord>(nc, bucket))
  stores.push(store)
  return store
}

runKeyStoreContract('jetstream', () => keyStore(`kms-keys-${++bucketSeq}`))
runSecretStoreContract('jetstream', async () => {
  const nc = await connectNats({ servers: nats.url, name: 'kms-secret-test' })
  connections.push(nc)
  return createSecretStore(await KvRepository.open<StoredSecret>(nc, `kms-secrets-${++bucketSeq}`))
})

test('two replicas racing on one key: one wins, the other conflicts, and a retry loses nothing', async () => {
  const bucket = `kms-keys-race-${++bucketSeq}`
  const a = await keyStore(bucket)
  const b = await keyStore(bucket)
  await a.create(sampleKey('t', 'race'))
  const fromA = await a.get('t', 'race')
  const fromB = await b.get('t', 'race')
  assert.ok(fromA && fromB)
  assert.equal(fromA.revision, fromB.revision)
  const results = await Promise.allSettled([
    a.update({ ...fromA.value, labels: { a: '1' } }, fromA.revision),
    b.update({ ...fromB.value, labels: { b: '1' } }, fromB.revision),
  ])
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  const lost = results.find((r) => r.status === 'rejected')
  assert.equal((lost as PromiseRejectedResult).reason.code, 'ERR_REVISION_CONFLICT')
  // The loser re-reads (its cache entry was dropped) and applies its change on top.
  const loser = results[0]?.status === 'rejected' ? a : b
  const cur = await loser.get('t', 'race')
  assert.ok(cur)
  await loser.update({ ...cur.value, labels: { ...cur.value.labels, retried: '1' } }, cur.revision)
  // Both replicas converge on the final value through the watch.
  for (let i = 0; i < 50; i++) {
    const [x, y] = [await a.get('t', 'race'), await b.get('t', 'race')]
    if (x?.revision === y?.revision && x?.value.labels.retried === '1') break
    await new Promise((r) => setTimeout(r, 20))
  }
  const final = await a.get('t', 'race')
  assert.equal(final?.value.labels.retried, '1')
  assert.equal(Object.keys(final?.value.labels ?? {}).length, 2)
  assert.deepEqual((await b.get('t', 'race'))?.value, final?.value)
})

test('a state change on one replica reaches the other replica through the watch', async () => {
  const bucket = `kms-keys-watch-${++bucketSeq}`
  const a = await keyStore(bucket)
  const b = await keyStore(bucket)
  await a.create(sampleKey('t', 'w'))
  assert.equal((await b.get('t', 'w'))?.value.state, 'ENABLED')
  const cur = await a.get('t', 'w')
  assert.ok(cur)
  await a.update({ ...cur.value, state: 'DISABLED' }, cur.revision)
  const t0 = Date.now()
  while ((await b.get('t', 'w'))?.value.state !== 'DISABLED') {
    assert.ok(Date.now() - t0 < 1000, 'replica b did not see the change within a second')
    await new Promise((r) => setTimeout(r, 5))
  }
})

test('keys scheduled for destruction on one replica are listed by every replica, and only those', async () => {
  const bucket = `kms-keys-scheduled-${++bucketSeq}`
  const a = await keyStore(bucket)
  await a.create(sampleKey('t', 'keep'))
  await a.create(sampleKey('t', 'doomed'))
  const b = await keyStore(bucket)
  assert.deepEqual(b.scheduledForDestruction(), [])
  const cur = await a.get('t', 'doomed')
  assert.ok(cur)
  await a.update({ ...cur.value, state: 'DESTRUCTION_SCHEDULED' }, cur.revision)
  assert.deepEqual(a.scheduledForDestruction(), [{ tenant: 't', id: 'doomed' }])
  const t0 = Date.now()
  while (b.scheduledForDestruction().length === 0) {
    assert.ok(Date.now() - t0 < 1000, 'replica b did not see the schedule within a second')
    await new Promise((r) => setTimeout(r, 5))
  }
  assert.deepEqual(b.scheduledForDestruction(), [{ tenant: 't', id: 'doomed' }])
  const scheduled = await b.get('t', 'doomed')
  assert.ok(scheduled)
  await b.update({ ...scheduled.value, state: 'DESTROYED' }, scheduled.revision)
  assert.deepEqual(b.scheduledForDestruction(), [])
})
