/**
 * Builds and starts an authn replica from its configuration: NATS (stores, audit, events),
 * the KMS client, the domain, the gRPC server and the JWKS HTTP endpoint. `main.ts` runs it
 * until a signal; tests start it in-process with a config object. Returns the addresses and
 * an ordered shutdown.
 */
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import type { JWK } from 'jose'
import {
  connectNats,
  createAuditLog,
  createAuditSink,
  createRevocationSet,
  KvRepository,
  subjects,
  subscribeEvents,
} from '@m2msec/bus'
import {
  chainAuthenticators,
  createGrpcServer,
  devMtlsAuthenticator,
  devStaticTokenAuthenticator,
  platformServiceAuthenticator,
  readSecretFile,
  systemClock,
  systemRandom,
  tokenAuthenticator,
  type Authenticator,
  type ListenAddress,
  type Logger,
} from '@m2msec/runtime'
import { descriptorSetPath } from '@m2msec/proto'
import { AuthenticationService } from '@m2msec/proto/authn/v1'
import { attemptTtlMs, jtiTtlMs, revocationTtlMs, type AuthnConfig } from './config.ts'
import type { EntityRecord, MafClientRecord, MafKeyRecord, SessionKeyRecord, TenantRecord } from './domain/model.ts'
import type { CertificateRevocation, FailureState } from './domain/ports.ts'
import type { AuthnSettings } from './domain/ports.ts'
import { createAuthnOperations, type AuthnOperations } from './domain/operations/index.ts'
import { tenantOfSigningKey } from './domain/operations/tenants.ts'
import { parseSigningKid } from './domain/tokens.ts'
import { createAuthnEventPublisher } from './events/publish.ts'
import { createAuthnGrpcService, UNAUTHENTICATED_METHODS } from './grpc/service.ts'
import { startJwksServer } from './http/jwks-server.ts'
import { createKmsClient } from './kms/kms-client.ts'
import { createZnClient } from './gba/zn-client.ts'
import { createCrlFetcher } from './http/crl-fetch.ts'
import { createCertificateRevocation, createCrlSource, createOcspSource } from './domain/revocation.ts'
import { createOcspPoster } from './http/ocsp-fetch.ts'
import { createAttemptStore } from './store/attempt-store.ts'
import { createEntityStore } from './store/entity-store.ts'
import { createMafClientStore, createMafKeyStore, createSessionKeyStore } from './store/expiring-stores.ts'
import { createPseudonymStore, type PseudonymEntry } from './store/pseudonym-store.ts'
import { createJtiStore } from './store/jti-store.ts'
import { createTenantStore } from './store/tenant-store.ts'

/** A running authn replica. */
export interface AuthnApp {
  /** The gRPC address. */
  readonly address: ListenAddress
  /** The JWKS endpoint, `http://host:port`. */
  readonly jwksUrl: string
  readonly ops: AuthnOperations
  /** Stops accepting calls, lets in-flight calls finish, then closes everything in reverse order. */
  shutdown(): Promise<void>
}

/** Largest OCSP response accepted (a single-certificate answer is about 1-3 KiB). */
const OCSP_MAX_BYTES = 64 * 1024

/**
 * The certificate revocation check of `certificates` (undefined = off): OCSP and CRL sources
 * over HTTP in the configured order.
 */
export function createRevocation(c: AuthnConfig['certificates']): CertificateRevocation | undefined {
  if (c.revocation === 'off') return undefined
  const crl = createCrlSource({
    fetchCrl: createCrlFetcher({ timeoutMs: c.crlFetchTimeoutMs, maxBytes: c.crlMaxBytes }),
    clock: systemClock,
    cacheMs: c.crlCacheSec * 1000,
    allowedUrlPrefixes: c.crlUrlPrefixes,
  })
  if (c.revocation === 'crl') return createCertificateRevocation({ order: [crl] })
  const ocsp = createOcspSource({
    postOcsp: createOcspPoster({ timeoutMs: c.ocspTimeoutMs, maxBytes: OCSP_MAX_BYTES }),
    clock: systemClock,
    random: (n) => systemRandom.bytes(n),
    cacheMs: c.ocspCacheSec * 1000,
    allowedUrlPrefixes: c.ocspUrlPrefixes,
  })
  return createCertificateRevocation({ order: c.revocationPrefer === 'ocsp' ? [ocsp, crl] : [crl, ocsp] })
}

/** The domain settings of a configuration. */
export function settingsOf(config: AuthnConfig): AuthnSettings {
  return {
    issuer: config.token.issuer,
    tokenEndpointId: config.token.endpointId,
    defaultAudience: config.token.defaultAudience,
    tokenLifetimeSec: config.token.lifetimeSec,
    maxAssertionLifetimeSec: config.token.maxAssertionLifetimeSec,
    clockSkewSec: config.token.clockSkewSec,
    maxAssertionBytes: 8192,
    operatorTenant: config.auth.operatorTenant,
    signingKeyCacheMs: config.token.signingKeyCacheMs,
    flood: {
      entity: {
        freeFailures: config.flood.entityFreeFailures,
        baseDelayMs: config.flood.entityBaseDelayMs,
        maxDelayMs: config.flood.entityMaxDelayMs,
      },
      source: {
        freeFailures: config.flood.sourceFreeFailures,
        baseDelayMs: config.flood.sourceBaseDelayMs,
        maxDelayMs: config.flood.sourceMaxDelayMs,
      },
      failureWindowMs: config.flood.failureWindowSec * 1000,
      entityRate: { perSec: config.flood.entityRatePerSec, burst: config.flood.entityBurst },
      sourceRate: { perSec: config.flood.sourceRatePerSec, burst: config.flood.sourceBurst },
    },
    session: { defaultLifetimeSec: config.session.defaultLifetimeSec, maxLifetimeSec: config.session.maxLifetimeSec },
    maf: {
      fqdn: config.maf.fqdn,
      maxKeyLifetimeSec: config.maf.maxKeyLifetimeSec,
      maxClientLifetimeSec: config.maf.maxClientLifetimeSec,
    },
  }
}

/** Starts a replica; on failure everything already started is stopped again. */
export async function startAuthn(config: AuthnConfig, log: Logger): Promise<AuthnApp> {
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
  const instanceId = config.instanceId ?? `authn-${hostname()}-${process.pid}`
  try {
    const nc = await connectNats({
      servers: config.nats.servers,
      name: instanceId,
      ...(config.nats.tokenFile === undefined ? {} : { token: await readSecretFile(config.nats.tokenFile) }),
    })
    onShutdown('nats', () => nc.drain())
    const replicas = config.nats.replicas

    const audit = await createAuditLog(nc, {
      source: instanceId,
      maxPending: config.audit.maxPending,
      ackTimeoutMs: config.audit.ackTimeoutMs,
      replicas,
    })
    onShutdown('audit', () => audit.close())

    const tenants = await createTenantStore(
      await KvRepository.open<TenantRecord>(nc, 'authn-tenants', { replicas, history: 5 }),
    )
    onShutdown('tenant store', () => tenants.close())
    const entities = createEntityStore(
      await KvRepository.open<EntityRecord>(nc, 'authn-entities', { replicas, history: 5 }),
    )
    const jti = createJtiStore(
      await KvRepository.open<{ at: number }>(nc, 'authn-jti', {
        replicas,
        ttlMs: jtiTtlMs(config),
        maxValueBytes: 256,
      }),
    )
    const attemptTtl = attemptTtlMs(config)
    const attempts = await createAttemptStore(
      await KvRepository.open<FailureState>(nc, 'authn-attempts', { replicas, ttlMs: attemptTtl, maxValueBytes: 256 }),
      attemptTtl,
    )
    onShutdown('attempt store', () => attempts.close())
    const pseudonyms = createPseudonymStore(
      await KvRepository.open<PseudonymEntry>(nc, 'authn-pseudonyms', { replicas, maxValueBytes: 1024 }),
    )
    const sessions = createSessionKeyStore(
      await KvRepository.open<SessionKeyRecord>(nc, 'authn-sessions', { replicas, maxValueBytes: 4096 }),
    )
    const mafClients = createMafClientStore(
      await KvRepository.open<MafClientRecord>(nc, 'authn-maf-clients', { replicas, history: 5 }),
    )
    const mafKeys = createMafKeyStore(
      await KvRepository.open<MafKeyRecord>(nc, 'authn-maf-keys', { replicas, history: 5 }),
    )
    const revocations = await createRevocationSet(nc, {
      replicas,
      ttlMs: revocationTtlMs(config),
      onError: (err) => log.warn({ err }, 'revocation entry unreadable'),
    })
    onShutdown('revocations', () => revocations.close())

    const kms = createKmsClient({
      target: config.kms.target,
      ...(config.kms.tls === undefined ? {} : { tls: config.kms.tls }),
      ...(config.kms.tokenFile === undefined ? {} : { token: await readSecretFile(config.kms.tokenFile) }),
      timeoutMs: config.kms.timeoutMs,
    })
    onShutdown('kms client', () => kms.close())

    const zn =
      config.gba.znTarget === undefined
        ? undefined
        : createZnClient({
            target: config.gba.znTarget,
            ...(config.gba.tls === undefined ? {} : { tls: config.gba.tls }),
            mafFqdn: config.maf.fqdn,
            timeoutMs: config.gba.timeoutMs,
          })
    if (zn !== undefined) onShutdown('zn client', () => zn.close())
    const revocation = createRevocation(config.certificates)

    const ops = createAuthnOperations({
      tenants,
      entities,
      jti,
      revocations,
      attempts,
      pseudonyms,
      sessions,
      mafClients,
      mafKeys,
      kms,
      audit: createAuditSink(audit, systemClock),
      events: createAuthnEventPublisher(nc),
      clock: systemClock,
      random: systemRandom,
      settings: settingsOf(config),
      ...(zn === undefined ? {} : { gba: zn }),
      ...(revocation === undefined ? {} : { revocation }),
      onBackgroundError: (err) => log.warn({ err }, 'event not published'),
    })
    // A rotation on another replica must not leave this one signing with a stale kid.
    const rotations = subscribeEvents<{ tenant: string }>(
      nc,
      subjects.eventAllTenants('authn', 'signing-key.rotated'),
      (e) => ops.signing.invalidate(e.data.tenant),
    )
    onShutdown('rotation events', () => rotations.stop())

    const sweeper = startSweeper(ops, config.sweep.intervalMs, log)
    onShutdown('sweeper', () => sweeper.stop())

    const http = await startJwksServer(config.http, ops, log)
    onShutdown('jwks http', () => http.close())

    const server = createGrpcServer(config.grpc, {
      log,
      authenticator: platformServiceAuthenticator(
        chainAuthenticators(...authenticators(config, ops, revocations, log)),
        {
          platformTenant: config.auth.operatorTenant,
        },
      ),
      reflection: [{ descriptorSetPath }],
    })
    server.addUnaryService(AuthenticationService, createAuthnGrpcService(ops, { mafFqdn: config.maf.fqdn }), {
      unauthenticated: UNAUTHENTICATED_METHODS,
    })
    onShutdown('grpc', () => server.shutdown())
    const address = await server.listen()
    return { address, jwksUrl: http.url, ops, shutdown }
  } catch (err) {
    await shutdown()
    throw err
  }
}

/** Runs `ops.sweepExpired` every `intervalMs`, one sweep at a time; `stop` waits for a running one. */
function startSweeper(ops: AuthnOperations, intervalMs: number, log: Logger): { stop(): Promise<void> } {
  let running: Promise<void> | undefined
  const timer = setInterval(() => {
    if (running !== undefined) return
    running = ops
      .sweepExpired()
      .then((r) => {
        if (r.sessionKeys + r.mafKeys + r.mafClients > 0) log.info(r, 'expired records removed')
      })
      .catch((err: unknown) => log.warn({ err }, 'sweep failed'))
      .finally(() => {
        running = undefined
      })
  }, intervalMs)
  timer.unref()
  return {
    async stop() {
      clearInterval(timer)
      await running
    },
  }
}

function authenticators(
  config: AuthnConfig,
  ops: AuthnOperations,
  revocations: { isRevoked(tenant: string, jti: string): boolean },
  log: Logger,
): Authenticator[] {
  const list: Authenticator[] = []
  if (config.auth.mtls) list.push(devMtlsAuthenticator())
  if (config.auth.acceptTokens) {
    list.push(
      tokenAuthenticator({
        // In-process: this replica's own published keys, no HTTP round trip.
        jwks: async (kid): Promise<JWK | undefined> => {
          const parsed = parseSigningKid(kid)
          const tenant = parsed === undefined ? undefined : tenantOfSigningKey(parsed.keyId)
          if (tenant === undefined) return undefined
          return (await ops.tenantJwks(tenant))?.keys.find((k) => k.kid === kid)
        },
        keyTenant: (kid) => {
          const parsed = parseSigningKid(kid)
          return parsed === undefined ? undefined : tenantOfSigningKey(parsed.keyId)
        },
        issuer: config.token.issuer,
        audience: config.token.defaultAudience,
        isRevoked: (t) => revocations.isRevoked(t.tenant, t.jti),
        clockToleranceSec: config.token.clockSkewSec,
      }),
    )
  }
  if (config.auth.devTokenFile !== undefined) {
    log.warn('DEVELOPMENT static token enabled: never use this in production')
    list.push(
      devStaticTokenAuthenticator({
        token: readFileSync(config.auth.devTokenFile, 'utf8').trim(),
        tenant: config.auth.devTenant,
        principal: config.auth.devPrincipal,
        roles: config.auth.devRoles,
      }),
    )
  }
  return list
}
