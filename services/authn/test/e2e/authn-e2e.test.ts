/**
 * End to end on real processes: nats-server (JetStream), the KMS as a child process (mTLS with
 * the development PKI) and two authn replicas in this process, talking over gRPC and HTTP.
 *
 * The KMS does not wrap its authenticator in platformServiceAuthenticator yet, and its
 * development mTLS authenticator refuses the `_platform` tenant, so authn reaches it here with
 * a certificate of the test tenant (`m2msec://acme/authn`, roles admin and service) instead of
 * `m2msec://_platform/authn`. authn sends `m2msec-tenant` on every call either way.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import {
  compactDecrypt,
  CompactEncrypt,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type JWK,
} from 'jose'
import { fromGrpcError, createLogger, promiseClient, tokenAuthenticator, type PromiseClient } from '@m2msec/runtime'
import {
  AddCredentialRequest,
  AuthenticationClient,
  AuthenticationService,
  CreateTenantRequest,
  DisableEntityRequest,
  EntityKind,
  GetEntityRequest,
  IntrospectRequest,
  IssueTokenRequest,
  ListEntitiesRequest,
  RegisterEntityRequest,
  RevokeTokenRequest,
  RotateSigningKeyRequest,
  ServerProofType,
} from '@m2msec/proto/authn/v1'
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
import { authnConfigSchema } from '../../src/config.ts'
import { startAuthn, type AuthnApp } from '../../src/app.ts'
import { createTestCa, issueEntityCert, type TestCa } from '../test-pki.ts'

type Authn = PromiseClient<typeof AuthenticationService>

const TENANT = 'acme'
const DEVICE = 'urn:dev:mac:0024befffe804ff1'
const CERT_DEVICE = '/mn-cse-7'
const ENDPOINT = 'm2msec-authn-token'
const OPERATOR_TOKEN = `operator-${randomBytes(16).toString('hex')}`

let dir: TmpDir
let nats: NatsServer
let pki: DevPki
let kms: KmsProcess
let replicaA: AuthnApp
let replicaB: AuthnApp
let ca: TestCa
const channels: grpc.Client[] = []

function client(app: AuthnApp, creds: grpc.ChannelCredentials): Authn {
  const c = new AuthenticationClient(`localhost:${app.address.port}`, creds)
  channels.push(c)
  return promiseClient(AuthenticationService, c)
}

async function mtls(tenant: string, principal: string, roles: string[]): Promise<grpc.ChannelCredentials> {
  const cert = await pki.issueClientCert({ tenant, principal, roles })
  return grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem))
}

function bearer(token: string): { metadata: grpc.Metadata } {
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${token}`)
  return { metadata }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return fromGrpcError(err as grpc.ServiceError).code
  }
  return 'resolved'
}

function hs256(key: Uint8Array, kid: string, sub = DEVICE): Promise<string> {
  return new SignJWT({ jti: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: 'HS256', kid })
    .setIssuer(sub)
    .setSubject(sub)
    .setAudience(ENDPOINT)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(key)
}

async function startReplica(name: string): Promise<AuthnApp> {
  const kmsCert = await pki.issueClientCert({ tenant: TENANT, principal: 'authn', roles: ['admin', 'service'] })
  const certFile = join(dir.path, `${name}-kms.pem`)
  const keyFile = join(dir.path, `${name}-kms.key`)
  await writeFile(certFile, kmsCert.certPem)
  await writeFile(keyFile, kmsCert.keyPem, { mode: 0o600 })
  const tokenFile = join(dir.path, 'operator.token')
  await writeFile(tokenFile, OPERATOR_TOKEN, { mode: 0o600 })
  const config = authnConfigSchema.parse({
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
    kms: { target: kms.target, tls: { caFile: pki.paths.caCert, certFile, keyFile } },
    auth: { mtls: true, devTokenFile: tokenFile },
    // The throughput test issues 60 tokens for one device at once, above the default per-entity rate.
    flood: { entityRatePerSec: 1000, entityBurst: 1000 },
    log: { level: 'warn' },
  })
  return startAuthn(config, createLogger({ level: 'warn', service: `authn-${name}` }, { write: () => undefined }))
}

describe('authn end to end (nats-server, KMS process, two replicas)', () => {
  let operator: Authn
  let adminA: Authn
  let adminB: Authn
  let anonA: Authn
  let anonB: Authn
  let deviceKey: Uint8Array
  let deviceKid: string

  before(async () => {
    dir = await tmpDir('authn-e2e')
    nats = await startNats()
    pki = await createDevPki(join(dir.path, 'pki'))
    kms = await startKmsProcess({ natsUrl: nats.url, pki })
    replicaA = await startReplica('a')
    replicaB = await startReplica('b')
    const tls = grpc.credentials.createSsl(Buffer.from(pki.caCertPem))
    operator = client(replicaA, tls)
    adminA = client(replicaA, await mtls(TENANT, 'admin-1', ['admin']))
    adminB = client(replicaB, await mtls(TENANT, 'admin-1', ['admin']))
    anonA = client(replicaA, tls)
    anonB = client(replicaB, tls)
    ca = await createTestCa('acme devices CA')
  })

  after(async () => {
    for (const c of channels) c.close()
    await replicaA?.shutdown()
    await replicaB?.shutdown()
    await kms?.stop()
    await nats?.stop()
    await dir?.cleanup()
  })

  test('operator creates the tenant; its signing key lives in the KMS', async () => {
    const res = await operator.createTenant(
      CreateTenantRequest.fromPartial({ tenantId: TENANT, displayName: 'ACME', trustAnchorsPem: [ca.pem] }),
      bearer(OPERATOR_TOKEN),
    )
    assert.equal(res.tenant?.signingKeyId, 'authn-signing-acme')
    assert.equal(res.tenant?.trustAnchors.length, 1)
    assert.equal(
      await codeOf(operator.createTenant(CreateTenantRequest.fromPartial({ tenantId: 'x' }), {})),
      'ERR_UNAUTHENTICATED',
    )
    assert.equal(
      await codeOf(adminA.createTenant(CreateTenantRequest.fromPartial({ tenantId: 'globex' }))),
      'ERR_PERMISSION_DENIED',
    )
  })

  test('a device with a symmetric credential generated in the KMS, delivered wrapped', async () => {
    await adminA.registerEntity(
      RegisterEntityRequest.fromPartial({ entityId: DEVICE, kind: EntityKind.ENTITY_KIND_DEVICE, roles: ['device'] }),
    )
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
    const res = await adminA.addCredential(
      AddCredentialRequest.fromPartial({
        entityId: DEVICE,
        credential: {
          $case: 'symmetric',
          value: {
            source: { $case: 'generate', value: { deliverToPublicJwk: JSON.stringify(await exportJWK(publicKey)) } },
          },
        },
      }),
    )
    deviceKid = res.credential?.id ?? ''
    deviceKey = (await compactDecrypt(res.wrappedKey, privateKey)).plaintext
    assert.equal(deviceKey.length, 32)
    assert.match(res.credential?.kmsKeyId ?? '', /^[a-z2-7]{26}$/)
  })

  let accessToken = ''
  let tokenId = ''

  test('HS256 assertion → access token and a server proof the device verifies; replay refused on the other replica', async () => {
    const assertion = await hs256(deviceKey, deviceKid)
    const res = await anonA.issueToken(IssueTokenRequest.fromPartial({ tenant: TENANT, assertion }))
    accessToken = res.accessToken
    tokenId = res.tokenId
    assert.equal(res.tokenType, 'Bearer')
    assert.equal(res.loa, 2)
    assert.equal(res.serverProofType, ServerProofType.SERVER_PROOF_TYPE_HMAC_SHA256)
    const ajti = decodeJwt(assertion).jti as string
    const expected = createHmac('sha256', deviceKey)
      .update(`m2msec-server-proof\0${ajti}\0${res.tokenId}`)
      .digest('base64url')
    assert.equal(res.serverProof, expected, 'server proof')
    assert.equal(
      await codeOf(anonB.issueToken(IssueTokenRequest.fromPartial({ tenant: TENANT, assertion }))),
      'ERR_REPLAY',
    )
    assert.equal(
      await codeOf(
        anonB.issueToken(
          IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: await hs256(randomBytes(32), deviceKid) }),
        ),
      ),
      'ERR_TOKEN_INVALID',
    )
  })

  test('the token verifies against the JWKS fetched over HTTP (jose and python jwcrypto)', async () => {
    const url = `${replicaB.jwksUrl}/.well-known/jwks.json`
    const { payload } = await jwtVerify(accessToken, createRemoteJWKSet(new URL(url)), {
      issuer: 'm2msec-authn',
      audience: 'm2msec',
      typ: 'at+jwt',
      algorithms: ['ES256'],
    })
    assert.deepEqual([payload.sub, payload['tenant'], payload['loa']], [DEVICE, TENANT, 2])
    const perTenant = (await (await fetch(`${replicaA.jwksUrl}/tenants/${TENANT}/jwks.json`)).json()) as { keys: JWK[] }
    assert.deepEqual(
      perTenant.keys.map((k) => k.kid),
      ['authn-signing-acme/1'],
    )
    assert.equal((await fetch(`${replicaA.jwksUrl}/tenants/nope/jwks.json`)).status, 404)
    assert.deepEqual(await pythonVerify(url, accessToken), { sub: DEVICE, tenant: TENANT, jti: tokenId })
  })

  test('the token calls protected RPCs on the other replica, with the device’s rights only', async () => {
    const self = await anonB.getEntity(GetEntityRequest.fromPartial({ entityId: DEVICE }), bearer(accessToken))
    assert.equal(self.entity?.id, DEVICE)
    assert.equal(
      await codeOf(anonB.listEntities(ListEntitiesRequest.fromPartial({}), bearer(accessToken))),
      'ERR_PERMISSION_DENIED',
    )
    const intro = await anonB.introspect(IntrospectRequest.fromPartial({ token: accessToken }), bearer(accessToken))
    assert.equal(intro.active, true)
    assert.equal(intro.claims?.jti, tokenId)
    const verifier = tokenAuthenticator({
      jwks: `${replicaB.jwksUrl}/tenants/${TENANT}/jwks.json`,
      issuer: 'm2msec-authn',
      audience: 'm2msec',
    })
    assert.deepEqual(await verifier.authenticate(bearer(accessToken)), {
      tenant: TENANT,
      id: DEVICE,
      roles: ['device'],
      via: 'token',
    })
  })

  test('revocation on replica A reaches replica B within a second', async (t) => {
    await adminA.revokeToken(RevokeTokenRequest.fromPartial({ tokenId }))
    const started = performance.now()
    for (;;) {
      const res = await adminB.introspect(IntrospectRequest.fromPartial({ token: accessToken }))
      if (!res.active) break
      assert.ok(performance.now() - started < 1000, 'still active after 1 s')
      await new Promise((r) => setTimeout(r, 5))
    }
    const ms = performance.now() - started
    t.diagnostic(`revocation seen by replica B after ${ms.toFixed(1)} ms`)
    assert.equal(
      await codeOf(anonB.getEntity(GetEntityRequest.fromPartial({ entityId: DEVICE }), bearer(accessToken))),
      'ERR_TOKEN_REVOKED',
    )
  })

  test('certificate credential: ES256 assertion, loa 3, cnf x5t#S256, JWS server proof', async () => {
    await adminA.registerEntity(
      RegisterEntityRequest.fromPartial({ entityId: CERT_DEVICE, kind: EntityKind.ENTITY_KIND_CSE }),
    )
    const leaf = await issueEntityCert(ca, { uri: CERT_DEVICE, cn: 'mn-cse-7' })
    const cred = await adminB.addCredential(
      AddCredentialRequest.fromPartial({
        entityId: CERT_DEVICE,
        credentialId: 'cert-2026',
        credential: { $case: 'certificate', value: { certificateChainPem: leaf.pem } },
      }),
    )
    assert.equal(cred.credential?.certificateSubject, 'CN=mn-cse-7')
    const assertion = await new SignJWT({ jti: randomBytes(16).toString('base64url') })
      .setProtectedHeader({ alg: 'ES256', kid: 'cert-2026' })
      .setIssuer(CERT_DEVICE)
      .setSubject(CERT_DEVICE)
      .setAudience(ENDPOINT)
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(leaf.privateKey)
    const res = await anonB.issueToken(
      IssueTokenRequest.fromPartial({ tenant: TENANT, assertion, audience: '/in-cse' }),
    )
    const jwks = createRemoteJWKSet(new URL(`${replicaA.jwksUrl}/tenants/${TENANT}/jwks.json`))
    const token = await jwtVerify(res.accessToken, jwks, { audience: '/in-cse' })
    assert.equal(token.payload['loa'], 3)
    assert.deepEqual(token.payload['cnf'], { 'x5t#S256': cred.credential?.certificateSha256Thumbprint })
    assert.equal(res.serverProofType, ServerProofType.SERVER_PROOF_TYPE_JWS_ES256)
    const proof = await jwtVerify(res.serverProof, jwks, { typ: 'm2msec-server-proof+jwt', audience: CERT_DEVICE })
    assert.deepEqual([proof.payload['ajti'], proof.payload['tjti']], [decodeJwt(assertion).jti, res.tokenId])
  })

  test('symmetric credential imported as known bytes, wrapped for a KMS key of the tenant', async () => {
    const kmsAdmin = new KeyManagementClient(kms.target, await mtls(TENANT, 'kms-admin', ['admin']))
    channels.push(kmsAdmin)
    const kmsApi = promiseClient(KeyManagementService, kmsAdmin)
    const unwrapping = await kmsApi.createKey(
      CreateKeyRequest.fromPartial({
        keySpec: {
          keyId: 'device-import',
          algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_ECDH,
          usagePolicy: [{ principals: ['role:service'], operations: [KeyOperation.KEY_OPERATION_UNWRAP] }],
        },
      }),
    )
    const recipient = await importJWK(
      JSON.parse(unwrapping.key?.versions[0]?.publicJwk ?? '{}') as JWK,
      'ECDH-ES+A256KW',
    )
    const known = randomBytes(32)
    const wrappedKey = await new CompactEncrypt(known)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(recipient)
    const id = 'urn:dev:mac:0024befffe804ff3'
    await adminA.registerEntity(
      RegisterEntityRequest.fromPartial({ entityId: id, kind: EntityKind.ENTITY_KIND_DEVICE }),
    )
    const cred = await adminA.addCredential(
      AddCredentialRequest.fromPartial({
        entityId: id,
        credentialId: 'psk-1',
        credential: {
          $case: 'symmetric',
          value: { source: { $case: 'import', value: { wrappedKey, unwrappingKeyId: 'device-import' } } },
        },
      }),
    )
    assert.equal(cred.wrappedKey, '')
    const res = await anonA.issueToken(
      IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: await hs256(known, 'psk-1', id) }),
    )
    assert.equal(decodeJwt(res.accessToken).sub, id)
  })

  test('disabling the entity on one replica stops token issuance on the other at once', async () => {
    const id = 'urn:dev:mac:0024befffe804ff4'
    await adminA.registerEntity(
      RegisterEntityRequest.fromPartial({ entityId: id, kind: EntityKind.ENTITY_KIND_DEVICE }),
    )
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
    const cred = await adminA.addCredential(
      AddCredentialRequest.fromPartial({
        entityId: id,
        credential: {
          $case: 'symmetric',
          value: {
            source: { $case: 'generate', value: { deliverToPublicJwk: JSON.stringify(await exportJWK(publicKey)) } },
          },
        },
      }),
    )
    const key = (await compactDecrypt(cred.wrappedKey, privateKey)).plaintext
    await adminA.disableEntity(DisableEntityRequest.fromPartial({ entityId: id }))
    const assertion = await hs256(key, cred.credential?.id ?? '', id)
    assert.equal(
      await codeOf(anonB.issueToken(IssueTokenRequest.fromPartial({ tenant: TENANT, assertion }))),
      'ERR_TOKEN_INVALID',
    )
  })

  test('signing key rotation: new kid on both replicas, old tokens still verify (jwcrypto)', async () => {
    const old = await anonA.issueToken(
      IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: await hs256(deviceKey, deviceKid) }),
    )
    const rotated = await adminA.rotateSigningKey(RotateSigningKeyRequest.fromPartial({}))
    assert.equal(rotated.version, 2)
    await new Promise((r) => setTimeout(r, 100))
    const fresh = await anonB.issueToken(
      IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: await hs256(deviceKey, deviceKid) }),
    )
    assert.equal(decodeProtectedHeader(fresh.accessToken).kid, 'authn-signing-acme/2')
    const url = `${replicaB.jwksUrl}/.well-known/jwks.json`
    const kids = ((await (await fetch(url)).json()) as { keys: JWK[] }).keys.map((k) => k.kid)
    assert.deepEqual(kids, ['authn-signing-acme/1', 'authn-signing-acme/2'])
    assert.equal((await pythonVerify(url, old.accessToken)).jti, old.tokenId)
    assert.equal((await pythonVerify(url, fresh.accessToken)).jti, fresh.tokenId)
  })

  test('numbers: token issuance latency and throughput through gRPC', async (t) => {
    const n = 60
    const assertions = await Promise.all(Array.from({ length: n }, () => hs256(deviceKey, deviceKid)))
    const seq = performance.now()
    for (const a of assertions.slice(0, 20)) {
      await anonA.issueToken(IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: a }))
    }
    const perCall = (performance.now() - seq) / 20
    const par = performance.now()
    await Promise.all(
      assertions
        .slice(20)
        .map((a) => anonA.issueToken(IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: a }))),
    )
    const rate = (n - 20) / ((performance.now() - par) / 1000)
    t.diagnostic(`IssueToken (HS256): ${perCall.toFixed(1)} ms sequential, ${rate.toFixed(0)}/s with 40 in flight`)
    assert.ok(rate > 0)
  })
})

/**
 * Verifies a token with python-jwcrypto (OS package) against a JWKS URL; returns sub, tenant,
 * jti. Asynchronous on purpose: the JWKS is served by this very process.
 */
async function pythonVerify(jwksUrl: string, token: string): Promise<{ sub: string; tenant: string; jti: string }> {
  const script = [
    'import json, sys, urllib.request',
    'from jwcrypto import jwk, jwt',
    'keys = jwk.JWKSet.from_json(urllib.request.urlopen(sys.argv[1]).read().decode())',
    "t = jwt.JWT(jwt=sys.stdin.read().strip(), key=keys, algs=['ES256'])",
    'c = json.loads(t.claims)',
    "print(json.dumps({'sub': c['sub'], 'tenant': c['tenant'], 'jti': c['jti']}))",
  ].join('\n')
  const child = spawn('/usr/bin/python3', ['-c', script, jwksUrl], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdin.end(token)
  const status = await new Promise<number | null>((resolve) => child.once('close', resolve))
  assert.equal(status, 0, `jwcrypto failed: ${stderr}`)
  return JSON.parse(stdout) as { sub: string; tenant: string; jti: string }
}
