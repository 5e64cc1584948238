/**
 * Builds and starts a KMS replica from its configuration: NATS, secure environments, stores,
 * audit log, domain, gRPC server. `main.ts` runs it until a signal; tests and benchmarks start
 * it in-process with a config object. Returns the listen address and an ordered shutdown.
 */
import { hostname } from 'node:os'
import { connectNats, createAuditLog, createAuditSink, createRevocationSet, KvRepository } from '@m2msec/bus'
import {
  createGrpcServer,
  createServiceAuthenticator,
  readSecretFile,
  systemClock,
  systemRandom,
  type ListenAddress,
  type Logger,
} from '@m2msec/runtime'
import { descriptorSetPath } from '@m2msec/proto'
import { KeyManagementService } from '@m2msec/proto/kms/v1'
import type { KmsConfig } from './config.ts'
import type { KeyRecord } from './domain/model.ts'
import type { KmsDeps, StoredSecret } from './domain/ports.ts'
import { createKmsOperations, type KmsOperations } from './domain/operations/index.ts'
import { createSecureEnvironments } from './se/from-config.ts'
import { createKeyStore } from './store/key-store.ts'
import { createSecretStore } from './store/secret-store.ts'
import { createKeyEventPublisher } from './events/publish.ts'
import { startDestructionSweeper } from './events/destruction-sweeper.ts'
import { createKmsGrpcService } from './grpc/service.ts'
import { openGroupKeys } from './group-keys/index.ts'

export interface KmsApp {
  readonly address: ListenAddress
  readonly ops: KmsOperations
  /** Stops accepting calls, lets in-flight calls finish, then closes everything in reverse order. */
  shutdown(): Promise<void>
}

export async function startKms(config: KmsConfig, log: Logger): Promise<KmsApp> {
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
  const instanceId = config.instanceId ?? `kms-${hostname()}-${process.pid}`
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

    const ses = await createSecureEnvironments(config.secureEnvironments, config.defaultSecureEnvironment)
    onShutdown('secure environments', () => ses.close())

    const audit = await createAuditLog(nc, {
      source: instanceId,
      maxPending: config.audit.maxPending,
      ackTimeoutMs: config.audit.ackTimeoutMs,
      flushIntervalMs: config.audit.flushIntervalMs,
      replicas: config.nats.replicas,
    })
    onShutdown('audit', () => audit.close())

    const keyRepo = await KvRepository.open<KeyRecord>(nc, 'kms-keys', { replicas: config.nats.replicas, history: 5 })
    const keys = await createKeyStore(keyRepo)
    onShutdown('key store', () => keys.close())
    const secretRepo = await KvRepository.open<StoredSecret>(nc, 'kms-secrets', { replicas: config.nats.replicas })

    const deps: KmsDeps = {
      keys,
      secrets: createSecretStore(secretRepo),
      ses,
      audit: createAuditSink(audit, systemClock),
      events: createKeyEventPublisher(nc),
      clock: systemClock,
      random: systemRandom,
      onBackgroundError: (err) => log.warn({ err }, 'event not published'),
    }
    const ops = createKmsOperations(deps)
    const groupKeys = await openGroupKeys(nc, deps, { replicas: config.nats.replicas })
    onShutdown('destruction sweeper', startDestructionSweeper(keys, ops, config.destroySweepMs, log))

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
    server.addUnaryService(KeyManagementService, createKmsGrpcService(ops))
    server.addUnaryService(groupKeys.definition, groupKeys.handlers)
    onShutdown('grpc', () => server.shutdown())
    const address = await server.listen()
    return { address, ops, shutdown }
  } catch (err) {
    await shutdown()
    throw err
  }
}
