/**
 * The oneM2M Remote Security Provisioning Framework (TS-0003 §8.3) of the bootstrap service,
 * i.e. the MEF: the Pre-Provisioned Symmetric Enrolee Key RSPF (TLS-PSK), the
 * Certificate-Based RSPF (mutual TLS), and `/fetchCredentials/<KeID>/<SUID>` for Enrolment
 * Targets. Ke lives only in the KMS; see docs/rspf.md.
 *
 * @example
 * ```ts
 * const rspf = createRspfComponent({ config: config.rspf, log, nats, kms: { client: kmsClient }, authenticator })
 * const addresses = await rspf.start()
 * onShutdown(() => rspf.stop(), 'rspf')
 * ```
 */
import { readFileSync } from 'node:fs'
import type net from 'node:net'
import { M2msecError } from '@m2msec/errors'
import type { NatsConnection } from '@m2msec/bus'
import type { Authenticator, Logger } from '@m2msec/runtime'
import { enroleesOf, targetsOf, type RspfConfig } from './config.ts'
import { createRspfDirectory } from './domain/directory.ts'
import type { EnrolmentStore, RspfKms } from './domain/ports.ts'
import { completeEnrolment } from './enrol.ts'
import { createFetchCredentialsServer } from './http/fetch-credentials.ts'
import { createRspfKms, type RspfKmsOptions } from './kms/rspf-kms.ts'
import { openEnrolmentStore } from './store/enrolment-store.ts'
import { createCertServer } from './tls/cert-server.ts'
import { createPskServer, kpmSecretName } from './tls/psk-server.ts'

export { rspfConfigSchema, type RspfConfig } from './config.ts'
export type { RspfKmsOptions } from './kms/rspf-kms.ts'
export type { EnrolmentReply } from './enrol.ts'

/** What {@link createRspfComponent} needs. */
export interface RspfDeps {
  /** The parsed `rspf` config section ({@link rspfConfigSchema}). */
  readonly config: RspfConfig
  readonly log: Logger
  /** NATS connection for the enrolment KV bucket. */
  readonly nats: NatsConnection
  /** The KMS client (shared channel; not closed by the component). */
  readonly kms: RspfKmsOptions
  /**
   * Authenticates fetchCredentials callers (mTLS client certificate and/or bearer token), e.g.
   * the service's `createServiceAuthenticator(config.auth, log, isRevoked)`.
   */
  readonly authenticator: Authenticator
  /** The current time. Default: the system clock. */
  readonly now?: () => Date
}

/** `host:port` of each listener that is running. */
export interface RspfAddresses {
  readonly psk?: { readonly host: string; readonly port: number }
  readonly certificate?: { readonly host: string; readonly port: number }
  readonly fetchCredentials: { readonly host: string; readonly port: number }
}

/** The running RSPF. */
export interface RspfComponent {
  /** Opens the KV bucket and starts the listeners; resolves with their addresses. */
  start(): Promise<RspfAddresses>
  /** Stops accepting connections and closes the open ones. Idempotent. */
  stop(): Promise<void>
  /**
   * Stores a pre-provisioned Kpm of a configured PSK Enrolee in this service's KMS secure
   * storage (the Kpm is zeroised afterwards). Admin tooling; ERR_NOT_FOUND for an unknown KpmID.
   */
  provisionPreSharedKey(kpmId: string, kpm: Uint8Array): Promise<void>
}

function listen(server: net.Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const address = server.address() as net.AddressInfo
      resolve({ host, port: address.port })
    })
  })
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve()
    server.close(() => resolve())
    ;(server as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.()
  })
}

/**
 * Builds the RSPF from its config. Nothing listens before `start()`.
 *
 * Errors: ERR_CONFIG_INVALID for inconsistent enrolee / target configuration (at once).
 */
export function createRspfComponent(deps: RspfDeps): RspfComponent {
  const { config, log } = deps
  const now = deps.now ?? (() => new Date())
  const directory = createRspfDirectory(enroleesOf(config), targetsOf(config))
  const kms: RspfKms = createRspfKms(deps.kms)
  const servers: net.Server[] = []
  const sockets = new Set<net.Socket>()
  let store: EnrolmentStore | undefined

  const track = (server: net.Server) => {
    servers.push(server)
    server.on('connection', (s: net.Socket) => {
      sockets.add(s)
      s.once('close', () => sockets.delete(s))
    })
    return server
  }

  return {
    async start() {
      const maxLifetimeMs =
        Math.max(config.enrolmentLifetimeSec, ...config.enrolees.map((e) => e.lifetimeSec ?? 0)) * 1000
      store = await openEnrolmentStore(deps.nats, { replicas: config.kvReplicas, ttlMs: maxLifetimeMs })
      const enrolDeps = { mefFqdn: config.mefFqdn, kms, store, log, now }
      const out: { psk?: { host: string; port: number }; certificate?: { host: string; port: number } } = {}

      if (config.psk.enabled) {
        const server = track(
          createPskServer({
            ciphers: config.psk.ciphers,
            maxVersion: config.psk.maxVersion,
            handshakeTimeoutMs: config.psk.handshakeTimeoutMs,
            directory,
            kms,
            log,
            onEnrolee: (socket, enrolee) => void completeEnrolment(enrolDeps, socket, enrolee),
          }),
        )
        out.psk = await listen(server, config.psk.host, config.psk.port)
      }
      if (config.certificate !== undefined) {
        const c = config.certificate
        const server = track(
          createCertServer({
            certPem: readFileSync(c.certFile, 'utf8'),
            keyPem: readFileSync(c.keyFile, 'utf8'),
            caPem: readFileSync(c.caFile, 'utf8'),
            ciphers: c.ciphers,
            maxVersion: c.maxVersion,
            handshakeTimeoutMs: c.handshakeTimeoutMs,
            directory,
            log,
            onEnrolee: (socket, enrolee) => void completeEnrolment(enrolDeps, socket, enrolee),
          }),
        )
        out.certificate = await listen(server, c.host, c.port)
      }
      const f = config.fetchCredentials
      const fetchServer = track(
        createFetchCredentialsServer({
          certPem: readFileSync(f.certFile, 'utf8'),
          keyPem: readFileSync(f.keyFile, 'utf8'),
          ...(f.clientCaFile === undefined ? {} : { clientCaPem: readFileSync(f.clientCaFile, 'utf8') }),
          mefFqdn: config.mefFqdn,
          directory,
          store,
          kms,
          authenticator: deps.authenticator,
          log,
          now,
        }),
      )
      const fetchCredentials = await listen(fetchServer, f.host, f.port)
      log.info({ ...out, fetchCredentials, mefFqdn: config.mefFqdn }, 'rspf ready')
      return { ...out, fetchCredentials }
    },

    async stop() {
      const closing = servers.splice(0).map(close)
      for (const s of sockets) s.destroy()
      sockets.clear()
      await Promise.all(closing)
    },

    async provisionPreSharedKey(kpmId, kpm) {
      try {
        const enrolee = directory.byKpmId(kpmId)
        if (enrolee === undefined) throw new M2msecError('ERR_NOT_FOUND', 'no PSK enrolee with this KpmID')
        await kms.putSecret(enrolee.tenant, kpmSecretName(kpmId), kpm)
      } finally {
        kpm.fill(0)
      }
    },
  }
}
