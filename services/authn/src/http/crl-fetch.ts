/**
 * Downloads CRLs for the revocation check (domain/revocation.ts): a GET with a deadline and a
 * size bound, DER or PEM (`-----BEGIN X509 CRL-----`) bodies. Redirects are not followed.
 */
import { M2msecError } from '@m2msec/errors'
import { readBoundedBody } from './bounded-body.ts'

/** Options of {@link createCrlFetcher}. */
export interface CrlFetchOptions {
  readonly timeoutMs: number
  readonly maxBytes: number
}

/**
 * @example
 * ```ts
 * const fetchCrl = createCrlFetcher({ timeoutMs: 3000, maxBytes: 1 << 20 })
 * const der = await fetchCrl('http://mef:8081/pki/acme/crl')
 * ```
 */
export function createCrlFetcher(opts: CrlFetchOptions): (url: string) => Promise<Uint8Array> {
  return async (url) => {
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(opts.timeoutMs) })
    if (res.status !== 200) {
      await res.body?.cancel()
      throw new M2msecError('ERR_UNAVAILABLE', `the CRL endpoint answered ${res.status}`)
    }
    const body = await readBoundedBody(res, opts.maxBytes, 'the CRL', 'certificates.crlMaxBytes')
    const text = Buffer.from(body.subarray(0, 32)).toString('latin1')
    if (!text.startsWith('-----BEGIN X509 CRL-----')) return body
    const b64 = Buffer.from(body)
      .toString('latin1')
      .replace(/-----(BEGIN|END) X509 CRL-----/g, '')
      .replace(/\s+/g, '')
    return new Uint8Array(Buffer.from(b64, 'base64'))
  }
}
