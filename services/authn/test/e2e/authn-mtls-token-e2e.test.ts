/**
 * IssueToken with TLS client authentication (RFC 8705 style): nats-server, the KMS as a child
 * process, and authn in this process behind TLS whose CA bundle holds the development CA, the
 * tenant's device CA and a CA the tenant never registered. Only the tenant's trust anchors
 * decide: TLS merely makes the certificate visible to authn.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes, webcrypto } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { decodeJwt } from 'jose'
import { createLogger, fromGrpcError, promiseClient, type PromiseClient } from '@m2msec/runtime'
import {
  AuthenticationClient,
  AuthenticationService,
  CreateTenantRequest,
  EntityKind,
  IssueTokenRequest,
  RegisterEntityRequest,
  ServerProofType,
} from '@m2msec/proto/authn/v1'
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
import { createTestCa, issueEntityCert, type TestCa, type TestLeaf } from '../test-pki.ts'

type Authn = PromiseClient<typeof AuthenticationService>

const TENANT = 'acme'
const DEVICE = 'urn:dev:mac:0024befffe80aa01'
const OPERATOR_TOKEN = `operator-${randomBytes(16).toString('hex')}`

let dir: TmpDir
let nats: NatsServer
let pki: DevPki
let kms: KmsProcess
let authn: AuthnApp
let deviceCa: TestCa
let rogueCa: TestCa
const channels: grpc.Client[] = []

function client(creds: grpc.ChannelCredentials): Authn {
  const c = new AuthenticationClient(`localhost:${authn.address.port}`, creds)
  channels.push(c)
  return promiseClient(AuthenticationService, c)
}

async function keyPem(leaf: TestLeaf): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leaf.privateKey))
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`
}

async function withCert(leaf: TestLeaf): Promise<Authn> {
  const creds = grpc.credentials.createSsl(
    Buffer.from(pki.caCertPem),
    Buffer.from(await keyPem(leaf)),
    Buffer.from(leaf.pem),
  )
  return client(creds)
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return fromGrpcError(err as grpc.ServiceError).code
  }
  return 'resolved'
}

const tokenRequest = (entityId: string) => IssueTokenRequest.fromPartial({ tenant: TENANT, entityId })

describe('IssueToken with a TLS client certificate (RFC 8705)', () => {
  before(async () => {
    dir = await tmpDir('authn-mtls-token')
    nats = await startNats()
    pki = await createDevPki(join(dir.path, 'pki'))
    kms = await startKmsProcess({ natsUrl: nats.url, pki })
    deviceCa = await createTestCa('acme devices CA')
    rogueCa = await createTestCa('somebody else CA')
    const bundle = join(dir.path, 'client-cas.pem')
    await writeFile(bundle, [pki.caCertPem, deviceCa.pem, rogueCa.pem].join('\n'))
    const kmsCert = await pki.issueClientCert({ tenant: TENANT, principal: 'authn', roles: ['admin', 'service'] })
    const certFile = join(dir.path, 'kms.pem')
    const keyFile = join(dir.path, 'kms.key')
    await writeFile(certFile, kmsCert.certPem)
    await writeFile(keyFile, kmsCert.keyPem, { mode: 0o600 })
    const tokenFile = join(dir.path, 'operator.token')
    await writeFile(tokenFile, OPERATOR_TOKEN, { mode: 0o600 })
    const config = authnConfigSchema.parse({
      instanceId: `authn-mtls-${randomBytes(3).toString('hex')}`,
      grpc: {
        port: 0,
        tls: {
          certFile: pki.paths.serverCert,
          keyFile: pki.paths.serverKey,
          caFile: bundle,
          requireClientCert: false,
        },
      },
      http: { port: 0 },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: { caFile: pki.paths.caCert, certFile, keyFile } },
      auth: { mtls: true, devTokenFile: tokenFile },
      log: { level: 'warn' },
    })
    authn = await startAuthn(config, createLogger({ level: 'warn', service: 'authn' }, { write: () => undefined }))

    const metadata = new grpc.Metadata()
    metadata.set('authorization', `Bearer ${OPERATOR_TOKEN}`)
    const operator = client(grpc.credentials.createSsl(Buffer.from(pki.caCertPem)))
    await operator.createTenant(
      CreateTenantRequest.fromPartial({ tenantId: TENANT, displayName: 'ACME', trustAnchorsPem: [deviceCa.pem] }),
      { metadata },
    )
    const admin = await pki.issueClientCert({ tenant: TENANT, principal: 'admin-1', roles: ['admin'] })
    const adminClient = client(
      grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(admin.keyPem), Buffer.from(admin.certPem)),
    )
    await adminClient.registerEntity(
      RegisterEntityRequest.fromPartial({ entityId: DEVICE, kind: EntityKind.ENTITY_KIND_DEVICE, roles: ['device'] }),
    )
  })

  after(async () => {
    for (const c of channels) c.close()
    await authn?.shutdown()
    await kms?.stop()
    await nats?.stop()
    await dir?.cleanup()
  })

  test('a device certificate of a tenant trust anchor gets a token bound to it (cnf x5t#S256)', async () => {
    const leaf = await issueEntityCert(deviceCa, { uri: DEVICE, cn: 'meter' })
    const res = await (await withCert(leaf)).issueToken(tokenRequest(DEVICE))
    const claims = decodeJwt(res.accessToken)
    const x5t = createHash('sha256').update(new Uint8Array(leaf.cert.rawData)).digest('base64url')
    assert.deepEqual(claims['cnf'], { 'x5t#S256': x5t })
    assert.equal(claims['tenant'], TENANT)
    assert.deepEqual(claims['roles'], ['device'])
    assert.equal(res.loa, 3)
    assert.equal(res.serverProofType, ServerProofType.SERVER_PROOF_TYPE_UNSPECIFIED)
    assert.equal(res.serverProof, '')
    assert.equal(claims['jti'], res.tokenId)
  })

  test('neither an assertion nor a client certificate → UNAUTHENTICATED', async () => {
    const anon = client(grpc.credentials.createSsl(Buffer.from(pki.caCertPem)))
    assert.equal(await codeOf(anon.issueToken(tokenRequest(DEVICE))), 'ERR_UNAUTHENTICATED')
  })

  test('refused: a CA the tenant did not register, a certificate naming another entity, a platform identity', async () => {
    const rogue = await issueEntityCert(rogueCa, { uri: DEVICE, cn: 'meter' })
    assert.equal(await codeOf((await withCert(rogue)).issueToken(tokenRequest(DEVICE))), 'ERR_TOKEN_INVALID')

    const other = await issueEntityCert(deviceCa, { uri: 'urn:dev:mac:0024befffe80aa02', cn: 'other' })
    assert.equal(await codeOf((await withCert(other)).issueToken(tokenRequest(DEVICE))), 'ERR_TOKEN_INVALID')

    // The development mTLS authenticator's certificates (m2msec://acme/…) are platform identities.
    const platform = await pki.issueClientCert({ tenant: TENANT, principal: DEVICE, roles: ['device'] })
    const platformClient = client(
      grpc.credentials.createSsl(
        Buffer.from(pki.caCertPem),
        Buffer.from(platform.keyPem),
        Buffer.from(platform.certPem),
      ),
    )
    assert.equal(await codeOf(platformClient.issueToken(tokenRequest(DEVICE))), 'ERR_TOKEN_INVALID')

    // A certificate and an entity, but also an assertion: entity_id is only for TLS authentication.
    const leaf = await issueEntityCert(deviceCa, { uri: DEVICE, cn: 'meter' })
    assert.equal(
      await codeOf(
        (await withCert(leaf)).issueToken(
          IssueTokenRequest.fromPartial({ tenant: TENANT, entityId: DEVICE, assertion: 'a.b.c' }),
        ),
      ),
      'ERR_INVALID_ARGUMENT',
    )
  })
})
