/**
 * Minimal AWS KMS client: the JSON 1.1 protocol (`POST /`, `X-Amz-Target: TrentService.<Op>`,
 * `Content-Type: application/x-amz-json-1.1`) signed with SigV4, over global fetch.
 *
 * Every failure is an M2msecError. `details.awsType` carries the AWS error name (`__type`
 * without its namespace) so callers can treat e.g. KMSInvalidSignatureException as "false".
 */
import { M2msecError } from '@m2msec/errors'
import type { ErrorCode } from '@m2msec/errors'
import type { CredentialSource } from './credentials.ts'
import { signSigV4 } from './sigv4.ts'

/** Connection settings. */
export interface KmsClientOptions {
  readonly endpoint: URL
  readonly region: string
  readonly credentials: CredentialSource
  readonly timeoutMs: number
}

/** One JSON request/response per call; `close` aborts requests in flight. */
export interface KmsClient {
  call(operation: string, body: Readonly<Record<string, unknown>>): Promise<Record<string, unknown>>
  close(): void
}

// The caller's identity or signature was refused: retrying with the same credentials fails.
const AUTH_ERRORS = new Set([
  'AccessDeniedException',
  'ExpiredTokenException',
  'IncompleteSignature',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'MissingAuthenticationToken',
  'UnrecognizedClientException',
])
// AWS is busy or broken: retry later.
const TRANSIENT_ERRORS = new Set([
  'DependencyTimeoutException',
  'KMSInternalException',
  'KeyUnavailableException',
  'LimitExceededException',
  'ThrottlingException',
])
const CODE_BY_TYPE: Readonly<Record<string, ErrorCode>> = {
  InvalidCiphertextException: 'ERR_CIPHERTEXT_INVALID',
  IncorrectKeyException: 'ERR_CIPHERTEXT_INVALID',
  InvalidKeyUsageException: 'ERR_KEY_TYPE_MISMATCH',
  UnsupportedOperationException: 'ERR_SE_NOT_SUPPORTED',
}

/**
 * @example
 * ```ts
 * const kms = createKmsClient({ endpoint: new URL('http://127.0.0.1:4566'), region: 'us-east-1', credentials, timeoutMs: 5000 })
 * const out = await kms.call('GenerateRandom', { NumberOfBytes: 32 })
 * ```
 */
export function createKmsClient(opts: KmsClientOptions): KmsClient {
  const closer = new AbortController()

  async function send(operation: string, payload: string): Promise<{ status: number; text: string }> {
    const credentials = await opts.credentials.get()
    const url = new URL('/', opts.endpoint)
    const headers = signSigV4(
      {
        method: 'POST',
        url,
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': `TrentService.${operation}`,
        },
        body: payload,
      },
      { region: opts.region, service: 'kms', credentials, date: new Date() },
    )
    // fetch sets Host itself (from the URL, as signed); passing it is not allowed.
    delete headers['host']
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs), closer.signal])
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body: payload,
        signal,
      })
      return { status: res.status, text: await res.text() }
    } catch (err) {
      const why = closer.signal.aborted
        ? 'the secure environment was closed'
        : (err as { name?: string }).name === 'TimeoutError'
          ? `no answer within ${opts.timeoutMs} ms`
          : 'connection failed'
      throw new M2msecError('ERR_SE_UNAVAILABLE', `AWS KMS ${operation}: ${why}`, { operation }, { cause: err })
    }
  }

  return {
    async call(operation, body) {
      const payload = JSON.stringify(body)
      let res = await send(operation, payload)
      let failure = parseFailure(res)
      if (failure !== undefined && AUTH_ERRORS.has(failure.type)) {
        // Temporary credentials may have been rotated in the file since they were read.
        const before = await opts.credentials.get()
        const after = await opts.credentials.refresh()
        if (after.accessKeyId !== before.accessKeyId || after.sessionToken !== before.sessionToken) {
          res = await send(operation, payload)
          failure = parseFailure(res)
        }
      }
      if (failure === undefined) {
        if (res.text === '') return {}
        try {
          return JSON.parse(res.text) as Record<string, unknown>
        } catch (err) {
          throw new M2msecError(
            'ERR_SE_UNAVAILABLE',
            `AWS KMS ${operation}: response is not JSON`,
            { operation },
            {
              cause: err,
            },
          )
        }
      }
      throw toError(operation, res.status, failure)
    },
    close() {
      closer.abort()
    },
  }
}

interface Failure {
  readonly type: string
  readonly message: string
}

function parseFailure(res: { status: number; text: string }): Failure | undefined {
  if (res.status >= 200 && res.status < 300) return undefined
  let body: { __type?: unknown; message?: unknown; Message?: unknown } = {}
  try {
    body = JSON.parse(res.text) as typeof body
  } catch {
    // A proxy or load balancer answered with HTML or nothing: keep the status only.
  }
  // `__type` is either "NotFoundException" or "com.amazonaws.kms#NotFoundException".
  const rawType = typeof body.__type === 'string' ? body.__type : ''
  const type = rawType.slice(rawType.lastIndexOf('#') + 1) || `HTTP${res.status}`
  const message = typeof body.message === 'string' ? body.message : typeof body.Message === 'string' ? body.Message : ''
  return { type, message: message.slice(0, 300) }
}

function toError(operation: string, status: number, failure: Failure): M2msecError {
  const details = { operation, awsType: failure.type, httpStatus: status }
  const text = failure.message === '' ? failure.type : `${failure.type}: ${failure.message}`
  if (AUTH_ERRORS.has(failure.type) || status === 401 || status === 403) {
    return new M2msecError(
      'ERR_SE_UNAVAILABLE',
      `AWS KMS ${operation}: credentials or permissions were refused (${failure.type}); check the configured credentials and key policy`,
      details,
    )
  }
  if (TRANSIENT_ERRORS.has(failure.type) || status >= 500 || status === 429) {
    return new M2msecError('ERR_SE_UNAVAILABLE', `AWS KMS ${operation} is unavailable: ${text}`, details)
  }
  return new M2msecError(CODE_BY_TYPE[failure.type] ?? 'ERR_INVALID_ARGUMENT', `AWS KMS ${operation}: ${text}`, details)
}
