/**
 * EST over HTTPS (RFC 7030; RFC 8951 clarifications): per tenant under
 * `/.well-known/est/<tenant>/`:
 * - `GET cacerts`: the issuing and root CA certificates;
 * - `POST simpleenroll`: a base64 PKCS#10 (`application/pkcs10`), authorized by a one-time
 *   token (`Authorization: Bearer <id>.<secret>`, or Basic `<id>:<secret>`), by a claim
 *   certificate presented as TLS client certificate, or by HTTP Digest with the GBA key
 *   (through the {@link EstGbaAuthenticator} port);
 * - `POST simplereenroll`: the current certificate as TLS client certificate.
 * Responses are base64 certs-only PKCS#7 (`application/pkcs7-mime; smime-type=certs-only`).
 * Errors are `text/plain` "<code>: <message>" with the HTTP status of the code (413 for an
 * oversized CSR, 401 with WWW-Authenticate when credentials are missing or refused).
 */
import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TLSSocket, DetailedPeerCertificate } from 'node:tls'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { certsOnlyPkcs7 } from '@m2msec/pki'
import type { Logger } from '@m2msec/runtime'
import type { PkiOperations, EnrolmentCredential } from '../domain/index.ts'
import type { EstGbaAuthenticator } from '../domain/model.ts'
import type { SourceLimit } from '../../http/source-limit.ts'
import { TENANT_RE, decodeSegment, mediaType, readBody, sendError } from './common.ts'

/** Options of {@link startEstServer}. */
export interface EstServerOptions {
  readonly host: string
  readonly port: number
  readonly cert: Buffer
  readonly key: Buffer
  readonly maxCsrBytes: number
}

/** A running listener. */
export interface Listener {
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

const PATH_RE = /^\/\.well-known\/est\/([^/]+)\/(cacerts|simpleenroll|simplereenroll)$/
const REALM = 'm2msec-est'

function base64Lines(der: Uint8Array): string {
  return `${(
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\r\n')}\r\n`
}

/** Decodes a base64 body (whitespace allowed, RFC 7030 §4.2.1); ERR_INVALID_ARGUMENT otherwise. */
function decodeBase64Body(body: Buffer): Uint8Array {
  const text = body.toString('latin1').replace(/[\r\n\t ]+/g, '')
  if (text.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'the body must be a base64 DER PKCS#10 request')
  }
  return new Uint8Array(Buffer.from(text, 'base64'))
}

/** The TLS client certificate and the chain the client sent, or undefined. */
function clientCertificate(req: IncomingMessage): { certificate: Uint8Array; chain: Uint8Array[] } | undefined {
  const socket = req.socket as TLSSocket
  if (typeof socket.getPeerCertificate !== 'function') return undefined
  const peer = socket.getPeerCertificate(true)
  if (peer === null || peer.raw === undefined || Object.keys(peer).length === 0) return undefined
  const chain: Uint8Array[] = []
  let current: DetailedPeerCertificate = peer
  for (let i = 0; i < 8; i++) {
    const next = current.issuerCertificate as DetailedPeerCertificate | undefined
    if (next === undefined || next === current || next.raw === undefined) break
    chain.push(new Uint8Array(next.raw))
    current = next
  }
  return { certificate: new Uint8Array(peer.raw), chain }
}

/** An enrolment token from `Authorization: Bearer <id>.<secret>` or Basic `<id>:<secret>`. */
function tokenFrom(authorization: string): EnrolmentCredential | undefined {
  const bearer = /^Bearer[ \t]+([A-Za-z0-9._-]{1,200})\s*$/i.exec(authorization)
  if (bearer !== null) {
    const [id, secret, ...rest] = (bearer[1] ?? '').split('.')
    if (id === undefined || secret === undefined || rest.length > 0) {
      throw new M2msecError('ERR_TOKEN_INVALID', 'malformed enrolment token')
    }
    return { kind: 'token', id, secret }
  }
  const basic = /^Basic[ \t]+([A-Za-z0-9+/=]{1,400})\s*$/i.exec(authorization)
  if (basic !== null) {
    const text = Buffer.from(basic[1] ?? '', 'base64').toString('utf8')
    const colon = text.indexOf(':')
    if (colon < 0) throw new M2msecError('ERR_TOKEN_INVALID', 'malformed Basic credentials')
    return { kind: 'token', id: text.slice(0, colon), secret: text.slice(colon + 1) }
  }
  return undefined
}

/**
 * Starts the EST listener.
 *
 * @example
 * ```ts
 * const est = await startEstServer({ host: '127.0.0.1', port: 8443, cert, key, maxCsrBytes: 4096 }, ops, log)
 * // curl --cacert ca.pem -H 'Authorization: Bearer <token>' -H 'Content-Type: application/pkcs10' \
 * //   --data-binary @req.b64 https://127.0.0.1:8443/.well-known/est/acme/simpleenroll
 * ```
 */
export async function startEstServer(
  opts: EstServerOptions,
  ops: PkiOperations,
  log: Logger,
  gba?: EstGbaAuthenticator,
  limit: SourceLimit = () => 0,
): Promise<Listener> {
  const maxBody = opts.maxCsrBytes * 2 + 1024

  async function challenges(tenant: string): Promise<string[]> {
    const list = [`Bearer realm="${REALM}"`, `Basic realm="${REALM}", charset="UTF-8"`]
    if (gba !== undefined) list.push(...(await gba.challenge(tenant)))
    return list
  }

  async function credentialFor(req: IncomingMessage, tenant: string, body: Uint8Array): Promise<EnrolmentCredential> {
    const authorization = req.headers.authorization
    if (authorization !== undefined) {
      const token = tokenFrom(authorization)
      if (token !== undefined) return token
      if (/^Digest[ \t]/i.test(authorization) && gba !== undefined) {
        const who = await gba.verify({ tenant, method: req.method ?? 'POST', uri: req.url ?? '', authorization, body })
        return { kind: 'gba', identity: who.identity, allowed: who.allowed }
      }
      throw new M2msecError('ERR_UNAUTHENTICATED', 'unsupported authorization scheme')
    }
    const client = clientCertificate(req)
    if (client !== undefined) return { kind: 'claim', ...client }
    throw new M2msecError('ERR_UNAUTHENTICATED', 'credentials needed: an enrolment token, a claim certificate or GBA')
  }

  async function handle(req: IncomingMessage, res: ServerResponse, tenant: string, op: string): Promise<number> {
    if (op === 'cacerts') {
      if (req.method !== 'GET') {
        return sendError(res, new M2msecError('ERR_INVALID_ARGUMENT', 'use GET'), { allow: 'GET' })
      }
      const body = base64Lines(certsOnlyPkcs7(await ops.caCertificates(tenant)))
      res.writeHead(200, { 'content-type': 'application/pkcs7-mime', 'content-length': Buffer.byteLength(body) })
      res.end(body)
      return 200
    }
    if (req.method !== 'POST')
      return sendError(res, new M2msecError('ERR_INVALID_ARGUMENT', 'use POST'), { allow: 'POST' })
    if (mediaType(req.headers['content-type']) !== 'application/pkcs10') {
      const body = 'ERR_INVALID_ARGUMENT: Content-Type must be application/pkcs10\n'
      res.writeHead(415, { 'content-type': 'text/plain; charset=utf-8', 'm2msec-error-code': 'ERR_INVALID_ARGUMENT' })
      res.end(body)
      return 415
    }
    // Every enrolment request counts against its source, whatever its credentials: each one
    // costs KV reads and writes, an audit record, and without credentials a fresh nonce.
    const wait = limit(req.socket.remoteAddress)
    if (wait > 0) {
      req.resume()
      throw new M2msecError('ERR_RATE_LIMITED', 'too many enrolment requests from this address; retry later', {
        retryAfterMs: wait,
      })
    }
    const raw = await readBody(req, maxBody)
    // Authenticate before looking at the CSR: unauthenticated callers learn nothing about it.
    let enrolled
    if (op === 'simpleenroll') {
      const credential = await credentialFor(req, tenant, raw)
      enrolled = await ops.simpleEnroll(tenant, decodeBase64Body(raw), credential)
    } else {
      const current = clientCertificate(req)
      if (current === undefined) {
        throw new M2msecError(
          'ERR_UNAUTHENTICATED',
          're-enrolment needs the current certificate as TLS client certificate',
        )
      }
      enrolled = await ops.simpleReenroll(tenant, decodeBase64Body(raw), current)
    }
    const body = base64Lines(certsOnlyPkcs7([enrolled.certificate]))
    res.writeHead(200, {
      'content-type': 'application/pkcs7-mime; smime-type=certs-only',
      'content-length': Buffer.byteLength(body),
    })
    res.end(body)
    return 200
  }

  const server: Server = createServer(
    { cert: opts.cert, key: opts.key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/'
      const m = PATH_RE.exec(path)
      const tenant = m === null ? undefined : decodeSegment(m[1] ?? '')
      const op = m?.[2] ?? ''
      if (tenant === undefined || !TENANT_RE.test(tenant)) {
        sendError(res, new M2msecError('ERR_NOT_FOUND', 'not an EST path: /.well-known/est/<tenant>/<operation>'))
        return
      }
      handle(req, res, tenant, op).then(
        (status) => log.info({ tenant, op, status }, 'est request'),
        async (err: unknown) => {
          const headers: Record<string, string[]> = {}
          if (isM2msecError(err) && err.code === 'ERR_RATE_LIMITED') {
            headers['retry-after'] = [String(Math.ceil(Number(err.details['retryAfterMs'] ?? 1000) / 1000))]
          }
          if (isM2msecError(err) && err.status === 'UNAUTHENTICATED') {
            headers['www-authenticate'] = await challenges(tenant).catch((cause: unknown) => {
              log.warn({ err: cause, tenant }, 'cannot make the EST challenges; offering Bearer only')
              return [`Bearer realm="${REALM}"`]
            })
          }
          if (!res.headersSent) {
            const status = sendError(res, err, headers)
            const code = isM2msecError(err) ? err.code : 'ERR_INTERNAL'
            if (status >= 500) log.warn({ err, tenant, op }, 'est request failed')
            else if (status === 429) log.debug({ tenant, op }, 'est request over the per-source limit')
            else log.info({ tenant, op, status, code }, 'est request refused')
          }
        },
      )
    },
  )
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'est tls handshake failed'))
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new M2msecError('ERR_UNAVAILABLE', `cannot listen on ${opts.host}:${opts.port}`, {}, { cause: err })),
    )
    server.listen(opts.port, opts.host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host
  return {
    url: `https://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
