/**
 * Asks OCSP responders for the revocation check (domain/revocation.ts): an HTTP POST of the
 * DER request (`application/ocsp-request`, RFC 6960 Appendix A.1) with a deadline and a size
 * bound on the answer. Redirects are not followed.
 */
import { M2msecError } from '@m2msec/errors'
import { readBoundedBody } from './bounded-body.ts'

/** Options of {@link createOcspPoster}. */
export interface OcspPostOptions {
  readonly timeoutMs: number
  readonly maxBytes: number
}

/**
 * @example
 * ```ts
 * const postOcsp = createOcspPoster({ timeoutMs: 3000, maxBytes: 64 * 1024 })
 * const der = await postOcsp('http://mef:8081/pki/acme/ocsp', requestDer)
 * ```
 */
export function createOcspPoster(opts: OcspPostOptions): (url: string, request: Uint8Array) => Promise<Uint8Array> {
  return async (url, request) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
      body: request,
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs),
    })
    if (res.status !== 200) {
      await res.body?.cancel()
      throw new M2msecError('ERR_UNAVAILABLE', `the OCSP responder answered ${res.status}`)
    }
    return readBoundedBody(res, opts.maxBytes, 'the OCSP response', 'the OCSP response limit')
  }
}
