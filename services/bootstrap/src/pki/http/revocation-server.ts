/**
 * CRL and OCSP over plain HTTP (both responses are signed; RFC 5280 §4.2.1.13 and RFC 6960
 * Appendix A use HTTP): `GET /pki/<tenant>/crl` (DER, `application/pkix-crl`),
 * `POST /pki/<tenant>/ocsp` (`application/ocsp-request` → `application/ocsp-response`) and
 * `GET /pki/<tenant>/ocsp/<url-encoded base64 request>`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { M2msecError } from '@m2msec/errors'
import type { Logger } from '@m2msec/runtime'
import type { PkiOperations } from '../domain/index.ts'
import { TENANT_RE, decodeSegment, mediaType, readBody, sendError } from './common.ts'
import type { Listener } from './est-server.ts'

const PATH_RE = /^\/pki\/([^/]+)\/(crl|ocsp)(?:\/(.+))?$/
/** Largest OCSP request accepted (64 CertIDs fit easily). */
const MAX_OCSP_BYTES = 16 * 1024

function send(res: ServerResponse, type: string, body: Uint8Array, maxAgeSec: number): void {
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    'cache-control': `public, max-age=${maxAgeSec}`,
  })
  res.end(body)
}

/**
 * Starts the CRL/OCSP listener.
 *
 * @example
 * ```ts
 * const rev = await startRevocationServer({ host: '127.0.0.1', port: 8081 }, ops, log)
 * // openssl ocsp -issuer issuing.pem -cert dev.pem -url http://127.0.0.1:8081/pki/acme/ocsp -CAfile root.pem
 * ```
 */
export async function startRevocationServer(
  listen: { host: string; port: number; maxAgeSec: number },
  ops: PkiOperations,
  log: Logger,
): Promise<Listener> {
  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    tenant: string,
    what: string,
    rest: string | undefined,
  ) {
    if (what === 'crl') {
      if (req.method !== 'GET' || rest !== undefined) throw new M2msecError('ERR_NOT_FOUND', 'GET /pki/<tenant>/crl')
      send(res, 'application/pkix-crl', await ops.crl(tenant), listen.maxAgeSec)
      return
    }
    let request: Uint8Array
    if (req.method === 'GET' && rest !== undefined) {
      const b64 = decodeSegment(rest)
      if (b64 === undefined || b64.length > MAX_OCSP_BYTES)
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'bad OCSP GET request')
      request = new Uint8Array(Buffer.from(b64, 'base64'))
    } else if (req.method === 'POST' && rest === undefined) {
      if (mediaType(req.headers['content-type']) !== 'application/ocsp-request') {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'Content-Type must be application/ocsp-request')
      }
      request = new Uint8Array(await readBody(req, MAX_OCSP_BYTES))
    } else {
      throw new M2msecError('ERR_NOT_FOUND', 'POST /pki/<tenant>/ocsp or GET /pki/<tenant>/ocsp/<request>')
    }
    send(res, 'application/ocsp-response', await ops.ocsp(tenant, request), 0)
  }

  const server = createServer((req, res) => {
    const m = PATH_RE.exec((req.url ?? '/').split('?')[0] ?? '/')
    const tenant = m === null ? undefined : decodeSegment(m[1] ?? '')
    if (m === null || tenant === undefined || !TENANT_RE.test(tenant)) {
      sendError(res, new M2msecError('ERR_NOT_FOUND', 'not found'))
      return
    }
    handle(req, res, tenant, m[2] ?? '', m[3]).catch((err: unknown) => {
      if (res.headersSent) return
      const status = sendError(res, err)
      if (status >= 500) log.warn({ err, tenant }, 'revocation request failed')
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new M2msecError('ERR_UNAVAILABLE', `cannot listen on ${listen.host}:${listen.port}`, {}, { cause: err })),
    )
    server.listen(listen.port, listen.host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
