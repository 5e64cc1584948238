/**
 * A minimal gRPC unary client on node:http2, used as a lighter load generator than grpc-js
 * (no interceptors, retries, load balancing or deadlines): one POST per call with the gRPC
 * length-prefixed message, status from the trailers. Plaintext HTTP/2 only (loopback).
 */
import http2 from 'node:http2'

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_TE } = http2.constants

/** A gRPC call that ended with a status other than OK. */
export class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`gRPC status ${code}: ${details}`)
  }
}

/** One HTTP/2 connection that makes unary gRPC calls. */
export interface H2GrpcChannel {
  /** Sends the encoded request message to `path` (`/pkg.Service/Method`) and resolves with the encoded response message. */
  unary(path: string, message: Uint8Array, headers?: Readonly<Record<string, string>>): Promise<Buffer>
  close(): void
}

/** Opens a plaintext HTTP/2 connection to `target` (`host:port`). */
export function connectH2Grpc(target: string): H2GrpcChannel {
  const session = http2.connect(`http://${target}`)
  session.on('error', () => {
    // Calls in flight fail through their streams; a dead session is reported per call.
  })
  return {
    unary(path, message, headers = {}) {
      const frame = Buffer.allocUnsafe(5 + message.length)
      frame[0] = 0
      frame.writeUInt32BE(message.length, 1)
      frame.set(message, 5)
      return new Promise((resolve, reject) => {
        const stream = session.request({
          [HTTP2_HEADER_METHOD]: 'POST',
          [HTTP2_HEADER_PATH]: path,
          [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
          [HTTP2_HEADER_TE]: 'trailers',
          ...headers,
        })
        const chunks: Buffer[] = []
        let status: string | undefined
        let details = ''
        const take = (h: http2.IncomingHttpHeaders): void => {
          const s = h['grpc-status']
          if (typeof s === 'string') {
            status = s
            const m = h['grpc-message']
            details = typeof m === 'string' ? decodeURIComponent(m) : ''
          }
        }
        stream.on('response', take)
        stream.on('trailers', take)
        stream.on('data', (d: Buffer) => chunks.push(d))
        stream.on('error', reject)
        stream.on('close', () => {
          if (status !== '0') {
            reject(
              new GrpcCallError(
                status === undefined ? 2 : Number(status),
                status === undefined ? `stream closed (${stream.rstCode})` : details,
              ),
            )
            return
          }
          const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)
          if (body.length < 5 || body[0] !== 0) {
            reject(new GrpcCallError(13, 'malformed or compressed response'))
            return
          }
          resolve(body.subarray(5, 5 + body.readUInt32BE(1)))
        })
        stream.end(frame)
      })
    },
    close() {
      session.close()
    },
  }
}
