/**
 * Issue 4 acceptance (and issue 3's GBA credentials), end to end on real processes:
 * nats-server (JetStream), the KMS as a child process (mTLS, accepts authn tokens through the
 * JWKS over HTTP), and the bootstrap service (BSF: Ub over HTTP, Zn over gRPC; PKI: EST over
 * HTTPS, CRL over HTTP) and authn in this process.
 *
 * A simulated fleet of the tenant acme: 5 GBA devices (simulated USIMs, `@m2msec/sdk/gba`)
 * bootstrap over Ub and sign HS256 assertions with Km (kid = B-TID), which authn fetches from
 * the BSF over Zn as the oneM2M MAF; 5 PKI devices enrol over EST with one-time tokens
 * (`@m2msec/sdk/pki`) and sign ES256 assertions with their certificate, which authn validates
 * against acme's PKI root CA (registered with AddTrustAnchors) and its CRL. Each device gets
 * an access token and uses it on a protected KMS call (Mac with a key whose usage policy names
 * role:device). Refused with typed errors: an expired B-TID (ERR_TOKEN_EXPIRED), a B-TID of
 * another tenant (ERR_TOKEN_INVALID), a revoked certificate (ERR_TOKEN_REVOKED), a certificate
 * of another tenant's CA (ERR_TOKEN_INVALID).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, X509Certificate } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as jose from 'jose'
import { authnConfigSchema, startAuthn, type AuthnApp } from '@m2msec/authn'
import { bootstrapConfigSchema, startBootstrap, type BootstrapApp } from '@m2msec/bootstrap'
import { createLogger, fromGrpcError, promiseClient, type PromiseClient } from '@m2msec/runtime'
import {
  AddCredentialRequest,
  AddTrustAnchorsRequest,
  AuthenticationClient,
  AuthenticationService,
  CreateTenantRequest,
  CredentialType,
  EntityKind,
  GetEntityRequest,
  IssueTokenRequest,
  RegisterEntityRequest,
} from '@m2msec/proto/authn/v1'
import {
  CreateCaRequest,
  CreateEnrolmentAuthorizationRequest,
  CreateSubscriberRequest,
  GbaSubscribersClient,
  GbaSubscribersService,
  PkiClient,
  PkiService,
  RevocationReason,
  RevokeCertificateRequest,
} from '@m2msec/proto/bootstrap/v1'
import {
  CreateKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  KeyOperation,
  MacRequest,
} from '@m2msec/proto/kms/v1'
import {
  createGbaUeClient,
  createSimulatedUsim,
  gbaClientAssertion,
  UA_PROTOCOL_ID,
  type GbaUeClient,
} from '@m2msec/sdk/gba'
import { certificateClientAssertion, createEstClient, createKeyAndCsr } from '@m2msec/sdk/pki'
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
import { gbaKey } from '../../services/bootstrap/src/store/gba-stores.ts'

const ACME = 'acme'
const GLOBEX = 'globex'
const BSF_HOST = 'bsf.example.org'
const MAF_FQDN = 'maf.acme.example'
const FLEET = 5
const OPERATOR_TOKEN = `operator-${randomBytes(16).toString('hex')}`
const quiet = (service: string) => createLogger({ level: 'warn', service }, { write: () => undefined })

type Authn = PromiseClient<typeof AuthenticationService>
type Kms = PromiseClient<typeof KeyManagementService>
type Subscribers = PromiseClient<typeof GbaSubscribersService>
type Pki = PromiseClient<typeof PkiService>

let dir: TmpDir
let nats: NatsServer
let pki: DevPki
let kms: KmsProcess
let bootstrap: BootstrapApp
let authn: AuthnApp
const channels: grpc.Client[] = []

function track<C extends grpc.Client>(c: C): C {
  channels.push(c)
  return c
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

async function mtls(tenant: string, principal: string, roles: string[]): Promise<grpc.ChannelCredentials> {
  const c = await pki.issueClientCert({ tenant, principal, roles })
  return grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(c.keyPem), Buffer.from(c.certPem))
}

async function writeServiceIdentity(principal: string): Promise<{ certFile: string; keyFile: string }> {
  const svc = await pki.issueClientCert({ tenant: '_platform', principal, roles: ['service'] })
  const certFile = join(dir.path, `${principal}.pem`)
  const keyFile = join(dir.path, `${principal}.key`)
  await writeFile(certFile, svc.certPem)
  await writeFile(keyFile, svc.keyPem, { mode: 0o600 })
  return { certFile, keyFile }
}

/** The clients of one tenant admin. */
interface Admin {
  authn: Authn
  kms: Kms
  subscribers: Subscribers
  pki: Pki
}

async function adminOf(tenant: string): Promise<Admin> {
  const creds = await mtls(tenant, 'admin-1', ['admin'])
  const bootstrapTarget = `localhost:${bootstrap.address.port}`
  return {
    authn: promiseClient(
      AuthenticationService,
      track(new AuthenticationClient(`localhost:${authn.address.port}`, creds)),
    ),
    kms: promiseClient(KeyManagementService, track(new KeyManagementClient(kms.target, creds))),
    subscribers: promiseClient(GbaSubscribersService, track(new GbaSubscribersClient(bootstrapTarget, creds))),
    pki: promiseClient(PkiService, track(new PkiClient(bootstrapTarget, creds))),
  }
}

before(async () => {
  dir = await tmpDir('fleet-e2e')
  nats = await startNats()
  pki = await createDevPki(join(dir.path, 'pki'))
  const jwksPort = await freePort()
  kms = await startKmsProcess({
    natsUrl: nats.url,
    pki,
    env: { M2MSEC_KMS_AUTH__TOKENS__JWKS_URL: `http://127.0.0.1:${jwksPort}/.well-known/jwks.json` },
  })
  const bsfIdentity = await writeServiceIdentity('bootstrap')
  const authnIdentity = await writeServiceIdentity('authn')
  const serverTls = {
    certFile: pki.paths.serverCert,
    keyFile: pki.paths.serverKey,
    caFile: pki.paths.caCert,
    requireClientCert: false,
  }
  bootstrap = await startBootstrap(
    bootstrapConfigSchema.parse({
      instanceId: `bootstrap-fleet-${randomBytes(3).toString('hex')}`,
      grpc: { port: 0, tls: serverTls },
      auth: { mtls: true },
      ub: { port: 0 },
      // GBA enrolment on EST too (NAF FQDN = the EST host, 127.0.0.1).
      gba: { bsfHost: BSF_HOST, realm: BSF_HOST, estEnrolment: true },
      // authn (svc:authn, any tenant) may ask for Km of its MAF FQDN.
      zn: { nafs: [{ principal: 'svc:authn', fqdns: [MAF_FQDN] }] },
      pki: {
        est: { port: 0, tls: { certFile: pki.paths.serverCert, keyFile: pki.paths.serverKey } },
        revocation: { port: 0 },
      },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: { caFile: pki.paths.caCert, ...bsfIdentity } },
    }),
    quiet('bootstrap'),
  )
  const tokenFile = join(dir.path, 'operator.token')
  await writeFile(tokenFile, OPERATOR_TOKEN, { mode: 0o600 })
  authn = await startAuthn(
    authnConfigSchema.parse({
      instanceId: `authn-fleet-${randomBytes(3).toString('hex')}`,
      grpc: { port: 0, tls: serverTls },
      http: { port: jwksPort },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: { caFile: pki.paths.caCert, ...authnIdentity } },
      auth: { mtls: true, devTokenFile: tokenFile },
      maf: { fqdn: MAF_FQDN },
      gba: {
        znTarget: `localhost:${bootstrap.address.port}`,
        tls: { caFile: pki.paths.caCert, ...authnIdentity },
      },
      // Every check asks OCSP (and the CRL) afresh, so the revocation below is seen at once.
      certificates: { crlCacheSec: 0, ocspCacheSec: 0 },
    }),
    quiet('authn'),
  )
})

after(async () => {
  for (const c of channels) c.close()
  await authn?.shutdown()
  await bootstrap?.shutdown()
  await kms?.stop()
  await nats?.stop()
  await dir?.cleanup()
})

describe('a fleet bootstraps by GBA and by PKI and authenticates to authn', { timeout: 240_000 }, () => {
  let anon: Authn
  /** The KMS as a device sees it: server-authenticated TLS, the access token as credential. */
  let deviceKms: Kms
  let acme: Admin
  let globex: Admin
  /** Per tenant: the KMS key the BSF unwraps imported K||OPc with. */
  const importJwks = new Map<Admin, jose.JWK>()
  let estCaPem: string
  let issuingPem = ''
  const gbaDevices: Array<{ entityId: string; impi: string; ue: GbaUeClient }> = []
  const pkiDevices: Array<{ entityId: string; keyPem: string; certPem: string; serial: string }> = []

  /** A new USIM whose K||OPc the tenant's admin imports into the BSF (wrapped for the KMS). */
  async function provisionSubscriber(admin: Admin, impi: string, enrolmentUris: string[] = []): Promise<GbaUeClient> {
    const k = new Uint8Array(randomBytes(16))
    const opc = new Uint8Array(randomBytes(16))
    const jwe = await new jose.CompactEncrypt(Buffer.concat([k, opc]))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(await jose.importJWK(importJwks.get(admin) ?? {}, 'ECDH-ES+A256KW'))
    await admin.subscribers.createSubscriber(
      CreateSubscriberRequest.fromPartial({
        impi,
        milenageKey: { $case: 'import', value: { wrappedKey: jwe, unwrappingKeyId: 'gba-import', keyId: '' } },
        enrolmentUris,
      }),
    )
    return createGbaUeClient({ bsfUrl: bootstrap.ubUrl, impi, realm: BSF_HOST, usim: createSimulatedUsim({ k, opc }) })
  }

  async function registerGbaEntity(admin: Admin, entityId: string, impi: string): Promise<void> {
    await admin.authn.registerEntity(
      RegisterEntityRequest.fromPartial({ entityId, kind: EntityKind.ENTITY_KIND_DEVICE, roles: ['device'] }),
    )
    await admin.authn.addCredential(
      AddCredentialRequest.fromPartial({
        entityId,
        credentialId: 'usim',
        credential: { $case: 'gba', value: { impi } },
      }),
    )
  }

  /** The protected call every device makes with its token. */
  async function useToken(token: string): Promise<void> {
    const res = await deviceKms.mac(
      MacRequest.fromPartial({ keyId: 'fleet-telemetry', data: Buffer.from('x') }),
      bearer(token),
    )
    assert.equal(res.mac.length, 32)
  }

  before(async () => {
    const tls = grpc.credentials.createSsl(Buffer.from(pki.caCertPem))
    anon = promiseClient(AuthenticationService, track(new AuthenticationClient(`localhost:${authn.address.port}`, tls)))
    deviceKms = promiseClient(KeyManagementService, track(new KeyManagementClient(kms.target, tls)))
    for (const tenantId of [ACME, GLOBEX]) {
      await anon.createTenant(CreateTenantRequest.fromPartial({ tenantId }), bearer(OPERATOR_TOKEN))
    }
    acme = await adminOf(ACME)
    globex = await adminOf(GLOBEX)
    for (const admin of [acme, globex]) {
      const created = await admin.kms.createKey(
        CreateKeyRequest.fromPartial({
          keySpec: {
            keyId: 'gba-import',
            algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_ECDH,
            usagePolicy: [{ principals: ['svc:bootstrap'], operations: [KeyOperation.KEY_OPERATION_UNWRAP] }],
          },
        }),
      )
      importJwks.set(admin, JSON.parse(created.key?.versions[0]?.publicJwk ?? '{}') as jose.JWK)
    }
    // The protected resource: a key every device of acme may MAC with.
    await acme.kms.createKey(
      CreateKeyRequest.fromPartial({
        keySpec: {
          keyId: 'fleet-telemetry',
          algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
          usagePolicy: [{ principals: ['role:device'], operations: [KeyOperation.KEY_OPERATION_MAC] }],
        },
      }),
    )
    estCaPem = pki.caCertPem
  })

  test(`${FLEET} GBA devices bootstrap over Ub and get tokens with Km (kid = B-TID) fetched over Zn`, async (t) => {
    for (let i = 1; i <= FLEET; i++) {
      const impi = `00101000000${String(i).padStart(4, '0')}@ims.mnc001.mcc001.3gppnetwork.org`
      const entityId = `urn:imei:49015420323751${i}`
      const ue = await provisionSubscriber(acme, impi)
      await registerGbaEntity(acme, entityId, impi)
      gbaDevices.push({ entityId, impi, ue })
    }
    const started = performance.now()
    await Promise.all(
      gbaDevices.map(async (d) => {
        const a = await gbaClientAssertion({ ue: d.ue, entityId: d.entityId, mafFqdn: MAF_FQDN })
        const res = await anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion: a.assertion }))
        assert.equal(res.loa, 2)
        assert.ok(a.verifyServerProof(res.serverProof, res.tokenId), 'authn proves it holds Km')
        const claims = jose.decodeJwt(res.accessToken)
        assert.equal(claims.sub, d.entityId)
        assert.deepEqual(claims['roles'], ['device'])
        await useToken(res.accessToken)
        // The session is now a credential of the entity: id = B-TID, type GBA.
        const entity = (await acme.authn.getEntity(GetEntityRequest.fromPartial({ entityId: d.entityId }))).entity
        const session = entity?.credentials.find((c) => c.id === a.btid)
        assert.equal(session?.type, CredentialType.CREDENTIAL_TYPE_GBA)
        assert.equal(session?.gbaImpi, d.impi)
        assert.ok(session?.kmsKeyId.startsWith('gbanaf-'))
        // A second token with the same session needs no bootstrap.
        const again = await gbaClientAssertion({ ue: d.ue, entityId: d.entityId, mafFqdn: MAF_FQDN })
        assert.equal(again.btid, a.btid)
        await anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion: again.assertion }))
      }),
    )
    t.diagnostic(`GBA fleet: ${FLEET} bootstraps + 2 tokens each in ${(performance.now() - started).toFixed(0)} ms`)
  })

  test(`${FLEET} PKI devices enrol over EST and get tokens with their certificate (x5c)`, async () => {
    const ca = (await acme.pki.createCa(CreateCaRequest.fromPartial({ domain: 'acme.example' }))).ca
    assert.ok(ca !== undefined && ca.chainPem.length === 2)
    issuingPem = ca.chainPem[0] ?? ''
    // The tenant's PKI root CA becomes an authn trust anchor.
    const tenant = (
      await acme.authn.addTrustAnchors(AddTrustAnchorsRequest.fromPartial({ trustAnchorsPem: [ca.chainPem[1] ?? ''] }))
    ).tenant
    assert.equal(tenant?.trustAnchors.length, 1)
    const est = createEstClient({ baseUrl: ca.estUrl, caPem: estCaPem })
    for (let i = 1; i <= FLEET; i++) {
      const entityId = `//acme.example/in-cse/Cpki0${i}`
      const uri = `m2m:${entityId}`
      await acme.authn.registerEntity(
        RegisterEntityRequest.fromPartial({ entityId, kind: EntityKind.ENTITY_KIND_AE, roles: ['device'] }),
      )
      const { token } = await acme.pki.createEnrolmentAuthorization(
        CreateEnrolmentAuthorizationRequest.fromPartial({ allowedUris: [uri], ttlSeconds: 600 }),
      )
      const { keyPem, csrDer } = await createKeyAndCsr({ uris: [uri] })
      const { certificatePem } = await est.simpleEnroll(csrDer, { token })
      const serial = new X509Certificate(certificatePem).serialNumber.toLowerCase()
      pkiDevices.push({ entityId, keyPem, certPem: certificatePem, serial })
    }
    await Promise.all(
      pkiDevices.map(async (d) => {
        const { assertion } = await certificateClientAssertion({
          keyPem: d.keyPem,
          chainPem: [d.certPem, issuingPem],
          entityId: d.entityId,
        })
        const res = await anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion }))
        assert.equal(res.loa, 3)
        const claims = jose.decodeJwt(res.accessToken)
        assert.equal(claims.sub, d.entityId)
        assert.ok((claims['cnf'] as Record<string, string>)['x5t#S256'])
        await useToken(res.accessToken)
      }),
    )
  })

  test('a GBA device enrols its certificate over EST with its GBA key, then authenticates with it', async () => {
    assert.ok(issuingPem !== '', 'needs the tenant CA of the previous test')
    const entityId = '//acme.example/in-cse/Cgbaest01'
    const uri = `m2m:${entityId}`
    const ue = await provisionSubscriber(acme, '001010000009901@ims.mnc001.mcc001.3gppnetwork.org', [uri])
    await acme.authn.registerEntity(
      RegisterEntityRequest.fromPartial({ entityId, kind: EntityKind.ENTITY_KIND_AE, roles: ['device'] }),
    )
    const est = createEstClient({ baseUrl: `${bootstrap.pki?.estUrl ?? ''}/.well-known/est/${ACME}`, caPem: estCaPem })
    const { keyPem, csrDer } = await createKeyAndCsr({ uris: [uri] })
    // HTTP Digest: username = B-TID, password = base64(Ks_NAF) for the EST host (TS 24.109 §5.2).
    const { btid } = await ue.session()
    const { certificatePem } = await est.simpleEnrollWithGba(csrDer, {
      btid,
      ksNaf: async (fqdn) => (await ue.ksNaf(fqdn, UA_PROTOCOL_ID.httpDigest)).key,
    })
    const { assertion } = await certificateClientAssertion({ keyPem, chainPem: [certificatePem, issuingPem], entityId })
    const res = await anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion }))
    assert.equal(res.loa, 3)
    assert.equal(jose.decodeJwt(res.accessToken).sub, entityId)
    await useToken(res.accessToken)
  })

  test('an expired B-TID is ERR_TOKEN_EXPIRED', async () => {
    const impi = '001010000009001@ims.mnc001.mcc001.3gppnetwork.org'
    const entityId = 'urn:imei:490154203239001'
    const ue = await provisionSubscriber(acme, impi)
    await registerGbaEntity(acme, entityId, impi)
    const session = await ue.bootstrap()
    // Age the session at the BSF, as an hour passing would (gba.keyLifetimeSec is at least 60 s).
    const sessions = bootstrap.gba.deps.stores.sessions
    const stored = await sessions.get(gbaKey(session.btid))
    assert.ok(stored, 'the BSF keeps the session')
    await sessions.update(
      gbaKey(session.btid),
      { ...stored.value, expiresAt: new Date(Date.now() - 1000).toISOString() },
      stored.revision,
    )
    const a = await gbaClientAssertion({ ue, entityId, mafFqdn: MAF_FQDN })
    assert.equal(
      await codeOf(anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion: a.assertion }))),
      'ERR_TOKEN_EXPIRED',
    )
  })

  test("another tenant's B-TID is ERR_TOKEN_INVALID", async () => {
    // A globex subscriber; an acme entity (wrongly) bound to its IMPI still gets nothing:
    // the BSF answers authn acting for acme only with acme's sessions.
    const impi = '001010000009002@ims.mnc001.mcc001.3gppnetwork.org'
    const ue = await provisionSubscriber(globex, impi)
    const entityId = 'urn:imei:490154203239002'
    await registerGbaEntity(acme, entityId, impi)
    const a = await gbaClientAssertion({ ue, entityId, mafFqdn: MAF_FQDN })
    assert.equal(
      await codeOf(anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion: a.assertion }))),
      'ERR_TOKEN_INVALID',
    )
    // An acme device's B-TID presented in globex's name is unknown there too.
    const d = gbaDevices[0]
    assert.ok(d)
    await registerGbaEntity(globex, d.entityId, d.impi)
    const b = await gbaClientAssertion({ ue: d.ue, entityId: d.entityId, mafFqdn: MAF_FQDN })
    assert.equal(
      await codeOf(anon.issueToken(IssueTokenRequest.fromPartial({ tenant: GLOBEX, assertion: b.assertion }))),
      'ERR_TOKEN_INVALID',
    )
  })

  test('a revoked certificate is ERR_TOKEN_REVOKED', async () => {
    const d = pkiDevices[0]
    assert.ok(d)
    await acme.pki.revokeCertificate(
      RevokeCertificateRequest.fromPartial({
        serial: d.serial,
        reason: RevocationReason.REVOCATION_REASON_KEY_COMPROMISE,
      }),
    )
    const { assertion } = await certificateClientAssertion({
      keyPem: d.keyPem,
      chainPem: [d.certPem, issuingPem],
      entityId: d.entityId,
    })
    assert.equal(
      await codeOf(anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion }))),
      'ERR_TOKEN_REVOKED',
    )
    // The other devices are unaffected.
    const other = pkiDevices[1]
    assert.ok(other)
    const ok = await certificateClientAssertion({
      keyPem: other.keyPem,
      chainPem: [other.certPem, issuingPem],
      entityId: other.entityId,
    })
    assert.equal(
      (await anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion: ok.assertion }))).loa,
      3,
    )
  })

  test("a certificate of another tenant's CA is ERR_TOKEN_INVALID", async () => {
    const ca = (await globex.pki.createCa(CreateCaRequest.fromPartial({ domain: 'globex.example' }))).ca
    assert.ok(ca)
    const entityId = '//globex.example/in-cse/Cintruder'
    const uri = `m2m:${entityId}`
    const { token } = await globex.pki.createEnrolmentAuthorization(
      CreateEnrolmentAuthorizationRequest.fromPartial({ allowedUris: [uri], ttlSeconds: 600 }),
    )
    const { keyPem, csrDer } = await createKeyAndCsr({ uris: [uri] })
    const est = createEstClient({ baseUrl: ca.estUrl, caPem: estCaPem })
    const { certificatePem } = await est.simpleEnroll(csrDer, { token })
    // acme registers an entity with that name: its certificate still does not chain to acme's root.
    await acme.authn.registerEntity(
      RegisterEntityRequest.fromPartial({ entityId, kind: EntityKind.ENTITY_KIND_AE, roles: ['device'] }),
    )
    const { assertion } = await certificateClientAssertion({
      keyPem,
      chainPem: [certificatePem, ca.chainPem[0] ?? ''],
      entityId,
    })
    assert.equal(
      await codeOf(anon.issueToken(IssueTokenRequest.fromPartial({ tenant: ACME, assertion }))),
      'ERR_TOKEN_INVALID',
    )
  })
})
