/**
 * The PKI part of the bootstrap service (the MEF's CA and EST enrolment): one factory,
 * {@link createPkiComponent}, gives the `m2msec.bootstrap.v1.Pki` gRPC handlers and the EST
 * (HTTPS) + CRL/OCSP (HTTP) listeners; {@link pkiConfigSchema} is its `pki` config section.
 * CA keys are KMS EC_P256_SIGN keys (see {@link createPkiKmsClient}); state lives in JetStream
 * KV. Protocol details: docs/pki-est.md.
 *
 * @example
 * ```ts
 * const kms = createPkiKmsClient({ target: config.kms.target, tls: config.kms.tls, timeoutMs: 5000 })
 * const pki = await createPkiComponent({ config: config.pki, nc, kms, log, replicas: config.nats.replicas })
 * server.addUnaryService(PkiService, pki.grpc)
 * const { estUrl, revocationUrl } = await pki.est.start()
 * onShutdown('pki http', () => pki.est.stop())
 * ```
 */
import { readFile } from 'node:fs/promises'
import type { NatsConnection } from '@m2msec/bus'
import type { PkiService } from '@m2msec/proto/bootstrap/v1'
import { systemClock, systemRandom, type Logger, type UnaryHandlers } from '@m2msec/runtime'
import type { PkiConfig } from './config.ts'
import { createPkiOperations, type PkiOperations } from './domain/index.ts'
import type { Clock, EstGbaAuthenticator, PkiAudit, PkiContext, PkiKms, Random } from './domain/model.ts'
import type { SourceLimit } from '../http/source-limit.ts'
import { createPkiGrpcService } from './grpc/service.ts'
import { startEstServer, type Listener } from './http/est-server.ts'
import { startRevocationServer } from './http/revocation-server.ts'
import { openPkiStore } from './store.ts'

export { pkiConfigSchema, type PkiConfig } from './config.ts'
export { createPkiKmsClient, type PkiKmsClient, type PkiKmsClientOptions } from './kms-client.ts'
export type { EstGbaAuthenticator, PkiKms } from './domain/model.ts'
export type { PkiOperations } from './domain/index.ts'

/** Collaborators of {@link createPkiComponent}. */
export interface PkiComponentDeps {
  /** The `pki` config section. */
  readonly config: PkiConfig
  /** The service's NATS connection (JetStream KV buckets `bootstrap-pki-*`). */
  readonly nc: NatsConnection
  /** CA key operations (the KMS). */
  readonly kms: PkiKms
  readonly log: Logger
  /** KV replicas (1 in development, 3 in production). Default 1. */
  readonly replicas?: number
  /** GBA enrolment (HTTP Digest with Ks_NAF), implemented by the GBA part. Absent: not offered. */
  readonly gba?: EstGbaAuthenticator
  /** Per-source limit of enrolment requests (shared with Ub). Absent: none. */
  readonly limit?: SourceLimit
  /** Where the audit records of every change go (CA, authorizations, enrolments, revocations). */
  readonly audit: PkiAudit
  readonly clock?: Clock
  readonly random?: Random
}

/** The EST and CRL/OCSP listeners. */
export interface EstServer {
  /** Starts both listeners (idempotent); their base URLs are then used in new certificates. */
  start(): Promise<{ estUrl: string; revocationUrl: string }>
  /** Closes both listeners. Idempotent. */
  stop(): Promise<void>
}

/** What {@link createPkiComponent} returns. */
export interface PkiComponent {
  /** Handlers for `server.addUnaryService(PkiService, grpc)`. */
  readonly grpc: UnaryHandlers<typeof PkiService>
  readonly est: EstServer
  readonly ops: PkiOperations
}

/**
 * Opens the PKI's KV buckets and builds the operations, the gRPC handlers and the (not yet
 * started) HTTP listeners.
 */
export async function createPkiComponent(deps: PkiComponentDeps): Promise<PkiComponent> {
  const { config, log } = deps
  const store = await openPkiStore(deps.nc, { replicas: deps.replicas ?? 1 })
  const hostPort = (scheme: string, host: string, port: number) =>
    `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`
  const urls = {
    est: config.est.publicUrl ?? hostPort('https', config.est.host, config.est.port),
    revocation: config.revocation.publicUrl ?? hostPort('http', config.revocation.host, config.revocation.port),
  }
  const ctx: PkiContext = {
    store,
    kms: deps.kms,
    audit: deps.audit,
    clock: deps.clock ?? systemClock,
    random: deps.random ?? systemRandom,
    settings: {
      ...config.certificates,
      maxCsrBytes: config.est.maxCsrBytes,
      crlValiditySec: config.revocation.crlValiditySec,
      ocspValiditySec: config.revocation.ocspValiditySec,
    },
    urls: () => urls,
  }
  const ops = createPkiOperations(ctx)
  let listeners: { est: Listener; revocation: Listener } | undefined
  const est: EstServer = {
    async start() {
      if (listeners === undefined) {
        const [cert, key] = await Promise.all([readFile(config.est.tls.certFile), readFile(config.est.tls.keyFile)])
        const revocation = await startRevocationServer(
          {
            host: config.revocation.host,
            port: config.revocation.port,
            maxAgeSec: Math.floor(config.revocation.crlValiditySec / 2),
          },
          ops,
          log,
        )
        const estListener = await startEstServer(
          { host: config.est.host, port: config.est.port, cert, key, maxCsrBytes: config.est.maxCsrBytes },
          ops,
          log,
          deps.gba,
          deps.limit,
        ).catch(async (err: unknown) => {
          await revocation.close()
          throw err
        })
        listeners = { est: estListener, revocation }
        // With port 0 the real ports are known only now.
        if (config.est.publicUrl === undefined) urls.est = estListener.url
        if (config.revocation.publicUrl === undefined) urls.revocation = revocation.url
      }
      return { estUrl: urls.est, revocationUrl: urls.revocation }
    },
    async stop() {
      const l = listeners
      listeners = undefined
      if (l !== undefined) await Promise.all([l.est.close(), l.revocation.close()])
    },
  }
  return { grpc: createPkiGrpcService(ops), est, ops }
}
