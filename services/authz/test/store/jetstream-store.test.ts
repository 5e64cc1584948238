import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { startNats, type NatsServer } from '@m2msec/testkit'
import { connectNats, kvKey, KvRepository } from '@m2msec/bus'
import type { PolicyRecord } from '../../src/domain/model.ts'
import { createPolicyStore, type JetStreamPolicyStore, type SyncMarker } from '../../src/store/policy-store.ts'
import { permits, runPolicyStoreContract, samplePolicy, sampleRecord } from './store-contract.ts'

let nats: NatsServer
const connections: Array<{ close(): Promise<void> }> = []
const stores: JetStreamPolicyStore[] = []
let bucketSeq = 0

before(async () => {
  nats = await startNats()
})
after(async () => {
  for (const s of stores) await s.close()
  for (const c of connections) await c.close()
  await nats.stop()
})

async function openStore(
  bucket: string,
  errors: unknown[] = [],
): Promise<{ store: JetStreamPolicyStore; repo: KvRepository<PolicyRecord> }> {
  const nc = await connectNats({ servers: nats.url, name: 'authz-store-test' })
  connections.push(nc)
  const repo = await KvRepository.open<PolicyRecord>(nc, bucket)
  const store = await createPolicyStore(repo, {
    markers: await KvRepository.open<SyncMarker>(nc, bucket),
    replica: `test-${bucket}`,
    onError: (err) => errors.push(err),
  })
  stores.push(store)
  return { store, repo }
}

async function within(ms: number, cond: () => boolean): Promise<number> {
  const started = performance.now()
  while (!cond()) {
    if (performance.now() - started > ms) throw new Error(`condition not met within ${ms} ms`)
    await sleep(2)
  }
  return performance.now() - started
}

runPolicyStoreContract('jetstream', async () => (await openStore(`authz-policies-${++bucketSeq}`)).store)

test('a change on one replica reaches the other replica within a second', async () => {
  const bucket = `authz-policies-${++bucketSeq}`
  const { store: a } = await openStore(bucket)
  const { store: b } = await openStore(bucket)
  await a.create(sampleRecord('t', samplePolicy('acp', 'Cae-1')))
  await within(1000, () => permits(b, 't', 'acp', 'Cae-1'))
  const cur = await b.get('t', 'acp')
  assert.ok(cur)
  await b.update(sampleRecord('t', samplePolicy('acp', 'Cae-2')), cur.revision)
  await within(1000, () => permits(a, 't', 'acp', 'Cae-2') && !permits(a, 't', 'acp', 'Cae-1'))
  const again = await a.get('t', 'acp')
  assert.ok(again)
  await a.delete('t', 'acp', again.revision)
  await within(1000, () => b.forTenant('t').get('acp') === undefined)
  assert.equal(b.size, 0)
})

test('a new replica answers only after it has loaded every stored policy', async () => {
  const bucket = `authz-policies-${++bucketSeq}`
  const { store: first } = await openStore(bucket)
  for (let i = 0; i < 300; i++) await first.create(sampleRecord(`t${i % 3}`, samplePolicy(`acp-${i}`)))
  const gone = await first.get('t0', 'acp-0')
  assert.ok(gone)
  await first.delete('t0', 'acp-0', gone.revision)
  const { store: late } = await openStore(bucket)
  assert.equal(late.size, 299, 'complete when createPolicyStore resolves')
  assert.ok(permits(late, 't2', 'acp-299', 'Cae-reader'))
  assert.equal(late.forTenant('t0').get('acp-0'), undefined)
})

test('a stored policy that does not compile is dropped from the index (fail closed) and reported', async () => {
  const bucket = `authz-policies-${++bucketSeq}`
  const errors: unknown[] = []
  const { store, repo } = await openStore(bucket, errors)
  const rev = await store.create(sampleRecord('t', samplePolicy('acp', 'Cae-1')))
  assert.ok(permits(store, 't', 'acp', 'Cae-1'))
  // Someone writes around the service: a crontab with 6 fields.
  const bad = samplePolicy('acp', 'Cae-1')
  const broken = {
    ...bad,
    privileges: {
      accessControlRule: [
        { ...bad.privileges.accessControlRule[0]!, accessControlContexts: [{ accessControlWindow: ['* * * * * *'] }] },
      ],
    },
  }
  await repo.update(kvKey('t', 'acp'), sampleRecord('t', broken), rev)
  await within(1000, () => store.forTenant('t').get('acp') === undefined)
  assert.equal(permits(store, 't', 'acp', 'Cae-1'), false)
  assert.equal((errors[0] as { code?: string }).code, 'ERR_INVALID_ARGUMENT')
})
