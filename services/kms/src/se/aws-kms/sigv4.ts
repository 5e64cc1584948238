/**
 * AWS Signature Version 4 (header form) with node:crypto.
 *
 * Written from the published algorithm ("Create a signed AWS API request", AWS IAM user
 * guide) and checked against the AWS SigV4 test suite (test/se/aws-kms-sigv4.test.ts). The
 * path is encoded once per segment, as for every service except S3; KMS only uses "/".
 */
import { createHash, createHmac } from 'node:crypto'

/** Long-term or temporary AWS credentials. The secret never appears in logs or errors. */
export interface AwsCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
}

/** One HTTP request to sign. `headers` are signed as given (names are case-insensitive). */
export interface SigV4Request {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body: string | Uint8Array
}

/** Where and when the request is signed. */
export interface SigV4Scope {
  readonly region: string
  readonly service: string
  readonly credentials: AwsCredentials
  readonly date: Date
}

/**
 * Returns the headers to send: the request's own headers (lower-cased) plus `host`,
 * `x-amz-date`, `x-amz-security-token` (with temporary credentials) and `authorization`.
 *
 * @example
 * ```ts
 * const headers = signSigV4(
 *   { method: 'POST', url: new URL('https://kms.eu-west-1.amazonaws.com/'), headers: { 'x-amz-target': 'TrentService.Encrypt' }, body },
 *   { region: 'eu-west-1', service: 'kms', credentials, date: new Date() },
 * )
 * ```
 */
export function signSigV4(req: SigV4Request, scope: SigV4Scope): Record<string, string> {
  const amzDate = toAmzDate(scope.date)
  const day = amzDate.slice(0, 8)
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) headers[name.toLowerCase()] = value
  headers['host'] ??= req.url.host
  headers['x-amz-date'] ??= amzDate
  if (scope.credentials.sessionToken !== undefined) headers['x-amz-security-token'] ??= scope.credentials.sessionToken

  const names = Object.keys(headers).sort()
  const signedHeaders = names.join(';')
  const canonical = [
    req.method.toUpperCase(),
    canonicalPath(req.url),
    canonicalQuery(req.url),
    names.map((n) => `${n}:${(headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join(''),
    signedHeaders,
    sha256Hex(req.body),
  ].join('\n')
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, credentialScope, sha256Hex(canonical)].join('\n')

  let key: Buffer = hmac(`AWS4${scope.credentials.secretAccessKey}`, day)
  for (const part of [scope.region, scope.service, 'aws4_request']) key = hmac(key, part)
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex')

  headers['authorization'] =
    `AWS4-HMAC-SHA256 Credential=${scope.credentials.accessKeyId}/${credentialScope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`
  return headers
}

/** `20150830T123600Z` */
export function toAmzDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')
}

/** RFC 3986 percent-encoding of everything except the unreserved characters. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

function canonicalPath(url: URL): string {
  const segments = url.pathname.split('/').map((s) => uriEncode(decodeURIComponent(s)))
  return segments.join('/') || '/'
}

function canonicalQuery(url: URL): string {
  const pairs = [...url.searchParams].map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
  return pairs.map(([k, v]) => `${k}=${v}`).join('&')
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest()
}
