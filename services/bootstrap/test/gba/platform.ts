/**
 * The real-process platform of the GBA tests: nats-server (JetStream), the KMS as a child
 * process (mTLS, development PKI) and one bootstrap replica in this process, plus gRPC clients
 * for any caller and subscriber provisioning (K||OPc imported through the BSF).
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as jose from 'jose'
import { createLogger, fromGrpcError, promiseClient, type PromiseClient } from '@m2msec/runtime'
import {
  CreateSubscriberRequest,
  GbaSubscribersClient,
  GbaSubscribersService,
  GbaZnClient,
  GbaZnService,
  PkiClient,
  PkiService,
} from '@m2msec/proto/bootstrap/v1'
import {
  CreateKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  KeyOperation,
} from '@m2msec/proto/kms/v1'
import {
  createDevPki,
  startKmsProcess,
  startNats,
  tmpDir,
  type DevPki,
  type KmsProcess,
  type NatsServer,
  type TmpDir,
} from '@m2msec/testkit'
import { bootstrapConfigSchema } from '../../src/config.ts'
import { startBootstrap, type BootstrapApp } from '../../src/app.ts'

/** A caller: its client certificate names tenant, principal and roles. */
export interface Who {
  readonly tenant: string
  readonly principal: string
  readonly roles: string[]
}

/** A provisioned subscriber and its USIM secrets (K, OPc). */
export interface Device {
  readonly impi: string
  readonly k: Uint8Array
  readonly opc: Uint8Array
}

/** Options of {@link startGbaPlatform}. */
export interface GbaPlatformOptions {
  /** Temp dir prefix. */
  readonly name: string
  readonly bsfHost: string
  /** Tenants whose admin (`ops`) gets the `gba-import` transport key for K||OPc. */
  readonly tenants: readonly string[]
  /** The `zn` config section. */
  readonly zn?: Record<string, unknown>
  /** Also run the PKI (EST and CRL/OCSP on free ports) with GBA enrolment on. */
  readonly pki?: boolean
}

/** A running platform. */
export interface GbaPlatform {
  readonly dir: TmpDir
  readonly nats: NatsServer
  readonly pki: DevPki
  readonly kms: KmsProcess
  readonly app: BootstrapApp
  subscribers(who: Who): Promise<PromiseClient<typeof GbaSubscribersService>>
  zn(who: Who): Promise<PromiseClient<typeof GbaZnService>>
  pkiAdmin(who: Who): Promise<PromiseClient<typeof PkiService>>
  kmsClient(who: Who): Promise<PromiseClient<typeof KeyManagementService>>
  /** Provisions a new subscriber of `tenant` through its admin `ops`. */
  provision(tenant: string, opts?: { sqn?: bigint; enrolmentUris?: string[] }): Promise<Device>
  stop(): Promise<void>
}

/** The M2msecError code of a rejected call (gRPC or SDK), or 'resolved'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'string' ? code : fromGrpcError(err as grpc.ServiceError).code
  }
  return 'resolved'
}

/**
 * @example
 * ```ts
 * const p = await startGbaPlatform({ name: 'gba-e2e', bsfHost: 'bsf.example.org', tenants: ['acme'] })
 * const d = await p.provision('acme')
 * ```
 */
export async function startGbaPlatform(opts: GbaPlatformOptions): Promise<GbaPlatform> {
  const channels: grpc.Client[] = []
  const stops: Array<() => unknown> = []
  const stop = async () => {
    for (const c of channels) c.close()
    for (const s of stops.reverse()) await s()
    stops.length = 0
  }
  try {
    const dir = await tmpDir(opts.name)
    stops.push(() => dir.cleanup())
    const nats = await startNats()
    stops.push(() => nats.stop())
    const pki = await createDevPki(join(dir.path, 'pki'))
    const kms = await startKmsProcess({ natsUrl: nats.url, pki })
    stops.push(() => kms.stop())
    const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'bootstrap', roles: ['service'] })
    const certFile = join(dir.path, 'bsf-kms.pem')
    const keyFile = join(dir.path, 'bsf-kms.key')
    await writeFile(certFile, svc.certPem)
    await writeFile(keyFile, svc.keyPem, { mode: 0o600 })
    const serverTls = { certFile: pki.paths.serverCert, keyFile: pki.paths.serverKey }
    const config = bootstrapConfigSchema.parse({
      instanceId: `${opts.name}-${randomBytes(3).toString('hex')}`,
      grpc: { port: 0, tls: { ...serverTls, caFile: pki.paths.caCert, requireClientCert: false } },
      auth: { mtls: true },
      ub: { port: 0 },
      gba: { bsfHost: opts.bsfHost, realm: opts.bsfHost, estEnrolment: opts.pki === true },
      ...(opts.zn === undefined ? {} : { zn: opts.zn }),
      ...(opts.pki === true ? { pki: { est: { port: 0, tls: serverTls }, revocation: { port: 0 } } } : {}),
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: { caFile: pki.paths.caCert, certFile, keyFile } },
      log: { level: 'warn' },
    })
    const app = await startBootstrap(config, createLogger({ level: 'warn', service: opts.name }))
    stops.push(() => app.shutdown())

    const creds = async (who: Who) => {
      const c = await pki.issueClientCert(who)
      return grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(c.keyPem), Buffer.from(c.certPem))
    }
    const bsfTarget = `localhost:${app.address.port}`
    const keep = <C extends grpc.Client>(c: C): C => (channels.push(c), c)
    const kmsClient = async (who: Who) =>
      promiseClient(KeyManagementService, keep(new KeyManagementClient(kms.target, await creds(who))))
    const subscribers = async (who: Who) =>
      promiseClient(GbaSubscribersService, keep(new GbaSubscribersClient(bsfTarget, await creds(who))))

    // Each tenant admin's transport key for K||OPc: the BSF may UNWRAP with it.
    const importKeys = new Map<string, jose.JWK>()
    for (const tenant of opts.tenants) {
      const admin = await kmsClient({ tenant, principal: 'ops', roles: ['admin'] })
      const created = await admin.createKey(
        CreateKeyRequest.fromPartial({
          keySpec: {
            keyId: 'gba-import',
            algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_ECDH,
            usagePolicy: [{ principals: ['svc:bootstrap', 'ops'], operations: [KeyOperation.KEY_OPERATION_UNWRAP] }],
          },
        }),
      )
      importKeys.set(tenant, JSON.parse(created.key?.versions[0]?.publicJwk ?? '{}') as jose.JWK)
    }

    let devices = 0
    return {
      dir,
      nats,
      pki,
      kms,
      app,
      subscribers,
      kmsClient,
      zn: async (who) => promiseClient(GbaZnService, keep(new GbaZnClient(bsfTarget, await creds(who)))),
      pkiAdmin: async (who) => promiseClient(PkiService, keep(new PkiClient(bsfTarget, await creds(who)))),
      async provision(tenant, p = {}) {
        const d: Device = {
          impi: `00101000000${String(++devices).padStart(4, '0')}@ims.mnc001.mcc001.3gppnetwork.org`,
          k: new Uint8Array(randomBytes(16)),
          opc: new Uint8Array(randomBytes(16)),
        }
        const jwe = await new jose.CompactEncrypt(Buffer.concat([d.k, d.opc]))
          .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
          .encrypt(await jose.importJWK(importKeys.get(tenant) ?? {}, 'ECDH-ES+A256KW'))
        await (
          await subscribers({ tenant, principal: 'ops', roles: ['admin'] })
        ).createSubscriber(
          CreateSubscriberRequest.fromPartial({
            impi: d.impi,
            milenageKey: { $case: 'import', value: { wrappedKey: jwe, unwrappingKeyId: 'gba-import', keyId: '' } },
            sqn: p.sqn ?? 0n,
            enrolmentUris: p.enrolmentUris ?? [],
          }),
        )
        return d
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
