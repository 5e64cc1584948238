/**
 * Builds and starts an authz replica from its configuration: NATS, audit log, policy store
 * (with its watch-fed decision index), domain, gRPC server. `main.ts` runs it until a signal;
 * tests and benchmarks start it in-process with a config object (two calls on the same NATS
 * give two replicas). Returns the listen address and an ordered shutdown.
 */
import { hostname } from 'node:os'
import { connectNats, createAuditLog, createAuditSink, createRevocationSet, KvRepository } from '@m2msec/bus'
import {
  createGrpcServer,
  createServiceAuthenticator,
  readSecretFile,
  systemClock,
  type ListenAddress,
  type Logger,
} from '@m2msec/runtime'
import { descriptorSetPath } from '@m2msec/proto'
import { AuthorizationService } from '@m2msec/proto/authz/v1'
import type { AuthzConfig } from './config.ts'
import type { PolicyRecord } from './domain/model.ts'
import { createAuthzOperations, type AuthzOperations } from './domain/operations/index.ts'
import { createPolicyStore, POLICY_BUCKET, type JetStreamPolicyStore, type SyncMarker } from './store/policy-store.ts'
import { createAuthzGrpcService } from './grpc/service.ts'
import { createDasTrust, createKmsDasSigner, type KmsDasSigner } from './das/das-keys.ts'
import { createDasKms } from './kms/kms-client.ts'

/** A running authz replica. */
export interface AuthzApp {
  readonly address: ListenAddress
  readonly ops: AuthzOperations
  /** The replica's policy store and decision index (e.g. its size, for metrics and tests). */
  readonly policies: JetStreamPolicyStore
  /** Stops accepting calls, lets in-flight calls finish, then closes everything in reverse order. */
  shutdown(): Promise<void>
}

/**
 * @example
 * ```ts
 * const app = await startAuthz(authzConfigSchema.parse({ nats: { servers: [url] }, grpc: { port: 0 } }), log)
 * console.log(app.address.address)
 * await app.shutdown()
 * ```
 */
export async function startAuthz(config: AuthzConfig, log: Logger): Promise<AuthzApp> {
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
  const instanceId = config.instanceId ?? `authz-${hostname()}-${process.pid}`
  try {
    const nc = await connectNats({
      servers: config.nats.servers,
      name: instanceId,
      ...(config.nats.tokenFile === undefined ? {} : { token: await readSecretFile(config.nats.tokenFile) }),
    })
    onShutdown('nats', () => nc.drain())

    // Tokens revoked in authn are refused here too, from a watch-fed in-memory set.
    const revocations =
      config.auth.tokens === undefined
        ? undefined
        : await createRevocationSet(nc, {
            replicas: config.nats.replicas,
            onError: (err) => log.warn({ err }, 'revocation entry unreadable'),
          })
    if (revocations !== undefined) onShutdown('revocations', () => revocations.close())

    const audit = await createAuditLog(nc, {
      source: instanceId,
      maxPending: config.audit.maxPending,
      ackTimeoutMs: config.audit.ackTimeoutMs,
      replicas: config.nats.replicas,
    })
    onShutdown('audit', () => audit.close())

    const bucket = { replicas: config.nats.replicas, history: 5 }
    const policies = await createPolicyStore(await KvRepository.open<PolicyRecord>(nc, POLICY_BUCKET, bucket), {
      markers: await KvRepository.open<SyncMarker>(nc, POLICY_BUCKET, bucket),
      replica: instanceId,
      syncTimeoutMs: config.policySyncTimeoutMs,
      onError: (err) => log.warn({ err }, 'policy index'),
    })
    onShutdown('policy store', () => policies.close())
    log.info({ policies: policies.size }, 'policies loaded')

    // oneM2M tokens: the DAS servers each tenant trusts and, with das.issuers, this service as DAS.
    let signer: KmsDasSigner | undefined
    if (config.das.issuers.length > 0) {
      const k = config.das.kms
      const kms = createDasKms({
        target: k.target,
        ...(k.tls === undefined ? {} : { tls: k.tls }),
        ...(k.tokenFile === undefined ? {} : { token: await readSecretFile(k.tokenFile) }),
        timeoutMs: k.timeoutMs,
      })
      onShutdown('kms client', () => kms.close())
      signer = createKmsDasSigner(config.das.issuers, kms, { cacheMs: config.das.keyCacheMs })
    }
    const trust = createDasTrust(
      config.das.trusted,
      signer === undefined ? undefined : { issuers: config.das.issuers, signer },
    )

    const ops = createAuthzOperations({
      store: policies,
      index: policies,
      audit: createAuditSink(audit, systemClock),
      clock: systemClock,
      sampler: { next: Math.random },
      allowSampleRate: config.audit.allowSampleRate,
      das: {
        trust,
        ...(signer === undefined ? {} : { signer }),
        settings: { clockToleranceSec: config.das.clockToleranceSec, maxTokenBytes: config.das.maxTokenBytes },
      },
    })

    const server = createGrpcServer(config.grpc, {
      log,
      // Platform services (mTLS as m2msec://_platform/<service>, role service) act for the tenant
      // they name in the m2msec-tenant header; everyone else stays in their own tenant.
      authenticator: createServiceAuthenticator(
        config.auth,
        log,
        revocations === undefined ? undefined : (tenant, jti) => revocations.isRevoked(tenant, jti),
      ),
      reflection: [{ descriptorSetPath }],
    })
    server.addUnaryService(AuthorizationService, createAuthzGrpcService(ops))
    onShutdown('grpc', () => server.shutdown())
    const address = await server.listen()
    return { address, ops, policies, shutdown }
  } catch (err) {
    await shutdown()
    throw err
  }
}
