import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startNats, type NatsServer } from '@m2msec/testkit'
import { connectNats, kvKey, KvRepository, type KvChange, type NatsConnection } from '../src/index.ts'

interface Counter {
  n: number
  by?: string
}

let nats: NatsServer
let nc1: NatsConnection
let nc2: NatsConnection

before(async () => {
  nats = await startNats()
  nc1 = await connectNats({ servers: nats.url, name: 'kv-test-1' })
  nc2 = await connectNats({ servers: nats.url, name: 'kv-test-2' })
})
after(async () => {
  await nc1?.close()
  await nc2?.close()
  await nats?.stop()
})

test('create, get, update, delete with revisions', async () => {
  const repo = await KvRepository.open<Counter>(nc1, 'basic', { history: 3 })
  const key = kvKey('t1', 'c1')
  assert.equal(await repo.get(key), undefined)
  const r1 = await repo.create(key, { n: 1 })
  assert.deepEqual(await repo.get(key), { value: { n: 1 }, revision: r1 })
  await assert.rejects(repo.create(key, { n: 9 }), { code: 'ERR_ALREADY_EXISTS' })
  const r2 = await repo.update(key, { n: 2 }, r1)
  assert.ok(r2 > r1)
  await assert.rejects(repo.update(key, { n: 3 }, r1), { code: 'ERR_REVISION_CONFLICT' })
  await assert.rejects(repo.delete(key, r1), { code: 'ERR_REVISION_CONFLICT' })
  await repo.delete(key, r2)
  assert.equal(await repo.get(key), undefined)
  // A deleted key can be created again.
  const r3 = await repo.create(key, { n: 10 })
  assert.equal((await repo.get(key))?.revision, r3)
})

test('bad input is refused before it reaches NATS', async () => {
  const repo = await KvRepository.open<Counter>(nc1, 'limits', { maxValueBytes: 64 })
  await assert.rejects(repo.create('a b', { n: 1 }), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(repo.get('a.>'), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(repo.update('k', { n: 1 }, 0), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(repo.create('k', { n: 1, by: 'x'.repeat(100) }), { code: 'ERR_PAYLOAD_TOO_LARGE' })
  await assert.rejects(KvRepository.open(nc1, 'bad.name'), { code: 'ERR_INVALID_ARGUMENT' })
})

test('CAS race: two clients update from the same revision, exactly one wins', async () => {
  const a = await KvRepository.open<Counter>(nc1, 'race')
  const b = await KvRepository.open<Counter>(nc2, 'race')
  const key = kvKey('t1', 'race')
  const rev = await a.create(key, { n: 0 })
  for (let round = 0; round < 10; round++) {
    const current = await a.get(key)
    assert.ok(current)
    const results = await Promise.allSettled([
      a.update(key, { n: current.value.n + 1, by: 'a' }, current.revision),
      b.update(key, { n: current.value.n + 1, by: 'b' }, current.revision),
    ])
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r) => r.status === 'rejected')
    assert.equal(won.length, 1, `round ${round}`)
    assert.equal(lost.length, 1)
    assert.equal((lost[0] as PromiseRejectedResult).reason.code, 'ERR_REVISION_CONFLICT')
  }
  assert.equal((await a.get(key))?.value.n, 10)
  assert.ok(rev > 0)
})

test('modify(): concurrent increments from two clients lose nothing', async () => {
  const a = await KvRepository.open<Counter>(nc1, 'modify')
  const b = await KvRepository.open<Counter>(nc2, 'modify')
  const key = kvKey('t1', 'counter')
  const inc = (c: Counter | undefined): Counter => ({ n: (c?.n ?? 0) + 1 })
  const per = 15
  await Promise.all([
    ...Array.from({ length: per }, () => a.modify(key, inc, { retries: 50 })),
    ...Array.from({ length: per }, () => b.modify(key, inc, { retries: 50 })),
  ])
  assert.equal((await a.get(key))?.value.n, 2 * per)
  // fn throwing aborts without writing.
  await assert.rejects(
    a.modify(key, () => {
      throw new Error('stop')
    }),
    /stop/,
  )
  assert.equal((await a.get(key))?.value.n, 2 * per)
})

test('list(): sorted, paged with next/after, scoped to a prefix, skips deleted keys', async () => {
  const repo = await KvRepository.open<Counter>(nc1, 'paging')
  const ids = Array.from({ length: 23 }, (_, i) => `d${String(i).padStart(2, '0')}`)
  await Promise.all(ids.map((id, i) => repo.create(kvKey('t1', id), { n: i })))
  await repo.create(kvKey('t2', 'other'), { n: -1 })
  await repo.delete(kvKey('t1', 'd05'))

  const seen: string[] = []
  let after: string | undefined
  let pages = 0
  do {
    const page = await repo.list(kvKey('t1'), after === undefined ? { limit: 10 } : { limit: 10, after })
    pages++
    for (const item of page.items) {
      seen.push(item.key)
      assert.equal(item.value.n, Number(item.key.slice(-2)))
      assert.ok(item.revision > 0)
    }
    after = page.next
  } while (after !== undefined)
  assert.equal(pages, 3)
  assert.deepEqual(
    seen,
    ids.filter((id) => id !== 'd05').map((id) => kvKey('t1', id)),
  )
  const all = await repo.list('', { limit: 1000 })
  assert.equal(all.items.length, 23)
  assert.equal(all.next, undefined)
  assert.deepEqual((await repo.list(kvKey('nobody'))).items, [])
  await assert.rejects(repo.list('', { limit: 0 }), { code: 'ERR_INVALID_ARGUMENT' })
})

test('watch(): initial values, then puts and deletes under the prefix only', async () => {
  const repo = await KvRepository.open<Counter>(nc1, 'watching')
  await repo.create(kvKey('t1', 'a'), { n: 1 })
  await repo.create(kvKey('t1', 'gone'), { n: 0 })
  await repo.delete(kvKey('t1', 'gone'))
  await repo.create(kvKey('t2', 'x'), { n: 99 })

  const changes: Array<KvChange<Counter>> = []
  let notify: (() => void) | undefined
  const watcher = await repo.watch(kvKey('t1'), (c) => {
    changes.push(c)
    notify?.()
  })
  const waitFor = async (count: number): Promise<void> => {
    const deadline = Date.now() + 3_000
    while (changes.length < count && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        notify = resolve
        setTimeout(resolve, 50)
      })
    }
  }
  try {
    await waitFor(1)
    const rev = await repo.update(kvKey('t1', 'a'), { n: 2 }, (await repo.get(kvKey('t1', 'a')))!.revision)
    await repo.create(kvKey('t2', 'y'), { n: 5 }) // other prefix: not seen
    await repo.create(kvKey('t1', 'b'), { n: 3 })
    await repo.delete(kvKey('t1', 'b'))
    await waitFor(4)
    assert.deepEqual(
      changes.map((c) => [c.key, c.op, c.value?.n]),
      [
        [kvKey('t1', 'a'), 'put', 1],
        [kvKey('t1', 'a'), 'put', 2],
        [kvKey('t1', 'b'), 'put', 3],
        [kvKey('t1', 'b'), 'delete', undefined],
      ],
    )
    assert.equal(changes[1]?.revision, rev)
  } finally {
    await watcher.stop()
  }
})

test('NATS down: KV calls fail with ERR_UNAVAILABLE within the request timeout', async () => {
  const own = await startNats()
  const conn = await connectNats({ servers: own.url, name: 'kv-down' })
  try {
    const repo = await KvRepository.open<Counter>(conn, 'down', { timeoutMs: 300 })
    await repo.create('k', { n: 1 })
    await own.kill()
    const started = Date.now()
    await assert.rejects(repo.get('k'), { code: 'ERR_UNAVAILABLE' })
    await assert.rejects(repo.update('k', { n: 2 }, 1), { code: 'ERR_UNAVAILABLE' })
    assert.ok(Date.now() - started < 1_500, `took ${Date.now() - started} ms`)
  } finally {
    await conn.close()
    await own.stop()
  }
})
