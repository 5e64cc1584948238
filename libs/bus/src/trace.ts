import {
  context as otelContext,
  propagation,
  ROOT_CONTEXT,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api'
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node'

const setter: TextMapSetter<MsgHdrs> = {
  set: (carrier, key, value) => carrier.set(key, value),
}

const getter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier === undefined ? [] : carrier.keys()),
  get: (carrier, key) => {
    const value = carrier?.get(key)
    return value === undefined || value === '' ? undefined : value
  },
}

/**
 * Writes the trace context of `ctx` (default: the active context) into NATS headers with the
 * globally registered propagator (W3C `traceparent`/`tracestate` when the OpenTelemetry SDK is
 * set up). Without an SDK the global propagator is a no-op and nothing is added.
 *
 * @example
 * ```ts
 * const h = injectTraceHeaders()
 * nc.publish(subject, data, { headers: h })
 * ```
 */
export function injectTraceHeaders(ctx: Context = otelContext.active(), into: MsgHdrs = natsHeaders()): MsgHdrs {
  propagation.inject(ctx, into, setter)
  return into
}

/**
 * Reads the trace context from NATS headers into a new context derived from `base` (default:
 * the root context). Returns `base` unchanged when the headers carry none.
 */
export function extractTraceContext(headers: MsgHdrs | undefined, base: Context = ROOT_CONTEXT): Context {
  return propagation.extract(base, headers, getter)
}
