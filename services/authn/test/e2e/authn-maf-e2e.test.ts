/**
 * The newer authn features end to end on real processes: nats-server (JetStream), the KMS as
 * a child process (authn reaches it as the platform service `m2msec://_platform/authn`) and two
 * authn replicas in this process, over gRPC.
 *
 * - Flood protection: failures on replica A back the entity off on replica B too
 *   (RESOURCE_EXHAUSTED with retry information); a source that keeps failing is backed off.
 * - Pairwise pseudonyms: stable per relying party, different across parties; Introspect by
 *   the relying party (on the other replica) is active without the entity id.
 * - Session keys: the device's own HKDF over its PSK gives the key the KMS handle MACs with.
 * - MAF: client and key registration, retrieval by the target (same key bytes as the source),
 *   NOT_FOUND for a non-target, an expired registration gone and its KMS key retired by the
 *   sweeper, de-registration.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { compactDecrypt, decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { createLogger, fromGrpcError, promiseClient, RETRY_INFO_TYPE_URL, type PromiseClient } from '@m2msec/runtime'
import { RetryInfo, Status } from '@m2msec/proto/google/rpc'
import {
  AddCredentialRequest,
  AuthenticationClient,
  AuthenticationService,
  CreateTenantRequest,
  DeregisterMafKeyRequest,
  DeriveSessionKeyRequest,
  EntityKind,
  IntrospectRequest,
  IssueTokenRequest,
  RegisterEntityRequest,
  RegisterMafClientRequest,
  RegisterMafKeyRequest,
  RetrieveMafKeyRequest,
  SetAuthPolicyRequest,
  SubjectType,
} from '@m2msec/proto/authn/v1'
import { GetKeyRequest, KeyManagementClient, KeyManagementService, KeyState, MacRequest } from '@m2msec/proto/kms/v1'
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
import { authnConfigSchema } from '../../src/config.ts'
import { startAuthn, type AuthnApp } from '../../src/app.ts'

type Authn = PromiseClient<typeof AuthenticationService>
type Kms = PromiseClient<typeof KeyManagementService>

const TENANT = 'acme'
const DEVICE = 'urn:dev:mac:0024befffe80aa01'
const VICTIM = 'urn:dev:mac:0024befffe80aa02'
const SOURCE = 'Csensor01'
const TARGET = '/in-cse'
const OTHER = '/mn-cse-2'
const ENDPOINT = 'm2msec-authn-token'
const OPERATOR_TOKEN = `operator-${randomBytes(16).toString('hex')}`
const quiet = (service: string) => createLogger({ level: 'warn', service }, { write: () => undefined })

let dir: TmpDir
let nats: NatsServer
let pki: DevPki
let kms: KmsProcess
let replicaA: AuthnApp
let replicaB: AuthnApp
const channels: grpc.Client[] = []

function bearer(token: string): { metadata: grpc.Metadata } {
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${token}`)
  return { metadata }
}

async function refusal(
  p: Promise<unknown>,
): Promise<{ status: number; code: string; details: Record<string, unknown>; metadata: grpc.Metadata }> {
  try {
    await p
  } catch (err) {
    const e = fromGrpcError(err as grpc.ServiceError)
    const se = err as grpc.ServiceError
    return { status: se.code, code: e.code, details: e.details, metadata: se.metadata }
  }
  throw new Error('expected the call to fail')
}

async function mtls(tenant: string, principal: string, roles: string[]): Promise<grpc.ChannelCredentials> {
  const cert = await pki.issueClientCert({ tenant, principal, roles })
  return grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem))
}

function track<C extends grpc.Client>(c: C): C {
  channels.push(c)
  return c
}

function assertion(entity: string, psk: Uint8Array, kid: string): Promise<string> {
  return new SignJWT({ jti: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: 'HS256', kid })
    .setIssuer(entity)
    .setSubject(entity)
    .setAudience(ENDPOINT)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(psk)
}

async function recipient() {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
  return {
    jwk: JSON.stringify(await exportJWK(publicKey)),
    open: async (jwe: string) => Buffer.from((await compactDecrypt(jwe, privateKey)).plaintext),
  }
}

async function startReplica(name: string, svcCert: string, svcKey: string, tokenFile: string): Promise<AuthnApp> {
  return startAuthn(
    authnConfigSchema.parse({
      instanceId: `authn-${name}-${randomBytes(3).toString('hex')}`,
      grpc: {
        port: 0,
        tls: {
          certFile: pki.paths.serverCert,
          keyFile: pki.paths.serverKey,
          caFile: pki.paths.caCert,
          requireClientCert: false,
        },
      },
      http: { port: 0 },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: { caFile: pki.paths.caCert, certFile: svcCert, keyFile: svcKey } },
      auth: { mtls: true, devTokenFile: tokenFile },
      flood: { entityFreeFailures: 2, entityBaseDelayMs: 1500, sourceFreeFailures: 12, sourceBaseDelayMs: 1500 },
      sweep: { intervalMs: 300 },
    }),
    quiet(`authn-${name}`),
  )
}

describe(
  'authn flood protection, pseudonyms, session keys and MAF (nats-server, KMS, two replicas)',
  { timeout: 180_000 },
  () => {
    let anonA: Authn
    let anonB: Authn
    let admin: Authn
    let rpA: Authn
    let rpB: Authn
    let kmsAdmin: Kms
    let kmsChecker: Kms
    const psk = new Map<string, { key: Uint8Array; kid: string }>()
    const tokens = new Map<string, string>()

    async function register(entityId: string, kind: EntityKind): Promise<void> {
      await admin.registerEntity(RegisterEntityRequest.fromPartial({ entityId, kind, roles: ['device'] }))
      const r = await recipient()
      const res = await admin.addCredential(
        AddCredentialRequest.fromPartial({
          entityId,
          credential: {
            $case: 'symmetric',
            value: { source: { $case: 'generate', value: { deliverToPublicJwk: r.jwk } } },
          },
        }),
      )
      psk.set(entityId, { key: await r.open(res.wrappedKey), kid: res.credential?.id ?? '' })
    }

    async function issue(client: Authn, entityId: string, audience = ''): Promise<string> {
      const c = psk.get(entityId)
      assert.ok(c !== undefined)
      const res = await client.issueToken(
        IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: await assertion(entityId, c.key, c.kid), audience }),
      )
      return res.accessToken
    }

    before(async () => {
      dir = await tmpDir('authn-maf-e2e')
      nats = await startNats()
      pki = await createDevPki(join(dir.path, 'pki'))
      kms = await startKmsProcess({ natsUrl: nats.url, pki })
      const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'authn', roles: ['service'] })
      const svcCert = join(dir.path, 'authn-kms.pem')
      const svcKey = join(dir.path, 'authn-kms.key')
      const tokenFile = join(dir.path, 'operator.token')
      await writeFile(svcCert, svc.certPem)
      await writeFile(svcKey, svc.keyPem, { mode: 0o600 })
      await writeFile(tokenFile, OPERATOR_TOKEN, { mode: 0o600 })
      replicaA = await startReplica('a', svcCert, svcKey, tokenFile)
      replicaB = await startReplica('b', svcCert, svcKey, tokenFile)
      const tls = grpc.credentials.createSsl(Buffer.from(pki.caCertPem))
      const at = (app: AuthnApp) => `localhost:${app.address.port}`
      anonA = promiseClient(AuthenticationService, track(new AuthenticationClient(at(replicaA), tls)))
      anonB = promiseClient(AuthenticationService, track(new AuthenticationClient(at(replicaB), tls)))
      admin = promiseClient(
        AuthenticationService,
        track(new AuthenticationClient(at(replicaA), await mtls(TENANT, 'admin-1', ['admin']))),
      )
      rpA = promiseClient(
        AuthenticationService,
        track(new AuthenticationClient(at(replicaB), await mtls(TENANT, 'rp-a', []))),
      )
      rpB = promiseClient(
        AuthenticationService,
        track(new AuthenticationClient(at(replicaB), await mtls(TENANT, 'rp-b', []))),
      )
      kmsAdmin = promiseClient(
        KeyManagementService,
        track(new KeyManagementClient(kms.target, await mtls(TENANT, 'kms-admin', ['admin']))),
      )
      kmsChecker = promiseClient(
        KeyManagementService,
        track(new KeyManagementClient(kms.target, await mtls(TENANT, 'checker', ['mac-checker']))),
      )

      await anonA.createTenant(CreateTenantRequest.fromPartial({ tenantId: TENANT }), bearer(OPERATOR_TOKEN))
      await register(DEVICE, EntityKind.ENTITY_KIND_DEVICE)
      await register(VICTIM, EntityKind.ENTITY_KIND_DEVICE)
      await register(SOURCE, EntityKind.ENTITY_KIND_AE)
      await register(TARGET, EntityKind.ENTITY_KIND_CSE)
      await register(OTHER, EntityKind.ENTITY_KIND_CSE)
      for (const id of [DEVICE, SOURCE, TARGET, OTHER]) tokens.set(id, await issue(anonA, id))
    })

    after(async () => {
      for (const c of channels) c.close()
      await replicaA?.shutdown()
      await replicaB?.shutdown()
      await kms?.stop()
      await nats?.stop()
      await dir?.cleanup()
    })

    test('failures on one replica back the entity off on the other; RESOURCE_EXHAUSTED with retry info', async (t) => {
      const c = psk.get(VICTIM)!
      const wrong = randomBytes(32)
      for (let i = 0; i < 3; i++) {
        const r = await refusal(
          anonA.issueToken(
            IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: await assertion(VICTIM, wrong, c.kid) }),
          ),
        )
        assert.equal(r.code, 'ERR_TOKEN_INVALID')
      }
      // The KV watch carries the state to replica B within milliseconds.
      await new Promise((r) => setTimeout(r, 100))
      const started = performance.now()
      const r = await refusal(issue(anonB, VICTIM))
      assert.equal(r.status, grpc.status.RESOURCE_EXHAUSTED)
      assert.equal(r.code, 'ERR_RATE_LIMITED')
      assert.equal(r.details['scope'], 'entity')
      const retryMs = Number(r.details['retryAfterMs'])
      assert.ok(retryMs > 0 && retryMs <= 1500, `retryAfterMs ${retryMs}`)
      // The standard form of the same delay: google.rpc.RetryInfo in grpc-status-details-bin
      // (decoded with the generated types) and the gRFC A6 push-back trailer.
      const status = Status.decode(r.metadata.get('grpc-status-details-bin')[0] as Buffer)
      assert.equal(status.code, grpc.status.RESOURCE_EXHAUSTED)
      const retryAny = status.details.find((d) => d.typeUrl === RETRY_INFO_TYPE_URL)
      assert.ok(retryAny !== undefined, 'RetryInfo detail present')
      const delay = RetryInfo.decode(retryAny.value).retryDelay
      const delayMs = Number(delay?.seconds ?? 0n) * 1000 + (delay?.nanos ?? 0) / 1e6
      assert.ok(delayMs > 0, 'RetryInfo delay > 0')
      assert.equal(delayMs, retryMs)
      assert.deepEqual(r.metadata.get('grpc-retry-pushback-ms'), [String(retryMs)])
      await new Promise((res) => setTimeout(res, retryMs - (performance.now() - started) + 50))
      const token = await issue(anonB, VICTIM)
      assert.equal(decodeJwt(token).sub, VICTIM)
      t.diagnostic(`entity back-off seen on the other replica, retry after ${retryMs} ms`)
    })

    test('pairwise subjects per relying party; the relying party introspects without learning the entity', async () => {
      await admin.setAuthPolicy(
        SetAuthPolicyRequest.fromPartial({ policy: { subjectType: SubjectType.SUBJECT_TYPE_PAIRWISE } }),
      )
      const a1 = await issue(anonA, DEVICE, 'rp-a')
      const a2 = await issue(anonB, DEVICE, 'rp-a')
      const b1 = await issue(anonA, DEVICE, 'rp-b')
      const subA = decodeJwt(a1).sub as string
      assert.match(subA, /^pw-/)
      assert.equal(decodeJwt(a2).sub, subA)
      assert.notEqual(decodeJwt(b1).sub, subA)
      assert.equal(decodeJwt(await issue(anonA, DEVICE)).sub, DEVICE, 'the platform audience sees the entity id')

      const byRp = await rpA.introspect(IntrospectRequest.fromPartial({ token: a1 }))
      assert.equal(byRp.active, true)
      assert.equal(byRp.claims?.sub, subA)
      assert.equal(byRp.entityId, '')
      assert.equal((await rpB.introspect(IntrospectRequest.fromPartial({ token: a1 }))).active, false)
      const byAdmin = await admin.introspect(IntrospectRequest.fromPartial({ token: a1 }))
      assert.equal(byAdmin.entityId, DEVICE)
      await admin.setAuthPolicy(SetAuthPolicyRequest.fromPartial({ policy: {} }))
    })

    test('session key: the device HKDF over its PSK gives the same MAC as the KMS handle', async () => {
      const res = await anonA.deriveSessionKey(
        DeriveSessionKeyRequest.fromPartial({ entityId: DEVICE, grantees: ['role:mac-checker'] }),
        bearer(tokens.get(DEVICE)!),
      )
      const c = psk.get(DEVICE)!
      assert.equal(res.credentialId, c.kid)
      const sessionKey = Buffer.from(hkdfSync('sha256', c.key, res.salt, res.info, 32))
      const data = randomBytes(48)
      const server = await kmsChecker.mac(MacRequest.fromPartial({ keyId: res.kmsKeyId, data }))
      assert.deepEqual(Buffer.from(server.mac), createHmac('sha256', sessionKey).update(data).digest())
      assert.ok((res.expiresAt?.getTime() ?? 0) > Date.now() + 3500_000)
      // Another entity may not derive from this device's credential.
      const r = await refusal(
        anonA.deriveSessionKey(DeriveSessionKeyRequest.fromPartial({ entityId: DEVICE }), bearer(tokens.get(OTHER)!)),
      )
      assert.equal(r.code, 'ERR_NOT_FOUND')
    })

    test('MAF: registration, retrieval by the target only, expiry, de-registration', async () => {
      const src = await recipient()
      const tgt = await recipient()
      const expiration = new Date(Date.now() + 3600_000)
      for (const id of [SOURCE, TARGET, OTHER]) {
        const res = await anonA.registerMafClient(
          RegisterMafClientRequest.fromPartial({ expirationTime: expiration, adminFqdn: 'admin.acme.example' }),
          bearer(tokens.get(id)!),
        )
        assert.equal(res.client?.clientId, id)
      }
      const reg = await anonA.registerMafKey(
        RegisterMafKeyRequest.fromPartial({
          suid: 32,
          targetIds: [TARGET],
          expirationTime: expiration,
          recipientPublicJwk: src.jwk,
        }),
        bearer(tokens.get(SOURCE)!),
      )
      const keyIdentifier = reg.key?.keyIdentifier ?? ''
      assert.match(keyIdentifier, /^[0-9a-f]{32}@maf\.m2msec\.local$/)
      const kc = await src.open(reg.wrappedKey)
      assert.equal(kc.length, 32)

      const got = await anonB.retrieveMafKey(
        RetrieveMafKeyRequest.fromPartial({ keyIdentifier, recipientPublicJwk: tgt.jwk }),
        bearer(tokens.get(TARGET)!),
      )
      assert.deepEqual(await tgt.open(got.wrappedKey), kc)
      assert.equal(got.key?.sourceClientId, SOURCE)
      for (const id of [OTHER, SOURCE]) {
        const r = await refusal(
          anonB.retrieveMafKey(
            RetrieveMafKeyRequest.fromPartial({ keyIdentifier, recipientPublicJwk: tgt.jwk }),
            bearer(tokens.get(id)!),
          ),
        )
        assert.equal(r.status, grpc.status.NOT_FOUND, id)
      }

      // An expired registration is gone, and the sweeper retires its KMS key.
      const shortEnd = new Date(Date.now() + 4000)
      const short = await anonA.registerMafKey(
        RegisterMafKeyRequest.fromPartial({
          suid: 34,
          targetIds: [TARGET, OTHER],
          expirationTime: shortEnd,
          recipientPublicJwk: src.jwk,
        }),
        bearer(tokens.get(SOURCE)!),
      )
      const shortId = short.key?.relativeKeyId ?? ''
      await anonA.retrieveMafKey(
        RetrieveMafKeyRequest.fromPartial({ keyIdentifier: shortId, recipientPublicJwk: tgt.jwk }),
        bearer(tokens.get(OTHER)!),
      )
      await new Promise((r) => setTimeout(r, shortEnd.getTime() - Date.now() + 100))
      const expired = await refusal(
        anonA.retrieveMafKey(
          RetrieveMafKeyRequest.fromPartial({ keyIdentifier: shortId, recipientPublicJwk: tgt.jwk }),
          bearer(tokens.get(OTHER)!),
        ),
      )
      assert.equal(expired.code, 'ERR_NOT_FOUND')
      const keys = await kmsAdmin.listKeys({ pageSize: 1000, pageToken: '' })
      const kmsKey = keys.keys.find((k) => k.labels['maf-key'] === shortId)
      assert.ok(kmsKey !== undefined)
      const deadline = Date.now() + 5000
      let state = kmsKey.state
      while (state !== KeyState.KEY_STATE_DESTRUCTION_SCHEDULED && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100))
        state = (await kmsAdmin.getKey(GetKeyRequest.fromPartial({ keyId: kmsKey.id }))).key?.state ?? state
      }
      assert.equal(state, KeyState.KEY_STATE_DESTRUCTION_SCHEDULED)

      // De-registration by the source.
      await anonA.deregisterMafKey(
        DeregisterMafKeyRequest.fromPartial({ relativeKeyId: reg.key?.relativeKeyId ?? '' }),
        bearer(tokens.get(SOURCE)!),
      )
      const gone = await refusal(
        anonB.retrieveMafKey(
          RetrieveMafKeyRequest.fromPartial({ keyIdentifier, recipientPublicJwk: tgt.jwk }),
          bearer(tokens.get(TARGET)!),
        ),
      )
      assert.equal(gone.code, 'ERR_NOT_FOUND')
    })

    test('a source that keeps failing is backed off (last: it blocks this process for a while)', async () => {
      let refused: Awaited<ReturnType<typeof refusal>> | undefined
      for (let i = 0; i < 20 && refused?.code !== 'ERR_RATE_LIMITED'; i++) {
        refused = await refusal(anonA.issueToken(IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: 'x' })))
      }
      assert.equal(refused?.code, 'ERR_RATE_LIMITED')
      assert.equal(refused?.details['scope'], 'source')
      // Even a valid assertion from this source now waits, on the other replica too.
      await new Promise((r) => setTimeout(r, 100))
      const valid = await refusal(issue(anonB, DEVICE))
      assert.equal(valid.code, 'ERR_RATE_LIMITED')
    })
  },
)
