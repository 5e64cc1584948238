/**
 * Starts a real KMS replica in-process for service tests: nats-server (testkit), the software SE
 * and a SoftHSM2-backed pkcs11 SE, mTLS with the development PKI so tests can act as several
 * tenants and principals, and typed clients from @m2msec/proto.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { createLogger, promiseClient, type PromiseClient } from '@m2msec/runtime'
import { KeyManagementClient, KeyManagementService } from '@m2msec/proto/kms/v1'
import { createDevPki, startNats, startSoftHsm, tmpDir, type NatsServer, type SoftHsmToken } from '@m2msec/testkit'
import { kmsConfigSchema } from '../../src/config.ts'
import { startKms, type KmsApp } from '../../src/app.ts'

export interface Identity {
  readonly tenant: string
  readonly principal: string
  readonly roles: readonly string[]
}

export type Kms = PromiseClient<typeof KeyManagementService>

export interface KmsHarness {
  readonly app: KmsApp
  readonly nats: NatsServer
  readonly target: string
  readonly caPem: string
  /** A client authenticated by a development client certificate for `who`. */
  client(who: Identity): Promise<Kms>
  /** Channel credentials with a development client certificate for `who`. */
  credentials(who: Identity): Promise<grpc.ChannelCredentials>
  /** A TLS client without a client certificate. */
  anonymousClient(): Kms
  /** Log lines the service wrote. */
  readonly logs: string[]
  stop(): Promise<void>
}

export async function startKmsHarness(opts: { pkcs11?: boolean; nats?: NatsServer } = {}): Promise<KmsHarness> {
  const dir = await tmpDir('kms-harness')
  const nats = opts.nats ?? (await startNats())
  const pki = await createDevPki(join(dir.path, 'pki'))
  const masterKeyFile = join(dir.path, 'master.key')
  await writeFile(masterKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 })
  let hsm: SoftHsmToken | undefined
  if (opts.pkcs11 === true) hsm = await startSoftHsm({ label: `kms-${randomBytes(4).toString('hex')}` })
  const config = kmsConfigSchema.parse({
    instanceId: `kms-test-${randomBytes(3).toString('hex')}`,
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
    secureEnvironments: [
      { name: 'software', type: 'software', options: { masterKeyFile } },
      ...(hsm === undefined
        ? []
        : [
            {
              name: 'hsm',
              type: 'pkcs11',
              options: {
                modulePath: hsm.modulePath,
                tokenLabel: hsm.tokenLabel,
                pinFile: hsm.pinFile,
                protectionLevel: 1,
              },
            },
          ]),
    ],
    auth: { mtls: true },
    log: { level: 'info' },
  })
  const logs: string[] = []
  const log = createLogger({ level: 'info', service: 'kms' }, { write: (line: string) => void logs.push(line) })
  const app = await startKms(config, log)
  const target = `localhost:${app.address.port}`
  const clients: grpc.Client[] = []
  const ca = Buffer.from(pki.caCertPem)
  const credentials = async (who: Identity) => {
    const cert = await pki.issueClientCert({ tenant: who.tenant, principal: who.principal, roles: who.roles })
    return grpc.credentials.createSsl(ca, Buffer.from(cert.keyPem), Buffer.from(cert.certPem))
  }
  return {
    app,
    nats,
    target,
    caPem: pki.caCertPem,
    logs,
    credentials,
    async client(who) {
      const c = new KeyManagementClient(target, await credentials(who))
      clients.push(c)
      return promiseClient(KeyManagementService, c)
    },
    anonymousClient() {
      const c = new KeyManagementClient(target, grpc.credentials.createSsl(ca))
      clients.push(c)
      return promiseClient(KeyManagementService, c)
    },
    async stop() {
      for (const c of clients) c.close()
      await app.shutdown()
      await hsm?.stop()
      if (opts.nats === undefined) await nats.stop()
      await dir.cleanup()
    },
  }
}
