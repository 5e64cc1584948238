import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { access } from 'node:fs/promises'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { startNats, type NatsServer } from '../src/index.ts'

const servers: NatsServer[] = []
after(async () => {
  for (const s of servers) await s.stop()
})

test('startNats: a client connects, JetStream is on, stop() frees the port and the store', async () => {
  const nats = await startNats()
  servers.push(nats)
  assert.match(nats.url, /^nats:\/\/127\.0\.0\.1:\d+$/)
  const nc = await connect({ servers: nats.url })
  try {
    const sub = nc.subscribe('ping', { max: 1, callback: (_err, msg) => void msg.respond('pong') })
    const reply = await nc.request('ping', 'x', { timeout: 2_000 })
    assert.equal(reply.string(), 'pong')
    sub.unsubscribe()
    const jsm = await jetstreamManager(nc)
    const info = await jsm.getAccountInfo()
    assert.equal(info.streams, 0)
  } finally {
    await nc.close()
  }
  await nats.stop()
  await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 500 }))
  await assert.rejects(access(nats.storeDir))
  await nats.stop() // idempotent
})

test('startNats: kill() then restart() keeps the port and the JetStream data', async () => {
  const nats = await startNats()
  servers.push(nats)
  let nc = await connect({ servers: nats.url })
  let jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: 'KEEP', subjects: ['keep.>'] })
  await nc.publish('keep.a', 'one')
  await nc.flush()
  await nc.close()

  await nats.kill()
  await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 500 }))
  await nats.restart()

  nc = await connect({ servers: nats.url })
  try {
    jsm = await jetstreamManager(nc)
    const msg = await jsm.streams.getMessage('KEEP', { last_by_subj: 'keep.a' })
    assert.equal(msg?.string(), 'one')
  } finally {
    await nc.close()
  }
})

test('startNats({ jetstream: false }) runs core NATS only', async () => {
  const nats = await startNats({ jetstream: false })
  servers.push(nats)
  const nc = await connect({ servers: nats.url })
  try {
    assert.equal(nc.info?.jetstream ?? false, false)
  } finally {
    await nc.close()
  }
})
