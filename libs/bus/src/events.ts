import { randomUUID } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import { context as otelContext, type Context } from '@opentelemetry/api'
import type { Msg, MsgHdrs, NatsConnection } from '@nats-io/transport-node'
import { connectionName } from './connect.ts'
import { toBusError } from './errors.ts'
import { extractTraceContext, injectTraceHeaders } from './trace.ts'

/**
 * The JSON envelope of every bus event (CloudEvents-like). `data` is the event payload;
 * `time` is ISO 8601 UTC; `source` names the publishing service instance.
 */
export interface EventEnvelope<T = unknown> {
  id: string
  type: string
  time: string
  source: string
  data: T
}

/** Options of {@link publishEvent}. */
export interface PublishEventOptions {
  /** Publisher name. Default: the `name` given to `connectNats`, else `'unknown'`. */
  source?: string
  /** Event id. Default: a random UUID. */
  id?: string
  /** Event time. Default: now. */
  time?: Date
  /** Trace context to propagate. Default: the active context. */
  context?: Context
  /** Wait until the server has received the event (one round trip). Default false. */
  flush?: boolean
}

/** What a handler gets besides the envelope. */
export interface EventMeta {
  subject: string
  /** The publisher's trace context (the root context when none was sent). */
  context: Context
  headers: MsgHdrs | undefined
}

/** A running subscription; `stop()` drains it and waits for the handler to finish. */
export interface EventSubscription {
  stop(): Promise<void>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Publishes an event as a JSON envelope `{ id, type, time, source, data }` on core NATS (every
 * subscriber sees it; it is not stored). The trace context goes along in the message headers
 * (`traceparent`, `tracestate`) through the OpenTelemetry propagation API, a no-op when no SDK
 * is registered. Throws ERR_PAYLOAD_TOO_LARGE above the server's max payload and
 * ERR_UNAVAILABLE when the connection is closed.
 *
 * @example
 * ```ts
 * await publishEvent(nc, subjects.event('kms', tenant, 'key.rotated'), 'm2msec.kms.key.rotated.v1', { keyId, version })
 * ```
 */
export async function publishEvent<T extends object>(
  nc: NatsConnection,
  subject: string,
  type: string,
  payload: T,
  opts: PublishEventOptions = {},
): Promise<EventEnvelope<T>> {
  if (type.length === 0) throw new M2msecError('ERR_INVALID_ARGUMENT', 'event type must not be empty')
  const envelope: EventEnvelope<T> = {
    id: opts.id ?? randomUUID(),
    type,
    time: (opts.time ?? new Date()).toISOString(),
    source: opts.source ?? connectionName(nc) ?? 'unknown',
    data: payload,
  }
  const bytes = encoder.encode(JSON.stringify(envelope))
  const max = nc.info?.max_payload
  if (max !== undefined && bytes.length > max) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', 'event is larger than the NATS max payload', {
      bytes: bytes.length,
      max,
    })
  }
  try {
    nc.publish(subject, bytes, { headers: injectTraceHeaders(opts.context ?? otelContext.active()) })
    if (opts.flush === true) await nc.flush()
  } catch (err) {
    throw toBusError(err, 'publish event', { subject })
  }
  return envelope
}

/**
 * Subscribes to events on `subject` (wildcards allowed, see `subjects`). Messages are handled
 * one at a time, in arrival order; each handler call runs inside the publisher's trace context
 * (active when a context manager is registered, and always passed as `meta.context`).
 * Messages that are not valid envelopes, and errors thrown by the handler, go to `onError`
 * (default: a process warning) and do not stop the subscription. With `queue`, each event
 * goes to one member of the queue group only.
 *
 * @example
 * ```ts
 * const sub = subscribeEvents<{ keyId: string }>(nc, subjects.eventAllTenants('kms', 'key.rotated'), async (e) => {
 *   cache.invalidate(e.data.keyId)
 * })
 * onShutdown(() => sub.stop())
 * ```
 */
export function subscribeEvents<T = unknown>(
  nc: NatsConnection,
  subject: string,
  handler: (event: EventEnvelope<T>, meta: EventMeta) => void | Promise<void>,
  opts: { queue?: string; onError?: (err: unknown, subject: string) => void } = {},
): EventSubscription {
  const onError =
    opts.onError ?? ((err: unknown, subj: string) => process.emitWarning(`event handler on ${subj}: ${String(err)}`))
  let sub
  try {
    sub = nc.subscribe(subject, opts.queue === undefined ? {} : { queue: opts.queue })
  } catch (err) {
    throw toBusError(err, 'subscribe', { subject })
  }
  const loop = (async () => {
    for await (const msg of sub) {
      try {
        const event = parseEnvelope<T>(msg)
        const ctx = extractTraceContext(msg.headers)
        await otelContext.with(ctx, () => handler(event, { subject: msg.subject, context: ctx, headers: msg.headers }))
      } catch (err) {
        onError(err, msg.subject)
      }
    }
  })()
  return {
    async stop() {
      if (!sub.isClosed() && !nc.isClosed()) await sub.drain()
      await loop
    },
  }
}

function parseEnvelope<T>(msg: Msg): EventEnvelope<T> {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(msg.data))
  } catch (err) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'event is not JSON', { subject: msg.subject }, { cause: err })
  }
  const e = value as Partial<EventEnvelope<T>> | null
  if (
    typeof e !== 'object' ||
    e === null ||
    typeof e.id !== 'string' ||
    typeof e.type !== 'string' ||
    typeof e.time !== 'string' ||
    typeof e.source !== 'string' ||
    !('data' in e)
  ) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'event is not an m2msec envelope', { subject: msg.subject })
  }
  return e as EventEnvelope<T>
}
