/**
 * Issue 3 acceptance, end to end on real processes: nats-server (JetStream), two KMS replicas
 * as child processes (one master key, one NATS), authn and two authz replicas in this process.
 * Every API accepts authn's access tokens; the KMS and authz verify them against authn's JWKS
 * over HTTP and refuse revoked ones from the `authn-revoked` KV watch.
 *
 * A device registered with a PSK gets a token with an HS256 assertion (replay refused), uses
 * it on the KMS (a key whose usage policy names it) and on authz; a revocation reaches the
 * second KMS replica within a second; a policy change on one authz replica changes the
 * decision on the other. Refusals: no token UNAUTHENTICATED, a non-admin on an admin RPC
 * PERMISSION_DENIED, another tenant's key or policy NOT_FOUND. The propagation times are
 * printed as test diagnostics.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { compactDecrypt, decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { authnConfigSchema, startAuthn, type AuthnApp } from '@m2msec/authn'
import { authzConfigSchema, startAuthz, type AuthzApp } from '@m2msec/authz'
import { createLogger, fromGrpcError, promiseClient, type PromiseClient } from '@m2msec/runtime'
import {
  AddCredentialRequest,
  AuthenticationClient,
  AuthenticationService,
  CreateTenantRequest,
  EntityKind,
  IssueTokenRequest,
  RegisterEntityRequest,
  RevokeTokenRequest,
} from '@m2msec/proto/authn/v1'
import {
  AuthorizationClient,
  AuthorizationService,
  CheckRequest,
  Decision,
  GetPolicyRequest,
  Operation,
  PutPolicyRequest,
} from '@m2msec/proto/authz/v1'
import {
  CreateKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  KeyOperation,
  MacRequest,
  SignRequest,
  VerifyMacRequest,
} from '@m2msec/proto/kms/v1'
import {
  createDevPki,
  freePort,
  startKmsProcess,
  startNats,
  tmpDir,
  type DevPki,
  type KmsProcess,
  type NatsServer,
  type TmpDir,
} from '@m2msec/testkit'

type Authn = PromiseClient<typeof AuthenticationService>
type Kms = PromiseClient<typeof KeyManagementService>
type Authz = PromiseClient<typeof AuthorizationService>

const ACME = 'acme'
const GLOBEX = 'globex'
const DEVICE = 'urn:dev:mac:0024befffe804ff1'
const ACME_ADMIN = 'Cconsole01'
const GLOBEX_ADMIN = 'Cglobexadmin'
const ENDPOINT = 'm2msec-authn-token'
const OPERATOR_TOKEN = `operator-${randomBytes(16).toString('hex')}`
const quiet = (service: string) => createLogger({ level: 'warn', service }, { write: () => undefined })

let dir: TmpDir
let nats: NatsServer
let pki: DevPki
let kms1: KmsProcess
let kms2: KmsProcess
let authn: AuthnApp
let authzA: AuthzApp
let authzB: AuthzApp
const channels: grpc.Client[] = []

function bearer(token: string): { metadata: grpc.Metadata } {
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${token}`)
  return { metadata }
}

/** The gRPC status and m2msec reason of a failed call ('resolved' when it succeeded). */
async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string } | 'resolved'> {
  try {
    await p
  } catch (err) {
    return { status: (err as grpc.ServiceError).code, code: fromGrpcError(err as grpc.ServiceError).code }
  }
  return 'resolved'
}

async function mtls(tenant: string, principal: string, roles: string[]): Promise<grpc.ChannelCredentials> {
  const cert = await pki.issueClientCert({ tenant, principal, roles })
  return grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem))
}

function track<C extends grpc.Client>(c: C): C {
  channels.push(c)
  return c
}

/** Polls `probe` every 2 ms until it is true; the elapsed ms. Fails after `limitMs`. */
async function until(probe: () => Promise<boolean>, limitMs: number, what: string): Promise<number> {
  const started = performance.now()
  while (!(await probe())) {
    assert.ok(performance.now() - started < limitMs, `${what}: not within ${limitMs} ms`)
    await new Promise((r) => setTimeout(r, 2))
  }
  return performance.now() - started
}

/** An HS256 client assertion (RFC 7523 style) of `entity` with its PSK. */
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

/** An accessControlPolicy granting RETRIEVE to `originators`, managed by the acme admin entity. */
function acp(id: string, originators: string[]) {
  return {
    id,
    privileges: { accessControlRule: [{ accessControlOriginators: originators, accessControlOperations: 2 }] },
    selfPrivileges: { accessControlRule: [{ accessControlOriginators: [ACME_ADMIN], accessControlOperations: 63 }] },
  }
}

/** May the device retrieve a resource governed by `acp-meters`? */
const METER_CHECK = CheckRequest.fromPartial({
  originator: DEVICE,
  operation: Operation.OPERATION_RETRIEVE,
  targetPolicyIds: ['acp-meters'],
  authenticated: true,
})

describe('authn tokens on KMS and authz replicas', { timeout: 180_000 }, () => {
  let anon: Authn
  let acmeAdmin: Authn
  let globexAdmin: Authn
  let k1: Kms
  let k2: Kms
  /** The KMS as authn's platform service identity sees it. */
  let asAuthn: Kms
  let zA: Authz
  let zB: Authz
  const psk = new Map<string, { key: Uint8Array; kid: string }>()

  async function startKms(jwksUrl: string, masterKeyFile: string): Promise<KmsProcess> {
    return startKmsProcess({
      natsUrl: nats.url,
      pki,
      masterKeyFile,
      env: { M2MSEC_KMS_AUTH__TOKENS__JWKS_URL: jwksUrl },
    })
  }

  async function startAuthzReplica(name: string, jwksUrl: string): Promise<AuthzApp> {
    const config = authzConfigSchema.parse({
      instanceId: `authz-${name}-${randomBytes(3).toString('hex')}`,
      grpc: { port: 0 },
      nats: { servers: [nats.url] },
      auth: { tokens: { jwksUrl } },
    })
    return startAuthz(config, quiet(`authz-${name}`))
  }

  /** Registers an entity with a PSK generated in the KMS and delivered wrapped to it. */
  async function registerWithPsk(
    tenant: string,
    admin: Authn,
    entityId: string,
    kind: EntityKind,
    roles: string[],
  ): Promise<void> {
    await admin.registerEntity(RegisterEntityRequest.fromPartial({ entityId, kind, roles }))
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
    const res = await admin.addCredential(
      AddCredentialRequest.fromPartial({
        entityId,
        credential: {
          $case: 'symmetric',
          value: {
            source: { $case: 'generate', value: { deliverToPublicJwk: JSON.stringify(await exportJWK(publicKey)) } },
          },
        },
      }),
    )
    const key = (await compactDecrypt(res.wrappedKey, privateKey)).plaintext
    psk.set(`${tenant}/${entityId}`, { key, kid: res.credential?.id ?? '' })
  }

  /** An access token signed in the KMS with acme's authn signing key, as authn itself signs. */
  async function signedWithAcmeKey(claims: Record<string, unknown>): Promise<string> {
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const input = `${part({ alg: 'ES256', typ: 'at+jwt', kid: `authn-signing-${ACME}/1` })}.${part(claims)}`
    const metadata = new grpc.Metadata()
    metadata.set('m2msec-tenant', ACME)
    const res = await asAuthn.sign(
      SignRequest.fromPartial({ keyId: `authn-signing-${ACME}`, message: Buffer.from(input) }),
      { metadata },
    )
    return `${input}.${Buffer.from(res.signature).toString('base64url')}`
  }

  async function tokenOf(tenant: string, entityId: string): Promise<{ token: string; tokenId: string }> {
    const cred = psk.get(`${tenant}/${entityId}`)
    assert.ok(cred !== undefined)
    const res = await anon.issueToken(
      IssueTokenRequest.fromPartial({ tenant, assertion: await assertion(entityId, cred.key, cred.kid) }),
    )
    return { token: res.accessToken, tokenId: res.tokenId }
  }

  before(async () => {
    dir = await tmpDir('authn-authz-e2e')
    nats = await startNats()
    pki = await createDevPki(join(dir.path, 'pki'))
    // The KMS replicas need authn's JWKS URL and authn needs the KMS: the JWKS port is fixed first.
    const jwksPort = await freePort()
    const jwksUrl = `http://127.0.0.1:${jwksPort}/.well-known/jwks.json`
    const masterKeyFile = join(dir.path, 'kms-master.key')
    await writeFile(masterKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 })
    kms1 = await startKms(jwksUrl, masterKeyFile)
    kms2 = await startKms(jwksUrl, masterKeyFile)

    // authn reaches the KMS as a platform service (mTLS m2msec://_platform/authn, role service).
    const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'authn', roles: ['service'] })
    const certFile = join(dir.path, 'authn-kms.pem')
    const keyFile = join(dir.path, 'authn-kms.key')
    const tokenFile = join(dir.path, 'operator.token')
    await writeFile(certFile, svc.certPem)
    await writeFile(keyFile, svc.keyPem, { mode: 0o600 })
    await writeFile(tokenFile, OPERATOR_TOKEN, { mode: 0o600 })
    authn = await startAuthn(
      authnConfigSchema.parse({
        instanceId: `authn-${randomBytes(3).toString('hex')}`,
        grpc: {
          port: 0,
          tls: {
            certFile: pki.paths.serverCert,
            keyFile: pki.paths.serverKey,
            caFile: pki.paths.caCert,
            requireClientCert: false,
          },
        },
        http: { port: jwksPort },
        nats: { servers: [nats.url] },
        kms: { target: kms1.target, tls: { caFile: pki.paths.caCert, certFile, keyFile } },
        auth: { mtls: true, devTokenFile: tokenFile },
      }),
      quiet('authn'),
    )
    authzA = await startAuthzReplica('a', jwksUrl)
    authzB = await startAuthzReplica('b', jwksUrl)

    const tls = grpc.credentials.createSsl(Buffer.from(pki.caCertPem))
    const authnTarget = `localhost:${authn.address.port}`
    anon = promiseClient(AuthenticationService, track(new AuthenticationClient(authnTarget, tls)))
    acmeAdmin = promiseClient(
      AuthenticationService,
      track(new AuthenticationClient(authnTarget, await mtls(ACME, 'admin-1', ['admin']))),
    )
    globexAdmin = promiseClient(
      AuthenticationService,
      track(new AuthenticationClient(authnTarget, await mtls(GLOBEX, 'admin-1', ['admin']))),
    )
    k1 = promiseClient(KeyManagementService, track(new KeyManagementClient(kms1.target, tls)))
    k2 = promiseClient(KeyManagementService, track(new KeyManagementClient(kms2.target, tls)))
    asAuthn = promiseClient(
      KeyManagementService,
      track(
        new KeyManagementClient(
          kms1.target,
          grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(svc.keyPem), Buffer.from(svc.certPem)),
        ),
      ),
    )
    const insecure = grpc.credentials.createInsecure()
    zA = promiseClient(AuthorizationService, track(new AuthorizationClient(authzA.address.address, insecure)))
    zB = promiseClient(AuthorizationService, track(new AuthorizationClient(authzB.address.address, insecure)))
  })

  after(async () => {
    for (const c of channels) c.close()
    await authzA?.shutdown()
    await authzB?.shutdown()
    await authn?.shutdown()
    await kms1?.stop()
    await kms2?.stop()
    await nats?.stop()
    await dir?.cleanup()
  })

  let device = { token: '', tokenId: '' }
  let admin = { token: '', tokenId: '' }
  let globex = { token: '', tokenId: '' }

  test('tenants and entities: a device with a PSK and a tenant admin in acme, an admin in globex', async () => {
    for (const tenantId of [ACME, GLOBEX]) {
      await anon.createTenant(CreateTenantRequest.fromPartial({ tenantId }), bearer(OPERATOR_TOKEN))
    }
    await registerWithPsk(ACME, acmeAdmin, DEVICE, EntityKind.ENTITY_KIND_DEVICE, ['device'])
    await registerWithPsk(ACME, acmeAdmin, ACME_ADMIN, EntityKind.ENTITY_KIND_AE, ['admin'])
    await registerWithPsk(GLOBEX, globexAdmin, GLOBEX_ADMIN, EntityKind.ENTITY_KIND_AE, ['admin'])
    assert.equal(psk.get(`${ACME}/${DEVICE}`)?.key.length, 32)
  })

  test('the device gets a token with an HMAC assertion; the same assertion again is refused', async () => {
    const cred = psk.get(`${ACME}/${DEVICE}`)!
    const signed = await assertion(DEVICE, cred.key, cred.kid)
    const res = await anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion: signed }))
    device = { token: res.accessToken, tokenId: res.tokenId }
    const claims = decodeJwt(device.token)
    assert.deepEqual([claims.sub, claims['tenant'], claims['roles']], [DEVICE, ACME, ['device']])
    assert.deepEqual(
      await refusal(anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion: signed }))),
      {
        status: grpc.status.UNAUTHENTICATED,
        code: 'ERR_REPLAY',
      },
    )
    admin = await tokenOf(ACME, ACME_ADMIN)
    globex = await tokenOf(GLOBEX, GLOBEX_ADMIN)
  })

  test('KMS: an admin token creates a key naming the device; the device token MACs with it on the other replica', async () => {
    await k1.createKey(
      CreateKeyRequest.fromPartial({
        keySpec: {
          keyId: 'meter-mac',
          algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
          usagePolicy: [
            {
              principals: [DEVICE],
              operations: [KeyOperation.KEY_OPERATION_MAC, KeyOperation.KEY_OPERATION_VERIFY_MAC],
            },
          ],
        },
      }),
      bearer(admin.token),
    )
    const data = Buffer.from('meter reading 42')
    const mac = await k2.mac(MacRequest.fromPartial({ keyId: 'meter-mac', data }), bearer(device.token))
    assert.equal(mac.mac.length, 32)
    const verified = await k1.verifyMac(
      VerifyMacRequest.fromPartial({ keyId: 'meter-mac', data, mac: mac.mac }),
      bearer(device.token),
    )
    assert.equal(verified.valid, true)
  })

  test('KMS refusals: no token, non-admin on an admin RPC, another tenant’s key, a tenant claim not of the signing key', async () => {
    const macOf = (keyId: string, opts: { metadata: grpc.Metadata }) =>
      k1.mac(MacRequest.fromPartial({ keyId, data: Buffer.from('x') }), opts)
    assert.deepEqual(await refusal(macOf('meter-mac', { metadata: new grpc.Metadata() })), {
      status: grpc.status.UNAUTHENTICATED,
      code: 'ERR_UNAUTHENTICATED',
    })
    assert.deepEqual(
      await refusal(
        k2.createKey(
          CreateKeyRequest.fromPartial({
            keySpec: { keyId: 'x', algorithm: KeyAlgorithm.KEY_ALGORITHM_AES_256_GCM },
          }),
          bearer(device.token),
        ),
      ),
      { status: grpc.status.PERMISSION_DENIED, code: 'ERR_PERMISSION_DENIED' },
    )
    // globex's key names the acme device and everyone: still invisible to acme's token.
    await k2.createKey(
      CreateKeyRequest.fromPartial({
        keySpec: {
          keyId: 'globex-mac',
          algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
          usagePolicy: [{ principals: ['*', DEVICE], operations: [KeyOperation.KEY_OPERATION_MAC] }],
        },
      }),
      bearer(globex.token),
    )
    assert.equal(
      (await k1.mac(MacRequest.fromPartial({ keyId: 'globex-mac', data: Buffer.from('x') }), bearer(globex.token))).mac
        .length,
      32,
    )
    assert.deepEqual(await refusal(macOf('globex-mac', bearer(device.token))), {
      status: grpc.status.NOT_FOUND,
      code: 'ERR_KEY_NOT_FOUND',
    })
    assert.deepEqual(await refusal(macOf('meter-mac', bearer(globex.token))), {
      status: grpc.status.NOT_FOUND,
      code: 'ERR_KEY_NOT_FOUND',
    })
    // The device's token with its tenant claim changed to globex: the signature no longer holds.
    const [h, , sig] = device.token.split('.') as [string, string, string]
    const claims = decodeJwt(device.token)
    const edited = `${h}.${Buffer.from(JSON.stringify({ ...claims, tenant: GLOBEX })).toString('base64url')}.${sig}`
    assert.deepEqual(await refusal(macOf('globex-mac', bearer(edited))), {
      status: grpc.status.UNAUTHENTICATED,
      code: 'ERR_TOKEN_INVALID',
    })
    // Validly signed with acme's signing key (through the KMS, as authn's service identity) but
    // claiming globex: refused, the kid names the tenant the key belongs to.
    const fresh = { ...claims, jti: randomBytes(16).toString('base64url') }
    assert.equal((await macOf('meter-mac', bearer(await signedWithAcmeKey(fresh)))).mac.length, 32)
    assert.deepEqual(
      await refusal(macOf('globex-mac', bearer(await signedWithAcmeKey({ ...fresh, tenant: GLOBEX })))),
      {
        status: grpc.status.UNAUTHENTICATED,
        code: 'ERR_TOKEN_INVALID',
      },
    )
  })

  test('authz: a policy changed on replica A changes the decision on replica B (token callers)', async (t) => {
    const put = (originators: string[]) =>
      zA.putPolicy(PutPolicyRequest.fromPartial({ policy: acp('acp-meters', originators) }), bearer(admin.token))
    const decisionOnB = async () => (await zB.check(METER_CHECK, bearer(device.token))).decision
    await put([DEVICE])
    const created = await until(async () => (await decisionOnB()) === Decision.DECISION_PERMIT, 1000, 'PERMIT on B')
    await put(['Cother'])
    const changed = await until(async () => (await decisionOnB()) === Decision.DECISION_DENY, 1000, 'DENY on B')
    t.diagnostic(
      `authz policy on A -> decision on B: created ${created.toFixed(1)} ms, changed ${changed.toFixed(1)} ms`,
    )

    assert.deepEqual(await refusal(zB.check(METER_CHECK)), {
      status: grpc.status.UNAUTHENTICATED,
      code: 'ERR_UNAUTHENTICATED',
    })
    assert.deepEqual(
      await refusal(
        zA.putPolicy(PutPolicyRequest.fromPartial({ policy: acp('acp-device', [DEVICE]) }), bearer(device.token)),
      ),
      { status: grpc.status.PERMISSION_DENIED, code: 'ERR_PERMISSION_DENIED' },
    )
    assert.deepEqual(
      await refusal(zB.getPolicy(GetPolicyRequest.fromPartial({ policyId: 'acp-meters' }), bearer(globex.token))),
      { status: grpc.status.NOT_FOUND, code: 'ERR_NOT_FOUND' },
    )
  })

  test('revocation in authn: the second KMS replica refuses the token within a second', async (t) => {
    const macOn = (k: Kms) =>
      k.mac(MacRequest.fromPartial({ keyId: 'meter-mac', data: Buffer.from('x') }), bearer(device.token))
    assert.equal((await macOn(k2)).mac.length, 32, 'accepted before the revocation')
    const requested = performance.now()
    await acmeAdmin.revokeToken(RevokeTokenRequest.fromPartial({ tokenId: device.tokenId }))
    const returned = performance.now()
    const seen = await until(
      async () => {
        const r = await refusal(macOn(k2))
        if (r === 'resolved') return false
        assert.deepEqual(r, { status: grpc.status.UNAUTHENTICATED, code: 'ERR_TOKEN_REVOKED' })
        return true
      },
      1000,
      'revoked on KMS replica 2',
    )
    t.diagnostic(
      `revocation propagation: KMS replica 2 refuses ${seen.toFixed(1)} ms after RevokeToken returned ` +
        `(${(returned - requested + seen).toFixed(1)} ms after it was sent)`,
    )
    assert.deepEqual(await refusal(macOn(k1)), { status: grpc.status.UNAUTHENTICATED, code: 'ERR_TOKEN_REVOKED' })
    assert.deepEqual(await refusal(zB.check(METER_CHECK, bearer(device.token))), {
      status: grpc.status.UNAUTHENTICATED,
      code: 'ERR_TOKEN_REVOKED',
    })
    // Only that token is revoked: a new assertion gives the device a working token again.
    const fresh = await tokenOf(ACME, DEVICE)
    assert.equal(
      (await k2.mac(MacRequest.fromPartial({ keyId: 'meter-mac', data: Buffer.from('x') }), bearer(fresh.token))).mac
        .length,
      32,
    )
  })
})
