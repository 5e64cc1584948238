/**
 * The JWKS endpoint (node:http): `GET /.well-known/jwks.json` serves the signing keys of every
 * enabled tenant, `GET /tenants/<tenant>/jwks.json` those of one tenant (404 for an unknown or
 * disabled tenant). Responses are `application/json` with a short cache lifetime, so a
 * rotation reaches verifiers quickly (they also re-fetch on an unknown kid).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { JWK } from 'jose'
import { M2msecError } from '@m2msec/errors'
import type { Logger } from '@m2msec/runtime'

/** Where the key sets come from (the authn operations). */
export interface JwksSource {
  platformJwks(): Promise<{ keys: JWK[] }>
  tenantJwks(tenantId: string): Promise<{ keys: JWK[] } | undefined>
}

/** A running JWKS endpoint. */
export interface JwksServer {
  /** `http://host:port`. */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

const TENANT_PATH = /^\/tenants\/([^/]{1,128})\/jwks\.json$/

/** Percent-decodes a path segment; '' (an unknown tenant) when malformed. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return ''
  }
}

/**
 * @example
 * ```ts
 * const http = await startJwksServer({ host: '127.0.0.1', port: 7080 }, ops, log)
 * // curl http://127.0.0.1:7080/.well-known/jwks.json
 * ```
 */
export async function startJwksServer(
  listen: { host: string; port: number },
  source: JwksSource,
  log: Logger,
): Promise<JwksServer> {
  const server: Server = createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body)
      res.writeHead(status, {
        'content-type': 'application/json',
        'cache-control': status === 200 ? 'public, max-age=30' : 'no-store',
        'content-length': Buffer.byteLength(text),
      })
      res.end(req.method === 'HEAD' ? undefined : text)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD')
      send(405, { error: 'method not allowed' })
      return
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const tenantMatch = TENANT_PATH.exec(path)
    const work =
      path === '/.well-known/jwks.json'
        ? source.platformJwks()
        : tenantMatch !== null
          ? source.tenantJwks(safeDecode(tenantMatch[1] ?? ''))
          : Promise.resolve(null)
    work.then(
      (set) => (set === null || set === undefined ? send(404, { error: 'not found' }) : send(200, set)),
      (err: unknown) => {
        log.warn({ err, path }, 'jwks request failed')
        send(503, { error: 'key sets unavailable' })
      },
    )
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
