/**
 * Builds and starts a bootstrap replica from its configuration: NATS (GBA stores, audit), the
 * KMS client, the GBA operations, the gRPC server (GbaSubscribers, GbaZn) and the Ub HTTP
 * endpoint. `main.ts` runs it until a signal; tests and benches start it in-process with a
 * config object. Returns the addresses and an ordered shutdown.
 *
 * Other components (PKI/EST, TLS RSPF) plug in where marked: their gRPC services are added
 * to `server` before `listen()`, their HTTP routes go into `routes`.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { connectNats, createAuditLog, createAuditSink, createRevocationSet } from '@m2msec/bus'
import {
  createGrpcServer,
  createServiceAuthenticator,
  readSecretFile,
  systemClock,
  type ListenAddress,
  type Logger,
} from '@m2msec/runtime'
import { descriptorSetPath } from '@m2msec/proto'
import { GbaSubscribersService, GbaZnService, PkiService } from '@m2msec/proto/bootstrap/v1'
import { estNafFqdnOf, type BootstrapConfig } from './config.ts'
import type { GbaDeps, GbaSettings } from './gba/context.ts'
import { createEstGbaAuthenticator } from './gba/est-digest.ts'
import { createSourceLimit } from './http/source-limit.ts'
import { createSubscriberOperations, type SubscriberOperations } from './gba/subscribers.ts'
import { startGbaSweeper } from './gba/sweeper.ts'
import { createUbEndpoint } from './gba/ub.ts'
import { createZnOperations, type ZnOperations } from './gba/zn.ts'
import { createGbaSubscribersService, createGbaZnService } from './grpc/gba-service.ts'
import { startUbServer, type HttpRoute } from './http/ub-server.ts'
import { createKmsClient } from './kms/kms-client.ts'
import { openGbaStores } from './store/gba-stores.ts'
import { createRspfComponent, type RspfAddresses } from './rspf/index.ts'
import { createPkiComponent, createPkiKmsClient, type PkiComponent } from './pki/index.ts'

/** A running bootstrap replica. */
export interface BootstrapApp {
  /** The gRPC address. */
  readonly address: ListenAddress
  /** The Ub endpoint, `http://host:port`. */
  readonly ubUrl: string
  readonly gba: { readonly subscribers: SubscriberOperations; readonly zn: ZnOperations; readonly deps: GbaDeps }
  /** EST and CRL/OCSP base URLs, when the `pki` section is configured. */
  readonly pki?: { readonly estUrl: string; readonly revocationUrl: string }
  /** The TLS RSPF listeners, when the `rspf` section is configured. */
  readonly rspf?: RspfAddresses
  /** Stops accepting calls, lets in-flight calls finish, then closes everything in reverse order. */
  shutdown(): Promise<void>
}

/** The GBA settings of a configuration. */
export function gbaSettingsOf(config: BootstrapConfig): GbaSettings {
  return {
    bsfHost: config.gba.bsfHost,
    realm: config.gba.realm ?? config.gba.bsfHost,
    uri: config.ub.path,
    keyLifetimeMs: config.gba.keyLifetimeSec * 1000,
    nonceTtlMs: config.gba.nonceTtlSec * 1000,
    indBits: config.gba.indBits,
    ind: config.gba.ind,
    kmsPrincipal: config.kms.principal,
    nafRules: config.zn.nafs,
    wrappedNafKeys: config.zn.nafs.some((r) => r.allowWrapped) || config.gba.estEnrolment,
  }
}

/** Starts a replica; on failure everything already started is stopped again. */
export async function startBootstrap(config: BootstrapConfig, log: Logger): Promise<BootstrapApp> {
  const hooks: Array<{ name: string; run: () => unknown }> = []
  const onShutdown = (name: string, run: () => unknown) => hooks.push({ name, run })
  const shutdown = async () => {
    for (const h of hooks.reverse()) {
      try {
        await h.run()
      } catch (err) {
        log.warn({ err, step: h.name }, 'shutdown step failed')
      }
    }
    hooks.length = 0
  }
  const instanceId = config.instanceId ?? `bootstrap-${hostname()}-${process.pid}`
  try {
    const nc = await connectNats({
      servers: config.nats.servers,
      name: instanceId,
      ...(config.nats.tokenFile === undefined ? {} : { token: await readSecretFile(config.nats.tokenFile) }),
    })
    onShutdown('nats', () => nc.drain())
    const replicas = config.nats.replicas

    const revocations =
      config.auth.tokens === undefined
        ? undefined
        : await createRevocationSet(nc, {
            replicas,
            onError: (err) => log.warn({ err }, 'revocation entry unreadable'),
          })
    if (revocations !== undefined) onShutdown('revocations', () => revocations.close())

    const audit = await createAuditLog(nc, {
      source: instanceId,
      maxPending: config.audit.maxPending,
      ackTimeoutMs: config.audit.ackTimeoutMs,
      replicas,
    })
    onShutdown('audit', () => audit.close())

    const kms = createKmsClient({
      target: config.kms.target,
      ...(config.kms.tls === undefined ? {} : { tls: config.kms.tls }),
      ...(config.kms.tokenFile === undefined ? {} : { token: await readSecretFile(config.kms.tokenFile) }),
      timeoutMs: config.kms.timeoutMs,
    })
    onShutdown('kms client', () => kms.close())

    // --- GBA (Ub, Zn, subscribers) ---
    const settings = gbaSettingsOf(config)
    const stores = await openGbaStores(nc, {
      replicas,
      nonceTtlMs: settings.nonceTtlMs,
      keyLifetimeMs: settings.keyLifetimeMs,
    })
    const gbaDeps: GbaDeps = {
      kms,
      stores,
      audit: createAuditSink(audit, systemClock),
      clock: systemClock,
      randomBytes: (n) => new Uint8Array(randomBytes(n)),
      settings,
      onBackgroundError: (err, what) => log.warn({ err }, `background step failed: ${what}`),
    }
    const subscribers = createSubscriberOperations(gbaDeps)
    const zn = createZnOperations(gbaDeps)
    onShutdown(
      'gba sweeper',
      startGbaSweeper(gbaDeps, config.gba.sweepMs, (err) => log.warn({ err }, 'GBA sweep failed; will retry')),
    )

    // --- HTTP: Ub, then the routes of other components ---
    const routes: HttpRoute[] = []
    const limit = createSourceLimit({ perSec: config.limits.sourcePerSec, burst: config.limits.sourceBurst }, () =>
      systemClock.now().getTime(),
    )
    const http = await startUbServer(config.ub, createUbEndpoint(gbaDeps), log, routes, limit)
    onShutdown('ub http', () => http.close())

    const authenticator = createServiceAuthenticator(
      config.auth,
      log,
      revocations === undefined ? undefined : (tenant, jti) => revocations.isRevoked(tenant, jti),
    )

    // --- TLS RSPF (MEF handshake, fetchCredentials), when configured ---
    let rspf: RspfAddresses | undefined
    if (config.rspf !== undefined) {
      const component = createRspfComponent({
        config: config.rspf,
        log,
        nats: nc,
        kms: {
          client: kms.channel,
          timeoutMs: config.kms.timeoutMs,
          ...(config.kms.tokenFile === undefined ? {} : { token: await readSecretFile(config.kms.tokenFile) }),
        },
        authenticator,
      })
      onShutdown('rspf', () => component.stop())
      rspf = await component.start()
    }

    // --- PKI (tenant CAs, EST, CRL/OCSP), when configured ---
    let pki: PkiComponent | undefined
    if (config.pki !== undefined) {
      const pkiKms = createPkiKmsClient({
        target: config.kms.target,
        ...(config.kms.tls === undefined ? {} : { tls: config.kms.tls }),
        ...(config.kms.tokenFile === undefined ? {} : { token: await readSecretFile(config.kms.tokenFile) }),
        timeoutMs: config.kms.timeoutMs,
      })
      onShutdown('pki kms client', () => pkiKms.close())
      const gba = config.gba.estEnrolment
        ? createEstGbaAuthenticator(gbaDeps, zn, {
            nafFqdn: estNafFqdnOf(config.gba, config.pki.est),
            nonceTtlMs: settings.nonceTtlMs,
          })
        : undefined
      pki = await createPkiComponent({
        config: config.pki,
        nc,
        kms: pkiKms,
        log,
        replicas,
        limit,
        audit: gbaDeps.audit,
        ...(gba === undefined ? {} : { gba }),
      })
    }

    // --- gRPC: GBA services, then those of other components ---
    const server = createGrpcServer(config.grpc, { log, authenticator, reflection: [{ descriptorSetPath }] })
    server.addUnaryService(GbaSubscribersService, createGbaSubscribersService(subscribers))
    server.addUnaryService(GbaZnService, createGbaZnService(zn))
    if (pki !== undefined) server.addUnaryService(PkiService, pki.grpc)
    onShutdown('grpc', () => server.shutdown())
    const address = await server.listen()
    let pkiUrls: { estUrl: string; revocationUrl: string } | undefined
    if (pki !== undefined) {
      const est = pki.est
      onShutdown('est', () => est.stop())
      pkiUrls = await est.start()
    }
    return {
      address,
      ubUrl: http.url,
      gba: { subscribers, zn, deps: gbaDeps },
      ...(pkiUrls === undefined ? {} : { pki: pkiUrls }),
      ...(rspf === undefined ? {} : { rspf }),
      shutdown,
    }
  } catch (err) {
    await shutdown()
    throw err
  }
}
