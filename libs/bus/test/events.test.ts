import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { startNats, type NatsServer } from '@m2msec/testkit'
import {
  connectNats,
  publishEvent,
  subjects,
  subscribeEvents,
  type EventEnvelope,
  type EventMeta,
  type NatsConnection,
} from '../src/index.ts'

let nats: NatsServer
let pub: NatsConnection
let sub: NatsConnection

before(async () => {
  nats = await startNats({ jetstream: false })
  pub = await connectNats({ servers: nats.url, name: 'kms-test-1' })
  sub = await connectNats({ servers: nats.url, name: 'listener' })
})
after(async () => {
  propagation.disable()
  await pub?.close()
  await sub?.close()
  await nats?.stop()
})

/** Collects what a subscription receives and lets a test wait for the n-th delivery. */
function collector<T>() {
  const got: Array<{ event: EventEnvelope<T>; meta: EventMeta }> = []
  const waiters: Array<{ n: number; resolve: () => void }> = []
  return {
    got,
    handler(event: EventEnvelope<T>, meta: EventMeta) {
      got.push({ event, meta })
      for (const w of waiters) if (got.length >= w.n) w.resolve()
    },
    until(n: number, ms = 2_000): Promise<void> {
      if (got.length >= n) return Promise.resolve()
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} events`)), ms)
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) })
      })
    },
  }
}

test('publishEvent/subscribeEvents carry the envelope; wildcards select tenants', async () => {
  const c = collector<{ keyId: string }>()
  const s = subscribeEvents(sub, subjects.eventAllTenants('kms', 'key.rotated'), c.handler)
  await sub.flush()
  const sent = await publishEvent(
    pub,
    subjects.event('kms', 'acme.corp', 'key.rotated'),
    'm2msec.kms.key.rotated.v1',
    { keyId: 'k1' },
    { flush: true },
  )
  await publishEvent(
    pub,
    subjects.event('kms', 'acme', 'key.disabled'),
    'm2msec.kms.key.disabled.v1',
    { keyId: 'k2' },
    { flush: true },
  )
  await publishEvent(
    pub,
    subjects.event('kms', 'other', 'key.rotated'),
    'm2msec.kms.key.rotated.v1',
    { keyId: 'k3' },
    { source: 'kms-9', flush: true },
  )
  await c.until(2)
  await s.stop()
  assert.equal(c.got.length, 2)
  const first = c.got[0]!
  assert.deepEqual(first.event, sent)
  assert.equal(first.event.source, 'kms-test-1') // the connection name by default
  assert.match(first.event.id, /^[0-9a-f-]{36}$/)
  assert.ok(!Number.isNaN(Date.parse(first.event.time)))
  assert.deepEqual(subjects.parseEvent(first.meta.subject), {
    area: 'kms',
    tenant: 'acme.corp',
    name: 'key.rotated',
  })
  assert.equal(c.got[1]?.event.source, 'kms-9')
  assert.deepEqual(c.got[1]?.event.data, { keyId: 'k3' })
  // Without a registered propagator nothing was injected and the context is the root context.
  assert.equal(first.meta.headers?.get('traceparent') ?? '', '')
  assert.equal(trace.getSpanContext(first.meta.context), undefined)
})

test('W3C trace context round-trips through NATS headers', async () => {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  try {
    const spanContext = {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.SAMPLED,
    }
    const ctx = trace.setSpanContext(ROOT_CONTEXT, spanContext)
    const c = collector<object>()
    const s = subscribeEvents(sub, subjects.eventsOf('authn'), c.handler)
    await sub.flush()
    await publishEvent(
      pub,
      subjects.event('authn', 't1', 'token.revoked'),
      'm2msec.authn.token.revoked.v1',
      { jti: 'x' },
      { context: ctx, flush: true },
    )
    await c.until(1)
    await s.stop()
    const meta = c.got[0]!.meta
    assert.equal(meta.headers?.get('traceparent'), '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
    const received = trace.getSpanContext(meta.context)
    assert.equal(received?.traceId, spanContext.traceId)
    assert.equal(received?.spanId, spanContext.spanId)
    assert.equal(received?.isRemote, true)
  } finally {
    propagation.disable()
  }
})

test('bad envelopes and handler errors go to onError and do not stop the subscription', async () => {
  const errors: unknown[] = []
  const c = collector<{ n: number }>()
  const subject = subjects.event('groups', 't1', 'member.added')
  const s = subscribeEvents<{ n: number }>(
    sub,
    subject,
    (event, meta) => {
      if (event.data.n === 1) throw new Error('handler failed')
      c.handler(event, meta)
    },
    { onError: (err) => errors.push(err) },
  )
  await sub.flush()
  pub.publish(subject, 'not json')
  pub.publish(subject, JSON.stringify({ hello: 'world' }))
  await publishEvent(pub, subject, 't', { n: 1 })
  await publishEvent(pub, subject, 't', { n: 2 }, { flush: true })
  await c.until(1)
  await s.stop()
  assert.equal(c.got[0]?.event.data.n, 2)
  assert.equal(errors.length, 3)
  assert.equal((errors[0] as { code?: string }).code, 'ERR_INVALID_ARGUMENT')
  assert.equal((errors[1] as { code?: string }).code, 'ERR_INVALID_ARGUMENT')
  assert.match(String(errors[2]), /handler failed/)
})

test('publishEvent refuses oversize events and reports a closed connection as ERR_UNAVAILABLE', async () => {
  const max = pub.info?.max_payload ?? 1024 * 1024
  await assert.rejects(publishEvent(pub, 'm2msec.evt.x.t.y', 't', { blob: 'x'.repeat(max) }), {
    code: 'ERR_PAYLOAD_TOO_LARGE',
  })
  await assert.rejects(publishEvent(pub, 'm2msec.evt.x.t.y', '', {}), { code: 'ERR_INVALID_ARGUMENT' })
  const closed = await connectNats({ servers: nats.url, name: 'closing' })
  await closed.close()
  await assert.rejects(publishEvent(closed, 'm2msec.evt.x.t.y', 't', {}), { code: 'ERR_UNAVAILABLE' })
  await assert.rejects(
    connectNats({ servers: 'nats://user:secret@127.0.0.1:1', name: 'nobody', timeoutMs: 500 }),
    (err: Error & { code?: string; details?: Record<string, unknown> }) => {
      assert.equal(err.code, 'ERR_UNAVAILABLE')
      assert.ok(!JSON.stringify(err.details).includes('secret'))
      return true
    },
  )
})
