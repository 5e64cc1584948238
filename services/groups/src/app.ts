/**
 * Builds and starts a groups replica from its configuration: NATS, the KV stores, the KMS (and
 * optionally authn) clients, the domain, the gRPC server. `main.ts` runs it until a signal;
 * tests start it in-process with a config object.
 */
import { hostname } from 'node:os'
import { connectNats, createRevocationSet } from '@m2msec/bus'
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
import { GroupsService } from '@m2msec/proto/groups/v1'
import type { GroupsConfig } from './config.ts'
import { createGroupsOperations, type GroupsOperations } from './domain/index.ts'
import { createGroupEventPublisher } from './events/publish.ts'
import { createGroupsGrpcService } from './grpc/service.ts'
import { createAuthnDirectory } from './kms/authn-directory.ts'
import { createKmsClient, type KmsClientOptions } from './kms/kms-client.ts'
import { openGroupStores } from './store/kv-stores.ts'

/** A running groups replica. */
export interface GroupsApp {
  readonly address: ListenAddress
  readonly ops: GroupsOperations
  /** Stops accepting calls, lets in-flight calls finish, then closes everything in reverse order. */
  shutdown(): Promise<void>
}

async function clientOptions(c: GroupsConfig['kms']): Promise<KmsClientOptions> {
  return {
    target: c.target,
    ...(c.tls === undefined ? {} : { tls: c.tls }),
    ...(c.tokenFile === undefined ? {} : { token: await readSecretFile(c.tokenFile) }),
    timeoutMs: c.timeoutMs,
  }
}

/**
 * @example
 * ```ts
 * const app = await startGroups(groupsConfigSchema.parse({ kms: { target }, ... }), log)
 * ```
 */
export async function startGroups(config: GroupsConfig, log: Logger): Promise<GroupsApp> {
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
  const instanceId = config.instanceId ?? `groups-${hostname()}-${process.pid}`
  try {
    const nc = await connectNats({
      servers: config.nats.servers,
      name: instanceId,
      ...(config.nats.tokenFile === undefined ? {} : { token: await readSecretFile(config.nats.tokenFile) }),
    })
    onShutdown('nats', () => nc.drain())
    const revocations =
      config.auth.tokens === undefined
        ? undefined
        : await createRevocationSet(nc, {
            replicas: config.nats.replicas,
            onError: (err) => log.warn({ err }, 'revocation entry unreadable'),
          })
    if (revocations !== undefined) onShutdown('revocations', () => revocations.close())

    const stores = await openGroupStores(nc, {
      replicas: config.nats.replicas,
      sessionTtlMs: Math.max(10 * 60_000, 2 * config.groups.challengeTtlMs),
    })
    const kms = createKmsClient(await clientOptions(config.kms))
    onShutdown('kms client', () => kms.close())
    const directory = config.authn.enabled
      ? createAuthnDirectory(await clientOptions(config.authn), systemClock)
      : undefined
    if (directory !== undefined) onShutdown('authn client', () => directory.close())

    const ops = createGroupsOperations({
      ...stores,
      kms,
      ...(directory === undefined ? {} : { directory }),
      events: createGroupEventPublisher(nc),
      clock: systemClock,
      random: systemRandom,
      settings: config.groups,
      onBackgroundError: (err) => log.warn({ err }, 'group background step failed'),
    })
    const server = createGrpcServer(config.grpc, {
      log,
      authenticator: createServiceAuthenticator(
        config.auth,
        log,
        revocations === undefined ? undefined : (tenant, jti) => revocations.isRevoked(tenant, jti),
      ),
      reflection: [{ descriptorSetPath }],
    })
    server.addUnaryService(GroupsService, createGroupsGrpcService(ops))
    onShutdown('grpc', () => server.shutdown())
    const address = await server.listen()
    return { address, ops, shutdown }
  } catch (err) {
    await shutdown()
    throw err
  }
}
