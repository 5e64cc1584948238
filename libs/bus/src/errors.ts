import { isM2msecError, M2msecError, type ErrorCode, type ErrorDetails } from '@m2msec/errors'
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream'

/** Error names (nats.js sets `name` on each class) that mean "the bus is not reachable now". */
const UNAVAILABLE_NAMES = new Set([
  'TimeoutError',
  'NoResponders',
  'RequestError',
  'ClosedConnectionError',
  'DrainingConnectionError',
  'ConnectionError',
  'JetStreamNotEnabled',
  'StreamNotFoundError',
])

/** JetStream API error codes that mean "retry later" (leader election, no quorum, not found). */
const UNAVAILABLE_API_STATUS = new Set([503, 408])

/** True when a JetStream publish failed its expected-last-(subject-)sequence check. */
export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  )
}

/**
 * Turns whatever nats.js threw into an `M2msecError`:
 * - a failed revision check -> `conflictCode` (ERR_REVISION_CONFLICT by default);
 * - timeouts, no responders, a closed/draining/lost connection, JetStream off or a missing
 *   stream -> ERR_UNAVAILABLE (or `unavailableCode`);
 * - anything else -> ERR_INTERNAL, with the original as `cause` (for logs only).
 * An `M2msecError` passes through unchanged.
 *
 * @example
 * ```ts
 * try { await kv.update(k, v, rev) } catch (err) { throw toBusError(err, 'kv update', { bucket }) }
 * ```
 */
export function toBusError(
  err: unknown,
  operation: string,
  details: ErrorDetails = {},
  codes: { conflict?: ErrorCode; unavailable?: ErrorCode } = {},
): M2msecError {
  if (isM2msecError(err)) return err
  if (isWrongLastSequence(err)) {
    return new M2msecError(codes.conflict ?? 'ERR_REVISION_CONFLICT', `${operation}: revision conflict`, details, {
      cause: err,
    })
  }
  if (isUnavailable(err)) {
    return new M2msecError(codes.unavailable ?? 'ERR_UNAVAILABLE', `${operation}: NATS unavailable`, details, {
      cause: err,
    })
  }
  return new M2msecError('ERR_INTERNAL', `${operation} failed`, details, { cause: err })
}

function isUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (UNAVAILABLE_NAMES.has(e.name)) return true
    if (e instanceof JetStreamApiError && UNAVAILABLE_API_STATUS.has(e.status)) return true
  }
  return false
}
