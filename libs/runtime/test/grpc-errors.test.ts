import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Metadata, status } from '@grpc/grpc-js'
import { ERROR_CODES, M2msecError, type ErrorCode } from '@m2msec/errors'
import { ErrorInfo, RetryInfo, Status } from '@m2msec/proto/google/rpc'
import {
  ERROR_INFO_TYPE_URL,
  RETRY_INFO_TYPE_URL,
  decodeRetryInfo,
  decodeRpcStatus,
  encodeRetryInfo,
  encodeRpcStatus,
  fromGrpcError,
  fromRpcStatus,
  grpcStatusOf,
  toGrpcError,
  toRpcStatus,
} from '../src/index.ts'

test('every error code maps to the gRPC status its table names, and round-trips', () => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const err = toGrpcError(new M2msecError(code, 'msg', { a: 1 }), 'rid')
    assert.equal(err.code, status[ERROR_CODES[code]], code)
    assert.equal(err.code, grpcStatusOf(code))
    assert.equal(fromGrpcError(err).code, code)
  }
})

test('the hand-encoded Status/ErrorInfo decode with the generated google.rpc types, and back', () => {
  const rpc = toRpcStatus(
    new M2msecError('ERR_KEY_DISABLED', 'key is disabled', {
      keyId: 'k-9',
      version: 2,
      exportable: false,
    }),
  )
  const decoded = Status.decode(encodeRpcStatus(rpc))
  assert.equal(decoded.code, status.FAILED_PRECONDITION)
  assert.equal(decoded.message, 'key is disabled')
  assert.equal(decoded.details.length, 1)
  assert.equal(decoded.details[0]?.typeUrl, ERROR_INFO_TYPE_URL)
  const info = ErrorInfo.decode(decoded.details[0]!.value)
  assert.deepEqual(
    { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } },
    {
      reason: 'ERR_KEY_DISABLED',
      domain: 'm2msec.io',
      metadata: { keyId: 'k-9', version: '2', exportable: 'false' },
    },
  )
  // And the other way: generated encoder -> our decoder.
  const generated = Status.encode(
    Status.fromPartial({
      code: status.NOT_FOUND,
      message: 'nope',
      details: [
        {
          typeUrl: ERROR_INFO_TYPE_URL,
          value: Buffer.from(
            ErrorInfo.encode(
              ErrorInfo.fromPartial({
                reason: 'ERR_NOT_FOUND',
                domain: 'm2msec.io',
                metadata: { id: 'x' },
              }),
            ).finish(),
          ),
        },
      ],
    }),
  ).finish()
  const back = fromRpcStatus(decodeRpcStatus(generated))
  assert.equal(back?.code, 'ERR_NOT_FOUND')
  assert.deepEqual(back?.details, { id: 'x' })
  // The per-item status is assignable to the generated type (batch RPCs return it as is).
  const asGenerated: Status = toRpcStatus(new M2msecError('ERR_NOT_FOUND', 'x'))
  assert.equal(asGenerated.code, status.NOT_FOUND)
})

test('non-M2msec errors and INTERNAL codes expose nothing but the request id', () => {
  for (const thrown of [
    new Error('password=hunter2'),
    'a string',
    new M2msecError('ERR_INTERNAL', 'hunter2 invariant', { secretish: 'hunter2' }),
  ]) {
    const err = toGrpcError(thrown, 'rid-7')
    assert.equal(err.code, status.INTERNAL)
    assert.equal(err.details, 'internal error (request id rid-7)')
    const all =
      JSON.stringify(err.metadata.toJSON()) +
      Buffer.from(err.metadata.get('grpc-status-details-bin')[0] as Buffer).toString('latin1')
    assert.ok(!all.includes('hunter2'))
  }
})

test('fromGrpcError falls back to metadata, then to the status code', () => {
  const md = new Metadata()
  md.set('m2msec-error-code', 'ERR_REPLAY')
  assert.equal(fromGrpcError({ code: status.UNAUTHENTICATED, details: 'replayed', metadata: md }).code, 'ERR_REPLAY')
  const plain = fromGrpcError({
    code: status.UNAVAILABLE,
    details: 'No connection established',
    metadata: new Metadata(),
  })
  assert.equal(plain.code, 'ERR_UNAVAILABLE')
  assert.equal(plain.details['grpcStatus'], 'UNAVAILABLE')
  assert.equal(fromGrpcError({ code: status.DATA_LOSS, details: 'x' }).code, 'ERR_INTERNAL')
  const garbage = new Metadata()
  garbage.set('grpc-status-details-bin', Buffer.from([0xff, 0xff, 0xff]))
  assert.equal(fromGrpcError({ code: status.NOT_FOUND, details: 'x', metadata: garbage }).code, 'ERR_NOT_FOUND')
})

test('RetryInfo: the hand-encoded Duration decodes with the generated types (seconds, nanos), and back', () => {
  for (const [ms, seconds, nanos] of [
    [1500, 1, 500_000_000],
    [4000, 4, 0],
    [1, 0, 1_000_000],
    [300_000, 300, 0],
    [0.2, 0, 1_000_000], // rounded up to a whole millisecond, never to "retry now"
    [-5, 0, 0],
  ] as const) {
    const bytes = encodeRetryInfo({ retryDelayMs: ms })
    const generated = RetryInfo.decode(bytes)
    assert.equal(generated.retryDelay?.seconds, BigInt(seconds), `seconds of ${ms}`)
    assert.equal(generated.retryDelay?.nanos, nanos, `nanos of ${ms}`)
    assert.equal(decodeRetryInfo(bytes).retryDelayMs, seconds * 1000 + nanos / 1e6)
  }
  const fromGenerated = RetryInfo.encode(
    RetryInfo.fromPartial({ retryDelay: { seconds: 2n, nanos: 250_000_000 } }),
  ).finish()
  assert.equal(decodeRetryInfo(fromGenerated).retryDelayMs, 2250)
})

test('an error with retryAfterMs carries RetryInfo next to ErrorInfo and the push-back trailer', () => {
  const err = toGrpcError(
    new M2msecError('ERR_RATE_LIMITED', 'too many attempts', { scope: 'entity', retryAfterMs: 2500 }),
    'rid',
  )
  assert.equal(err.code, status.RESOURCE_EXHAUSTED)
  assert.deepEqual(err.metadata.get('grpc-retry-pushback-ms'), ['2500'])
  const decoded = Status.decode(err.metadata.get('grpc-status-details-bin')[0] as Buffer)
  assert.deepEqual(
    decoded.details.map((d) => d.typeUrl),
    [ERROR_INFO_TYPE_URL, RETRY_INFO_TYPE_URL],
  )
  const retry = RetryInfo.decode(decoded.details[1]!.value)
  assert.deepEqual(retry.retryDelay, { seconds: 2n, nanos: 500_000_000 })
  // ErrorInfo keeps the details, so fromGrpcError still round-trips them.
  assert.equal(fromGrpcError(err).details['retryAfterMs'], '2500')
  // No retry detail (or a useless one), no RetryInfo and no push-back.
  for (const details of [{}, { retryAfterMs: 0 }, { retryAfterMs: 'soon' }]) {
    const plain = toGrpcError(new M2msecError('ERR_RATE_LIMITED', 'x', details), 'rid')
    assert.equal(Status.decode(plain.metadata.get('grpc-status-details-bin')[0] as Buffer).details.length, 1)
    assert.deepEqual(plain.metadata.get('grpc-retry-pushback-ms'), [])
  }
  // An INTERNAL answer exposes nothing, not even a retry delay.
  const internal = toRpcStatus(new M2msecError('ERR_INTERNAL', 'x', { retryAfterMs: 10 }))
  assert.equal(internal.details.length, 1)
})
