/**
 * The Ub HTTP server (node:http). It reads at most 8 KiB of body, passes the request to the
 * Ub endpoint and writes its answer; unexpected errors become `500` (or `503` when a
 * dependency is down) without details. Routes of other components (PKI/EST, RSPF) can be
 * added through `routes`: the first whose prefix matches the path handles the request.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isM2msecError } from '@m2msec/errors'
import type { Logger } from '@m2msec/runtime'
import type { UbEndpoint } from '../gba/ub.ts'
import type { SourceLimit } from './source-limit.ts'

/** Largest request body read; larger requests get `413`. */
export const MAX_UB_BODY_BYTES = 8 * 1024

/** An extra HTTP route, handled before the Ub endpoint when `prefix` matches the path. */
export interface HttpRoute {
  readonly prefix: string
  handle(req: IncomingMessage, res: ServerResponse): Promise<void> | void
}

/** A listening HTTP server. */
export interface UbServer {
  /** `http://host:port`. */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

async function readBody(req: IncomingMessage): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const b = chunk as Buffer
    size += b.length
    if (size > MAX_UB_BODY_BYTES) return undefined
    chunks.push(b)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

/**
 * Starts the server.
 *
 * @example
 * ```ts
 * const http = await startUbServer({ host: '127.0.0.1', port: 8084 }, ub, log)
 * ```
 */
export async function startUbServer(
  listen: { host: string; port: number },
  ub: UbEndpoint,
  log: Logger,
  routes: readonly HttpRoute[] = [],
  limit: SourceLimit = () => 0,
): Promise<UbServer> {
  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/'
      const route = routes.find((r) => path.startsWith(r.prefix))
      if (route !== undefined) {
        await route.handle(req, res)
        return
      }
      const wait = limit(req.socket.remoteAddress)
      if (wait > 0) {
        log.debug({ path }, 'Ub request over the per-source limit')
        req.resume()
        res.writeHead(429, { 'retry-after': String(Math.ceil(wait / 1000)), 'content-length': 0 }).end()
        return
      }
      const body = await readBody(req)
      if (body === undefined) {
        res.writeHead(413, { connection: 'close' }).end()
        return
      }
      const authorization = req.headers.authorization
      const out = await ub.handle({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        authorization,
        body,
        peer: req.socket.remoteAddress,
      })
      res.writeHead(out.status, { ...out.headers, 'content-length': Buffer.byteLength(out.body) }).end(out.body)
    })().catch((err: unknown) => {
      const unavailable = isM2msecError(err) && err.status === 'UNAVAILABLE'
      log.warn({ err, path: (req.url ?? '').split('?')[0] }, 'Ub request failed')
      if (!res.headersSent) res.writeHead(unavailable ? 503 : 500, { 'content-length': 0 }).end()
      else res.destroy()
    })
  })
  server.headersTimeout = 10_000
  server.requestTimeout = 15_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
