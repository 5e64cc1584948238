/** Shared bits of the PKI HTTP endpoints: bounded bodies, error mapping, tenant labels. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ERROR_CODES, M2msecError, isM2msecError } from '@m2msec/errors'

/** Tenant ids as the platform accepts them (never `_platform`). */
export const TENANT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

const STATUS_OF: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
}

/** HTTP status of an error: its gRPC status mapped, ERR_PAYLOAD_TOO_LARGE as 413. */
export function httpStatusOf(err: unknown): number {
  if (!isM2msecError(err)) return 500
  if (err.code === 'ERR_PAYLOAD_TOO_LARGE') return 413
  return STATUS_OF[ERROR_CODES[err.code]] ?? 500
}

/**
 * Sends an error as `text/plain` "<code>: <message>" with the code also in the
 * `m2msec-error-code` header. Internal errors get a generic message.
 */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string | string[]> = {}): number {
  const status = httpStatusOf(err)
  const code = isM2msecError(err) ? err.code : 'ERR_INTERNAL'
  const message = status >= 500 || !isM2msecError(err) ? 'internal error' : err.message
  const body = `${code}: ${message}\n`
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'm2msec-error-code': code,
  })
  res.end(body)
  return status
}

/**
 * Reads a request body of at most `max` bytes; ERR_PAYLOAD_TOO_LARGE beyond. Stream events,
 * not an async iterator: this runs for every enrolment and the iterator costs more than the
 * copy.
 */
export function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const tooLarge = () => new M2msecError('ERR_PAYLOAD_TOO_LARGE', 'the request body is larger than allowed', { max })
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (Number.isFinite(declared) && declared > max) {
    req.resume()
    return Promise.reject(tooLarge())
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > max) {
        req.off('data', onData)
        req.resume()
        reject(tooLarge())
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size)))
    req.once('error', reject)
    // A client that goes away mid-body: the request ends without 'end'.
    req.once('close', () => {
      if (!req.complete) reject(new M2msecError('ERR_INVALID_ARGUMENT', 'the request body was cut short'))
    })
  })
}

/** The media type of a Content-Type header, lowercase, without parameters. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
}

/** Percent-decodes a path segment; undefined when malformed. */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}
