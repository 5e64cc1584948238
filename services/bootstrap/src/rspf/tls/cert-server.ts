/**
 * The Certificate-Based RSPF listener (TS-0003 §8.3.2.2): mutual TLS where the MEF presents its
 * FQDN certificate and the Enrolee a certificate chaining to a configured trust anchor, whose
 * subjectAltName must contain the entry configured for the Enrolee (§8.1.2.5).
 */
import tls from 'node:tls'
import type { Logger } from '@m2msec/runtime'
import { subjectAltNameEntries, type RspfDirectory } from '../domain/directory.ts'
import type { Enrolee } from '../domain/enrolment.ts'

/** Options of {@link createCertServer}. */
export interface CertServerOptions {
  readonly certPem: string
  readonly keyPem: string
  readonly caPem: string
  readonly ciphers: string
  readonly maxVersion: tls.SecureVersion
  readonly handshakeTimeoutMs: number
  readonly directory: RspfDirectory
  readonly log: Logger
  /** Called with the established socket and its Enrolee, or undefined for an unknown certificate. */
  readonly onEnrolee: (socket: tls.TLSSocket, enrolee: Enrolee | undefined) => void
}

/**
 * @example
 * ```ts
 * const server = createCertServer({ certPem, keyPem, caPem, ciphers, maxVersion: 'TLSv1.3', handshakeTimeoutMs: 10_000, directory, log, onEnrolee })
 * server.listen(7444)
 * ```
 */
export function createCertServer(opts: CertServerOptions): tls.Server {
  const server = tls.createServer(
    {
      cert: opts.certPem,
      key: opts.keyPem,
      ca: opts.caPem,
      requestCert: true,
      // Checked below, so a refused client is logged with its reason (TOOLCHAIN pitfall 20).
      rejectUnauthorized: false,
      ciphers: opts.ciphers,
      minVersion: 'TLSv1.2',
      maxVersion: opts.maxVersion,
      handshakeTimeout: opts.handshakeTimeoutMs,
    },
    (socket) => {
      if (!socket.authorized) {
        opts.log.info({ reason: String(socket.authorizationError ?? 'no certificate') }, 'rspf certificate refused')
        socket.destroy()
        return
      }
      const entries = subjectAltNameEntries(socket.getPeerCertificate().subjectaltname)
      opts.onEnrolee(socket, opts.directory.bySubjectAltName(entries))
    },
  )
  server.on('tlsClientError', (err) => {
    opts.log.info({ reason: (err as NodeJS.ErrnoException).code ?? err.message }, 'rspf certificate handshake failed')
  })
  return server
}
