import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { startNats, type NatsServer } from '@m2msec/testkit'
import {
  AUDIT_GENESIS,
  AUDIT_STREAM,
  auditSubject,
  checkAuditMessages,
  connectNats,
  createAuditLog,
  verifyAuditChain,
  type AuditMessage,
  type AuditRecord,
  type NatsConnection,
} from '../src/index.ts'

let nats: NatsServer
let nc: NatsConnection

before(async () => {
  nats = await startNats()
  nc = await connectNats({ servers: nats.url, name: 'audit-test' })
})
after(async () => {
  await nc?.close()
  await nats?.stop()
})

function record(i: number, extra: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    tenant: 'acme',
    principal: 'dev-1',
    action: 'kms.Encrypt',
    resource: `key-${i}`,
    result: 'ok',
    ...extra,
  }
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

test('append + verify: records are chained per source and batched under load', async () => {
  const log = await createAuditLog(nc, { source: 'kms-a' })
  await log.append(record(0, { details: { bytes: 16, cached: false, alg: 'A256GCM' } }))
  // 200 concurrent appends: all resolve, and group commit packs them into few messages.
  await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(record(i + 1))))
  await log.append(record(999, { result: 'denied', code: 'ERR_PERMISSION_DENIED' }))
  await log.close()

  const result = await verifyAuditChain(nc, { source: 'kms-a' })
  assert.deepEqual(result, { ok: true, records: 202 })
  const jsm = await jetstreamManager(nc)
  const info = await jsm.streams.info(AUDIT_STREAM, { subjects_filter: auditSubject('kms-a') })
  const messages = info.state.subjects?.[auditSubject('kms-a')] ?? 0
  assert.ok(messages >= 3 && messages < 50, `messages: ${messages}`)

  const first = await jsm.streams.getMessage(AUDIT_STREAM, { seq: 1 })
  const line = first?.string().split('\n')[0] ?? ''
  const stored = JSON.parse(line)
  assert.equal(stored.seq, 1)
  assert.equal(stored.prev, AUDIT_GENESIS)
  assert.equal(stored.source, 'kms-a')
  assert.deepEqual(stored.details, { bytes: 16, cached: false, alg: 'A256GCM' })
  // The stored line is canonical JSON in a fixed field order (what the chain hashes).
  assert.equal(line, JSON.stringify(stored))
  assert.deepEqual(Object.keys(stored), [
    'v',
    'source',
    'seq',
    'prev',
    'time',
    'tenant',
    'principal',
    'action',
    'resource',
    'result',
    'details',
  ])
  await assert.rejects(log.append(record(1)), { code: 'ERR_AUDIT_UNAVAILABLE' }) // closed
})

test('a new writer for the same source continues the chain; two live writers do not fork it', async () => {
  const a = await createAuditLog(nc, { source: 'kms-b' })
  await a.append(record(1))
  const b = await createAuditLog(nc, { source: 'kms-b' })
  // Interleaved writes from two writers with one source: expected-last-subject-sequence makes
  // the loser re-read the head and re-chain instead of forking.
  for (let i = 0; i < 10; i++) await Promise.all([a.append(record(i)), b.append(record(100 + i))])
  await Promise.all([a.close(), b.close()])
  assert.deepEqual(await verifyAuditChain(nc, { source: 'kms-b' }), { ok: true, records: 21 })
})

test('the AUDIT stream refuses deletes, purges and rollups', async () => {
  await createAuditLog(nc, { source: 'kms-c' })
  const jsm = await jetstreamManager(nc)
  const info = await jsm.streams.info(AUDIT_STREAM)
  assert.equal(info.config.deny_delete, true)
  assert.equal(info.config.deny_purge, true)
  assert.notEqual(info.config.allow_rollup_hdrs, true)
  await assert.rejects(jsm.streams.deleteMessage(AUDIT_STREAM, 1))
  await assert.rejects(jsm.streams.purge(AUDIT_STREAM))
})

test('a forged record published straight onto a chain subject is found by the verifier', async () => {
  const log = await createAuditLog(nc, { source: 'kms-d' })
  for (let i = 0; i < 3; i++) await log.append(record(i))
  await log.close()
  const jsm = await jetstreamManager(nc)
  const last = await jsm.streams.getMessage(AUDIT_STREAM, { last_by_subj: auditSubject('kms-d') })
  const lastLine = last?.string().split('\n').at(-1) ?? ''
  const lastSeq = JSON.parse(lastLine).seq as number
  // A forger who knows the format but rewrites history: claims seq 2 again ("this never happened").
  const forged = { v: 1, source: 'kms-d', seq: 2, prev: sha(lastLine), ...record(7, { result: 'ok' }) }
  const ack = await jetstream(nc).publish(auditSubject('kms-d'), JSON.stringify(forged))

  const result = await verifyAuditChain(nc, { source: 'kms-d' })
  assert.equal(result.ok, false)
  assert.equal(result.records, 4)
  assert.deepEqual(result.firstBad, { seq: ack.seq, reason: `record seq 2 of kms-d follows seq ${lastSeq}` })
  // The whole-stream verification finds it too, while the other sources stay valid.
  const all = await verifyAuditChain(nc)
  assert.equal(all.firstBad?.seq, ack.seq)
  assert.deepEqual(await verifyAuditChain(nc, { source: 'kms-a' }), { ok: true, records: 202 })
  // A writer refuses to chain onto a head it cannot read as its own record.
  await jetstream(nc).publish(auditSubject('kms-d'), 'garbage')
  const again = await createAuditLog(nc, { source: 'kms-d' })
  await assert.rejects(again.append(record(8)), { code: 'ERR_AUDIT_UNAVAILABLE' })
})

test('checkAuditMessages detects edit, removal, reorder and a wrong source', () => {
  const lines: string[] = []
  let prev = AUDIT_GENESIS
  for (let seq = 1; seq <= 4; seq++) {
    const line = JSON.stringify({ v: 1, source: 's', seq, prev, ...record(seq) })
    lines.push(line)
    prev = sha(line)
  }
  const subject = auditSubject('s')
  const msgs = (ls: string[]): AuditMessage[] =>
    ls.map((l, i) => ({ seq: i + 1, subject, data: new TextEncoder().encode(l) }))
  assert.deepEqual(checkAuditMessages(msgs(lines)), { ok: true, records: 4 })
  // Batched form (several lines in one message) verifies the same.
  assert.deepEqual(checkAuditMessages(msgs([lines.slice(0, 3).join('\n'), lines[3] ?? ''])), {
    ok: true,
    records: 4,
  })

  const edited = [...lines]
  edited[1] = (edited[1] ?? '').replace('"result":"ok"', '"result":"denied"')
  assert.deepEqual(checkAuditMessages(msgs(edited)).firstBad, {
    seq: 3,
    reason: 'record seq 3 of s: prev does not match the previous record',
  })
  const removed = [lines[0], lines[2], lines[3]] as string[]
  assert.deepEqual(checkAuditMessages(msgs(removed)).firstBad, {
    seq: 2,
    reason: 'record seq 3 of s follows seq 1',
  })
  const reordered = [lines[0], lines[2], lines[1], lines[3]] as string[]
  assert.equal(checkAuditMessages(msgs(reordered)).firstBad?.seq, 2)
  const wrongSubject = msgs(lines).map((m) => ({ ...m, subject: auditSubject('other') }))
  assert.match(checkAuditMessages(wrongSubject).firstBad?.reason ?? '', /names source s on the subject of other/)
})

test('append validates records', async () => {
  const log = await createAuditLog(nc, { source: 'kms-e' })
  await assert.rejects(log.append({ ...record(1), result: 'maybe' as 'ok' }), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  await assert.rejects(log.append({ ...record(1), time: 'yesterday' }), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(log.append({ ...record(1), details: { x: {} as unknown as string } }), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  await log.close()
})

test('ERR_AUDIT_UNAVAILABLE when NATS is down: bounded, fast, and the writer recovers', async () => {
  const own = await startNats()
  const conn = await connectNats({ servers: own.url, name: 'audit-down' })
  try {
    const log = await createAuditLog(conn, { source: 'kms-f', ackTimeoutMs: 300, maxPending: 5 })
    await log.append(record(1))
    await own.kill()

    const started = Date.now()
    const pending = Array.from({ length: 5 }, (_, i) => log.append(record(10 + i)))
    // Beyond maxPending: rejected at once, without waiting for the bus.
    await assert.rejects(log.append(record(99)), { code: 'ERR_AUDIT_UNAVAILABLE' })
    assert.ok(Date.now() - started < 100)
    const settled = await Promise.allSettled(pending)
    const elapsed = Date.now() - started
    for (const s of settled) {
      assert.equal(s.status, 'rejected')
      assert.equal((s as PromiseRejectedResult).reason.code, 'ERR_AUDIT_UNAVAILABLE')
    }
    assert.ok(elapsed < 1_500, `took ${elapsed} ms`)

    await own.restart()
    // The client reconnects on its own; the writer re-reads its chain head and goes on.
    const deadline = Date.now() + 5_000
    for (;;) {
      try {
        await log.append(record(2))
        break
      } catch (err) {
        if (Date.now() > deadline) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    await log.close()
    const result = await verifyAuditChain(conn, { source: 'kms-f' })
    assert.equal(result.ok, true)
    assert.ok(result.records >= 2)
  } finally {
    await conn.close()
    await own.stop()
  }
})
