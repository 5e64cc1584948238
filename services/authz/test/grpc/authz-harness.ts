/**
 * Starts real authz replicas in-process for service tests: one nats-server (testkit), N
 * replicas (`startAuthz` on the same NATS, so they share the policy bucket), mTLS with the
 * development PKI so tests can act as several tenants and principals, and typed clients from
 * @m2msec/proto.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { createLogger, promiseClient, type PromiseClient } from '@m2msec/runtime'
import { AuthorizationClient, AuthorizationService } from '@m2msec/proto/authz/v1'
import { createDevPki, startNats, tmpDir, type DevPki, type NatsServer } from '@m2msec/testkit'
import { authzConfigSchema } from '../../src/config.ts'
import { startAuthz, type AuthzApp } from '../../src/app.ts'

export interface Identity {
  readonly tenant: string
  readonly principal: string
  readonly roles: readonly string[]
}

export type Authz = PromiseClient<typeof AuthorizationService>

export interface AuthzHarness {
  readonly apps: readonly AuthzApp[]
  readonly nats: NatsServer
  /** `localhost:<port>` of each replica. */
  readonly targets: readonly string[]
  readonly caPem: string
  /** A client of replica `replica` (default 0) authenticated by a development client certificate for `who`. */
  client(who: Identity, replica?: number): Promise<Authz>
  /** Channel credentials with a development client certificate for `who`. */
  credentials(who: Identity): Promise<grpc.ChannelCredentials>
  /** A TLS client of replica 0 without a client certificate. */
  anonymousClient(): Authz
  /** Log lines the replicas wrote. */
  readonly logs: string[]
  stop(): Promise<void>
}

/** Extra services a test needs next to authz (e.g. the KMS), and the config sections that point at them. */
export interface HarnessExtras {
  readonly config: Record<string, unknown>
  stop(): Promise<void>
}

export async function startAuthzHarness(
  opts: {
    replicas?: number
    allowSampleRate?: number
    /** Runs after NATS and the PKI exist, before the replicas start. */
    extras?: (env: { pki: DevPki; natsUrl: string; dir: string }) => Promise<HarnessExtras>
  } = {},
): Promise<AuthzHarness> {
  const dir = await tmpDir('authz-harness')
  const nats = await startNats()
  const pki = await createDevPki(join(dir.path, 'pki'))
  const logs: string[] = []
  const apps: AuthzApp[] = []
  let extras: HarnessExtras | undefined
  try {
    extras = await opts.extras?.({ pki, natsUrl: nats.url, dir: dir.path })
    for (let i = 0; i < (opts.replicas ?? 1); i++) {
      const config = authzConfigSchema.parse({
        instanceId: `authz-test-${i}-${randomBytes(3).toString('hex')}`,
        grpc: {
          port: 0,
          tls: {
            certFile: pki.paths.serverCert,
            keyFile: pki.paths.serverKey,
            caFile: pki.paths.caCert,
            requireClientCert: false,
          },
        },
        nats: { servers: [nats.url] },
        auth: { mtls: true },
        audit: { allowSampleRate: opts.allowSampleRate ?? 0.01 },
        log: { level: 'info' },
        ...extras?.config,
      })
      const log = createLogger(
        { level: 'info', service: `authz-${i}` },
        { write: (line: string) => void logs.push(line) },
      )
      apps.push(await startAuthz(config, log))
    }
  } catch (err) {
    for (const a of apps) await a.shutdown()
    await extras?.stop()
    await nats.stop()
    await dir.cleanup()
    throw err
  }
  const targets = apps.map((a) => `localhost:${a.address.port}`)
  const clients: grpc.Client[] = []
  const ca = Buffer.from(pki.caCertPem)
  const credentials = async (who: Identity) => {
    const cert = await pki.issueClientCert({ tenant: who.tenant, principal: who.principal, roles: who.roles })
    return grpc.credentials.createSsl(ca, Buffer.from(cert.keyPem), Buffer.from(cert.certPem))
  }
  return {
    apps,
    nats,
    targets,
    caPem: pki.caCertPem,
    logs,
    credentials,
    async client(who, replica = 0) {
      const target = targets[replica]
      if (target === undefined) throw new Error(`no replica ${replica}`)
      const c = new AuthorizationClient(target, await credentials(who))
      clients.push(c)
      return promiseClient(AuthorizationService, c)
    },
    anonymousClient() {
      const c = new AuthorizationClient(targets[0] ?? '', grpc.credentials.createSsl(ca))
      clients.push(c)
      return promiseClient(AuthorizationService, c)
    },
    async stop() {
      for (const c of clients) c.close()
      for (const a of apps) await a.shutdown()
      await extras?.stop()
      await nats.stop()
      await dir.cleanup()
    },
  }
}
