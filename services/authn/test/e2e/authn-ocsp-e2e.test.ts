/**
 * OCSP for certificate credentials, end to end with the real PKI: nats-server, the KMS as a
 * child process, the bootstrap service (CA, EST, CRL and OCSP responder) and authn in this
 * process. Devices enrol over EST; their certificates carry the AIA OCSP URL and the CRL
 * distribution point of the bootstrap service, reached through a switchable HTTP relay in
 * this test so that either endpoint can be made unreachable (connection reset).
 *
 * - OCSP decides while the CRL endpoint is unreachable: a good certificate gets a token, a
 *   revoked one is ERR_TOKEN_REVOKED, and the CRL is never fetched.
 * - OCSP unreachable: the CRL decides (revoked refused, good accepted).
 * - Neither reachable: ERR_UNAVAILABLE (fail closed).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, X509Certificate } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { bootstrapConfigSchema, startBootstrap, type BootstrapApp } from '@m2msec/bootstrap'
import { createLogger, fromGrpcError, promiseClient, type PromiseClient } from '@m2msec/runtime'
import {
  AddTrustAnchorsRequest,
  AuthenticationClient,
  AuthenticationService,
  CreateTenantRequest,
  EntityKind,
  IssueTokenRequest,
  RegisterEntityRequest,
} from '@m2msec/proto/authn/v1'
import {
  CreateCaRequest,
  CreateEnrolmentAuthorizationRequest,
  PkiClient,
  PkiService,
  RevocationReason,
  RevokeCertificateRequest,
} from '@m2msec/proto/bootstrap/v1'
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
import { authnConfigSchema } from '../../src/config.ts'
import { startAuthn, type AuthnApp } from '../../src/app.ts'

const TENANT = 'acme'
const OPERATOR_TOKEN = `operator-${randomBytes(16).toString('hex')}`
const quiet = (service: string) => createLogger({ level: 'warn', service }, { write: () => undefined })

type Authn = PromiseClient<typeof AuthenticationService>
type Pki = PromiseClient<typeof PkiService>

let dir: TmpDir
let nats: NatsServer
let devPki: DevPki
let kms: KmsProcess
let bootstrap: BootstrapApp
let authn: AuthnApp
let relay: Server
/** Where the bootstrap service's CRL/OCSP listener really is (the certificates name the relay). */
let revocationTarget = ''
const channels: grpc.Client[] = []

/** What the relay lets through, and what it saw. */
const up = { crl: true, ocsp: true }
const seen = { crl: 0, ocsp: 0 }

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

async function serviceIdentity(principal: string): Promise<{ certFile: string; keyFile: string }> {
  const svc = await devPki.issueClientCert({ tenant: '_platform', principal, roles: ['service'] })
  const certFile = join(dir.path, `${principal}.pem`)
  const keyFile = join(dir.path, `${principal}.key`)
  await writeFile(certFile, svc.certPem)
  await writeFile(keyFile, svc.keyPem, { mode: 0o600 })
  return { certFile, keyFile }
}

/**
 * The revocation URL written into certificates: relays /pki/<t>/crl and /pki/<t>/ocsp to the
 * bootstrap service, or resets the connection when that endpoint is switched off.
 */
async function startRelay(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const kind = /\/ocsp(\/|$)/.test(req.url ?? '') ? 'ocsp' : 'crl'
    seen[kind]++
    if (!up[kind]) {
      req.socket.destroy()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const target = `${revocationTarget}${req.url ?? ''}`
      const body = req.method === 'POST' ? Buffer.concat(chunks) : undefined
      fetch(target, {
        method: req.method ?? 'GET',
        ...(body === undefined ? {} : { body }),
        headers: { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' },
      })
        .then(async (r) => {
          const out = Buffer.from(await r.arrayBuffer())
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' })
          res.end(out)
        })
        .catch(() => res.destroy())
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

before(async () => {
  dir = await tmpDir('authn-ocsp-e2e')
  nats = await startNats()
  devPki = await createDevPki(join(dir.path, 'pki'))
  kms = await startKmsProcess({ natsUrl: nats.url, pki: devPki })
  const r = await startRelay()
  relay = r.server
  const revocationPort = await freePort()
  revocationTarget = `http://127.0.0.1:${revocationPort}`
  const serverTls = {
    certFile: devPki.paths.serverCert,
    keyFile: devPki.paths.serverKey,
    caFile: devPki.paths.caCert,
    requireClientCert: false,
  }
  const bsfIdentity = await serviceIdentity('bootstrap')
  bootstrap = await startBootstrap(
    bootstrapConfigSchema.parse({
      instanceId: `bootstrap-ocsp-${randomBytes(3).toString('hex')}`,
      grpc: { port: 0, tls: serverTls },
      auth: { mtls: true },
      ub: { port: 0 },
      pki: {
        est: { port: 0, tls: { certFile: devPki.paths.serverCert, keyFile: devPki.paths.serverKey } },
        revocation: { port: revocationPort, publicUrl: r.url },
      },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: { caFile: devPki.paths.caCert, ...bsfIdentity } },
    }),
    quiet('bootstrap'),
  )
  const tokenFile = join(dir.path, 'operator.token')
  await writeFile(tokenFile, OPERATOR_TOKEN, { mode: 0o600 })
  authn = await startAuthn(
    authnConfigSchema.parse({
      instanceId: `authn-ocsp-${randomBytes(3).toString('hex')}`,
      grpc: { port: 0, tls: serverTls },
      http: { port: 0 },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: { caFile: devPki.paths.caCert, ...(await serviceIdentity('authn')) } },
      auth: { mtls: true, devTokenFile: tokenFile },
      // Every check asks again, so each step below sees the relay's current state.
      certificates: { crlCacheSec: 0, ocspCacheSec: 0, ocspUrlPrefixes: [r.url], crlUrlPrefixes: [r.url] },
    }),
    quiet('authn'),
  )
})

after(async () => {
  for (const c of channels) c.close()
  await authn?.shutdown()
  await bootstrap?.shutdown()
  relay?.closeAllConnections()
  await new Promise<void>((resolve) => (relay === undefined ? resolve() : relay.close(() => resolve())))
  await kms?.stop()
  await nats?.stop()
  await dir?.cleanup()
})

describe('authn checks certificate credentials by OCSP, then CRL (bootstrap PKI)', { timeout: 180_000 }, () => {
  let anon: Authn
  let admin: Authn
  let pkiAdmin: Pki
  let issuingPem = ''
  const devices: Array<{ entityId: string; keyPem: string; certPem: string; serial: string }> = []

  /** 'resolved' when a token was issued, else the error code. */
  async function tokenFor(d: (typeof devices)[number]): Promise<string> {
    const { assertion } = await certificateClientAssertion({
      keyPem: d.keyPem,
      chainPem: [d.certPem, issuingPem],
      entityId: d.entityId,
    })
    return codeOf(anon.issueToken(IssueTokenRequest.fromPartial({ tenant: TENANT, assertion })))
  }

  function reset(crl: boolean, ocsp: boolean): void {
    up.crl = crl
    up.ocsp = ocsp
    seen.crl = 0
    seen.ocsp = 0
  }

  before(async () => {
    const tls = grpc.credentials.createSsl(Buffer.from(devPki.caCertPem))
    const authnTarget = `localhost:${authn.address.port}`
    anon = promiseClient(AuthenticationService, track(new AuthenticationClient(authnTarget, tls)))
    await anon.createTenant(CreateTenantRequest.fromPartial({ tenantId: TENANT }), bearer(OPERATOR_TOKEN))
    const adminCert = await devPki.issueClientCert({ tenant: TENANT, principal: 'admin-1', roles: ['admin'] })
    const creds = grpc.credentials.createSsl(
      Buffer.from(devPki.caCertPem),
      Buffer.from(adminCert.keyPem),
      Buffer.from(adminCert.certPem),
    )
    admin = promiseClient(AuthenticationService, track(new AuthenticationClient(authnTarget, creds)))
    pkiAdmin = promiseClient(PkiService, track(new PkiClient(`localhost:${bootstrap.address.port}`, creds)))

    const ca = (await pkiAdmin.createCa(CreateCaRequest.fromPartial({ domain: 'acme.example' }))).ca
    assert.ok(ca !== undefined && ca.chainPem.length === 2)
    issuingPem = ca.chainPem[0] ?? ''
    await admin.addTrustAnchors(AddTrustAnchorsRequest.fromPartial({ trustAnchorsPem: [ca.chainPem[1] ?? ''] }))
    const est = createEstClient({ baseUrl: ca.estUrl, caPem: devPki.caCertPem })
    for (const name of ['Cgood', 'Crevoked']) {
      const entityId = `//acme.example/in-cse/${name}`
      const uri = `m2m:${entityId}`
      await admin.registerEntity(
        RegisterEntityRequest.fromPartial({ entityId, kind: EntityKind.ENTITY_KIND_AE, roles: ['device'] }),
      )
      const { token } = await pkiAdmin.createEnrolmentAuthorization(
        CreateEnrolmentAuthorizationRequest.fromPartial({ allowedUris: [uri], ttlSeconds: 600 }),
      )
      const { keyPem, csrDer } = await createKeyAndCsr({ uris: [uri] })
      const { certificatePem } = await est.simpleEnroll(csrDer, { token })
      const cert = new X509Certificate(certificatePem)
      assert.match(cert.infoAccess ?? '', /OCSP - URI:http:\/\/127\.0\.0\.1:\d+\/pki\/acme\/ocsp/)
      devices.push({ entityId, keyPem, certPem: certificatePem, serial: cert.serialNumber.toLowerCase() })
    }
    await pkiAdmin.revokeCertificate(
      RevokeCertificateRequest.fromPartial({
        serial: devices[1]?.serial ?? '',
        reason: RevocationReason.REVOCATION_REASON_KEY_COMPROMISE,
      }),
    )
  })

  test('CRL unreachable: OCSP accepts the good certificate and refuses the revoked one', async () => {
    const [good, revoked] = devices
    assert.ok(good !== undefined && revoked !== undefined)
    reset(false, true)
    assert.equal(await tokenFor(good), 'resolved')
    assert.equal(await tokenFor(revoked), 'ERR_TOKEN_REVOKED')
    assert.equal(seen.ocsp, 2)
    assert.equal(seen.crl, 0, 'the CRL is not needed when OCSP answers')
  })

  test('OCSP unreachable: the CRL decides', async () => {
    const [good, revoked] = devices
    assert.ok(good !== undefined && revoked !== undefined)
    reset(true, false)
    assert.equal(await tokenFor(revoked), 'ERR_TOKEN_REVOKED')
    assert.equal(await tokenFor(good), 'resolved')
    // OCSP was asked first each time (fetch may retry a reset GET, hence "at least").
    assert.ok(seen.ocsp >= 2 && seen.crl >= 2, JSON.stringify(seen))
  })

  test('neither reachable: ERR_UNAVAILABLE (fail closed)', async () => {
    const [good] = devices
    assert.ok(good !== undefined)
    reset(false, false)
    assert.equal(await tokenFor(good), 'ERR_UNAVAILABLE')
    assert.ok(seen.ocsp >= 1 && seen.crl >= 1, JSON.stringify(seen))
  })
})
