/**
 * The platform the groups end-to-end tests run on: a real nats-server (JetStream), the real KMS
 * as a child process (software SE, mTLS with the development PKI, a development admin token
 * for tenant `acme`), and the groups service in this process, which reaches the KMS as the
 * platform service `m2msec://_platform/groups`. Member credentials are imported into the KMS
 * the way authn registers them (HMAC_SHA256 keys); the test keeps their bytes to play the
 * devices.
 */
import { createHash, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { CompactEncrypt, importJWK, type JWK } from 'jose'
import { groupsConfigSchema, startGroups, type GroupsApp } from '@m2msec/groups'
import { GroupsClient, GroupsService } from '@m2msec/proto/groups/v1'
import {
  CreateKeyRequest,
  ImportKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
} from '@m2msec/proto/kms/v1'
import { createLogger, promiseClient, type PromiseClient } from '@m2msec/runtime'
import { groupsApi, type GroupsApi } from '@m2msec/sdk/groups'
import {
  createDevPki,
  startKmsProcess,
  startNats,
  tmpDir,
  type DevPki,
  type KmsProcess,
  type NatsServer,
} from '@m2msec/testkit'

export const TENANT = 'acme'

/** A device credential: its bytes (the device's copy) and the KMS key holding it. */
export interface Credential {
  readonly bytes: Uint8Array
  readonly keyId: string
}

export interface GroupsPlatform {
  readonly nats: NatsServer
  readonly kms: KmsProcess
  readonly groups: GroupsApp
  readonly pki: DevPki
  /** The groups API as a tenant admin (development token). */
  readonly admin: PromiseClient<typeof GroupsService>
  /** The KMS API as a tenant admin. */
  readonly kmsAdmin: PromiseClient<typeof KeyManagementService>
  /** Bearer metadata of the tenant admin. */
  adminCall(): { metadata: grpc.Metadata }
  /** The SDK view of the groups API for an entity of the tenant (mTLS client certificate). */
  apiFor(principal: string): Promise<GroupsApi>
  /** Imports a random 32-byte credential per id as HMAC_SHA256 KMS keys. */
  registerCredentials(ids: readonly string[]): Promise<Map<string, Credential>>
  /** Stops everything in reverse order (idempotent). */
  stop(): Promise<void>
}

/** Starts the platform; call `stop()` from `after` (it also runs when the start fails). */
export async function startGroupsPlatform(): Promise<GroupsPlatform> {
  const cleanups: (() => unknown)[] = []
  const after = (fn: () => unknown) => cleanups.push(fn)
  const stop = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn()
      } catch {
        // Best effort: the rest must still stop.
      }
    }
  }
  try {
    return await start(after, stop)
  } catch (err) {
    await stop()
    throw err
  }
}

async function start(after: (fn: () => unknown) => void, stop: () => Promise<void>): Promise<GroupsPlatform> {
  const dir = await tmpDir('m2msec-groups-e2e')
  after(() => dir.cleanup())
  const nats = await startNats()
  after(() => nats.stop())
  const pki = await createDevPki(join(dir.path, 'pki'))
  const adminToken = `admin-${randomBytes(16).toString('hex')}`
  const tokenFile = join(dir.path, 'admin.token')
  await writeFile(tokenFile, adminToken, { mode: 0o600 })
  const kms = await startKmsProcess({ natsUrl: nats.url, pki, devAdminTokenFile: tokenFile, devTenant: TENANT })
  after(() => kms.stop())

  const platformCert = await pki.issueClientCert({ tenant: '_platform', principal: 'groups', roles: ['service'] })
  const certFile = join(dir.path, 'groups.pem')
  const keyFile = join(dir.path, 'groups.key')
  await writeFile(certFile, platformCert.certPem)
  await writeFile(keyFile, platformCert.keyPem, { mode: 0o600 })
  const config = groupsConfigSchema.parse({
    instanceId: `groups-test-${randomBytes(3).toString('hex')}`,
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
    kms: { target: kms.target, tls: { caFile: pki.paths.caCert, certFile, keyFile }, timeoutMs: 60_000 },
    auth: { mtls: true, devAdminTokenFile: tokenFile, devTenant: TENANT },
    log: { level: 'warn' },
  })
  const groups = await startGroups(
    config,
    createLogger({ level: 'warn', service: 'groups' }, { write: () => undefined }),
  )
  after(() => groups.shutdown())
  const target = `localhost:${groups.address.port}`
  const channels: grpc.Client[] = []
  after(() => channels.forEach((c) => c.close()))
  const tlsOnly = grpc.credentials.createSsl(Buffer.from(pki.caCertPem))
  const adminClient = new GroupsClient(target, tlsOnly, { 'grpc.max_receive_message_length': 64 * 1024 * 1024 })
  const kmsClient = new KeyManagementClient(kms.target, tlsOnly)
  channels.push(adminClient, kmsClient)
  const adminCall = () => {
    const metadata = new grpc.Metadata()
    metadata.set('authorization', `Bearer ${adminToken}`)
    return { metadata }
  }
  const kmsAdmin = promiseClient(KeyManagementService, kmsClient)

  let kek: { keyId: string; jwk: JWK } | undefined
  return {
    nats,
    kms,
    groups,
    pki,
    admin: promiseClient(GroupsService, adminClient),
    kmsAdmin,
    adminCall,
    stop,
    async apiFor(principal) {
      const cert = await pki.issueClientCert({ tenant: TENANT, principal, roles: [] })
      const client = new GroupsClient(
        target,
        grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem)),
        { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
      )
      channels.push(client)
      return groupsApi(client)
    },
    async registerCredentials(ids) {
      if (kek === undefined) {
        const res = await kmsAdmin.createKey(
          CreateKeyRequest.fromPartial({ keySpec: { algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_ECDH } }),
          adminCall(),
        )
        const key = res.key!
        kek = { keyId: key.id, jwk: JSON.parse(key.versions[0]!.publicJwk) as JWK }
      }
      const wrapWith = await importJWK(kek.jwk, 'ECDH-ES+A256KW')
      const out = new Map<string, Credential>()
      const list = [...ids]
      for (let i = 0; i < list.length; i += 32) {
        await Promise.all(
          list.slice(i, i + 32).map(async (id) => {
            const bytes = new Uint8Array(randomBytes(32))
            const keyId = `cred-${createHash('sha256').update(id).digest('hex').slice(0, 24)}`
            const wrappedKey = await new CompactEncrypt(bytes)
              .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
              .encrypt(wrapWith)
            await kmsAdmin.importKey(
              ImportKeyRequest.fromPartial({
                wrappedKey,
                unwrappingKeyId: kek!.keyId,
                keySpec: { keyId, algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256, purpose: 'device credential' },
              }),
              adminCall(),
            )
            out.set(id, { bytes, keyId })
          }),
        )
      }
      return out
    },
  }
}
