import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { jetstreamManager } from '@nats-io/jetstream'
import { startNats, type NatsServer } from '@m2msec/testkit'
import {
  connectNats,
  createRevocationSet,
  DEFAULT_REVOCATION_TTL_MS,
  kvKey,
  KvRepository,
  REVOCATION_BUCKET,
  type NatsConnection,
  type RevocationSet,
  type RevokedToken,
} from '../src/index.ts'

let nats: NatsServer
let nc1: NatsConnection
let nc2: NatsConnection
const sets: RevocationSet[] = []

before(async () => {
  nats = await startNats()
  nc1 = await connectNats({ servers: nats.url, name: 'revocation-1' })
  nc2 = await connectNats({ servers: nats.url, name: 'revocation-2' })
})
after(async () => {
  for (const s of sets) await s.close()
  await nc1?.close()
  await nc2?.close()
  await nats?.stop()
})

async function open(nc: NatsConnection, now?: () => Date): Promise<RevocationSet> {
  const set = await createRevocationSet(nc, now === undefined ? {} : { now })
  sets.push(set)
  return set
}

function record(tenant: string, jti: string, expInSec = 300): RevokedToken {
  return {
    tenant,
    jti,
    exp: Math.floor(Date.now() / 1000) + expInSec,
    revokedAt: new Date().toISOString(),
    revokedBy: 'admin-1',
  }
}

async function until(cond: () => boolean, timeoutMs = 1000): Promise<number> {
  const started = performance.now()
  while (!cond()) {
    assert.ok(performance.now() - started < timeoutMs, `not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 2))
  }
  return performance.now() - started
}

test('a verifier that starts first creates the bucket with the long default TTL', async () => {
  await open(nc1)
  const info = await (await jetstreamManager(nc1)).streams.info(`KV_${REVOCATION_BUCKET}`)
  assert.equal(info.config.max_age, DEFAULT_REVOCATION_TTL_MS * 1_000_000)
})

test('a revocation by one holder reaches another within a second; per tenant', async (t) => {
  const a = await open(nc1)
  const b = await open(nc2)
  assert.equal(b.isRevoked('acme', 'jti-1'), false)
  await a.revoke(record('acme', 'jti-1'))
  assert.equal(a.isRevoked('acme', 'jti-1'), true, 'the revoking holder knows at once')
  const ms = await until(() => b.isRevoked('acme', 'jti-1'))
  t.diagnostic(`revocation seen by the other holder after ${ms.toFixed(1)} ms`)
  assert.equal(b.isRevoked('globex', 'jti-1'), false, 'another tenant’s token with the same jti')
  assert.equal(b.isRevoked('acme', 'jti-2'), false)
})

test('a holder that starts later knows earlier revocations as soon as it resolves', async () => {
  const a = await open(nc1)
  await a.revoke(record('acme', 'early'))
  const late = await open(nc2)
  assert.equal(late.isRevoked('acme', 'early'), true)
})

test('tenant ids and jtis with key-unsafe characters are kept apart', async () => {
  const a = await open(nc1)
  const b = await open(nc2)
  await a.revoke(record('a.b', 'c'))
  await until(() => b.isRevoked('a.b', 'c'))
  assert.equal(b.isRevoked('a', 'b.c'), false)
  await a.revoke(record('t', '*/> x'))
  await until(() => b.isRevoked('t', '*/> x'))
})

test('revoke is idempotent; concurrent revocations of one token by two holders both succeed', async () => {
  const a = await open(nc1)
  const b = await open(nc2)
  const token = record('acme', 'twice')
  await Promise.all([a.revoke(token), b.revoke(token), a.revoke(token)])
  const repo = await KvRepository.open<RevokedToken>(nc1, REVOCATION_BUCKET)
  assert.deepEqual((await repo.get(kvKey('acme', 'twice')))?.value, token)
  // A later expiry extends the record; an earlier one leaves it.
  await a.revoke({ ...token, exp: token.exp + 100 })
  await b.revoke({ ...token, exp: token.exp - 100 })
  assert.equal((await repo.get(kvKey('acme', 'twice')))?.value.exp, token.exp + 100)
})

test('expired records do not count and are not loaded', async () => {
  let clock = Date.now()
  const a = await open(nc1, () => new Date(clock))
  await a.revoke(record('acme', 'short', 10))
  assert.equal(a.isRevoked('acme', 'short'), true)
  clock += 11_000
  assert.equal(a.isRevoked('acme', 'short'), false)
  const repo = await KvRepository.open<RevokedToken>(nc1, REVOCATION_BUCKET)
  await repo.create(kvKey('acme', 'stale'), record('acme', 'stale', -1))
  const late = await open(nc2)
  assert.equal(late.isRevoked('acme', 'stale'), false)
})

test('a record without a numeric exp is ignored, by a running holder and at start', async () => {
  const a = await open(nc1)
  const raw = await KvRepository.open<Record<string, unknown>>(nc1, REVOCATION_BUCKET)
  await raw.create(kvKey('acme', 'no-exp'), { tenant: 'acme', jti: 'no-exp', exp: 'tomorrow' })
  await a.revoke(record('acme', 'after-bad'))
  const b = await open(nc2)
  await until(() => a.isRevoked('acme', 'after-bad') && b.isRevoked('acme', 'after-bad'))
  assert.equal(a.isRevoked('acme', 'no-exp'), false)
  assert.equal(b.isRevoked('acme', 'no-exp'), false)
})
