/**
 * Reading an HTTP response body with a size bound (revocation downloads: a hostile or broken
 * endpoint must not make authn buffer unbounded data).
 */
import { M2msecError } from '@m2msec/errors'

/**
 * The body of `res`, refused with ERR_UNAVAILABLE (`<what> is larger than <setting>`) as soon
 * as it exceeds `maxBytes`, whether announced by content-length or not.
 *
 * @example
 * ```ts
 * const der = await readBoundedBody(res, 1 << 20, 'the CRL', 'certificates.crlMaxBytes')
 * ```
 */
export async function readBoundedBody(
  res: Response,
  maxBytes: number,
  what: string,
  setting: string,
): Promise<Uint8Array> {
  const tooLarge = () => new M2msecError('ERR_UNAVAILABLE', `${what} is larger than ${setting}`)
  const declared = Number(res.headers.get('content-length') ?? '0')
  if (declared > maxBytes) {
    await res.body?.cancel()
    throw tooLarge()
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body ?? []) {
    size += chunk.length
    if (size > maxBytes) throw tooLarge()
    chunks.push(chunk)
  }
  return new Uint8Array(Buffer.concat(chunks))
}
