/**
 * The RSPF against real processes on 127.0.0.1: nats-server, the KMS service (child process),
 * openssl s_client and gnutls-cli as independent TLS-PSK peers, and the SDK enrolee clients.
 * Keys are compared in constant time and never printed.
 */
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import type { JWK } from 'jose'
import { connectNats, type NatsConnection } from '@m2msec/bus'
import { KeyManagementClient } from '@m2msec/proto/kms/v1'
import { chainAuthenticators, createLogger, devMtlsAuthenticator, devStaticTokenAuthenticator } from '@m2msec/runtime'
import {
  createDevPki,
  startKmsProcess,
  startNats,
  tmpDir,
  type CertAndKey,
  type DevPki,
  type KmsProcess,
  type NatsServer,
  type TmpDir,
} from '@m2msec/testkit'
import {
  deriveCredential,
  enrolWithCertificate,
  enrolWithPsk,
  fetchCredentials,
  openCredential,
  sameKey,
} from '@m2msec/sdk/rspf'
import { createRspfComponent, rspfConfigSchema, type RspfComponent } from '../../src/rspf/index.ts'

const MEF = 'mef.example.com'
const KPM_ID = 'dev-1@mef.example.com'
const TOKEN = 'in-cse-static-token-0123456789'

function ecKeyPair(): { publicJwk: string; privateJwk: JWK } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return {
    publicJwk: JSON.stringify(publicKey.export({ format: 'jwk' })),
    privateJwk: privateKey.export({ format: 'jwk' }) as JWK,
  }
}

function run(cmd: string, args: string[], input: string, timeoutMs = 10_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: `${stdout}\n${stderr}` })
    })
    child.stdin?.end(input)
  })
}

/** The JSON reply line of the MEF in a CLI's output. */
function replyIn(out: string): { status: boolean; keId?: string; code?: string } | undefined {
  const line = out.split('\n').find((l) => l.startsWith('{"status"'))
  return line === undefined ? undefined : (JSON.parse(line) as { status: boolean; keId?: string })
}

describe('RSPF (TLS-PSK, certificates, fetchCredentials) with real nats, KMS and TLS peers', () => {
  let dir: TmpDir
  let nats: NatsServer
  let nc: NatsConnection
  let pki: DevPki
  let kms: KmsProcess
  let kmsClient: KeyManagementClient
  let rspf: RspfComponent
  let pskPort = 0
  let certPort = 0
  let fetchUrl = ''
  let mafCert: CertAndKey
  let rogueCert: CertAndKey
  let enroleeCert: CertAndKey
  const kpm = randomBytes(32)
  const maf = ecKeyPair()
  const inCse = ecKeyPair()

  before(async () => {
    dir = await tmpDir('m2msec-rspf')
    nats = await startNats()
    pki = await createDevPki(join(dir.path, 'pki'), { serverDnsNames: ['localhost', MEF] })
    kms = await startKmsProcess({ natsUrl: nats.url, pki })
    nc = await connectNats({ servers: [nats.url], name: 'rspf-test' })
    const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'bootstrap', roles: ['service'] })
    kmsClient = new KeyManagementClient(
      kms.target,
      grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(svc.keyPem), Buffer.from(svc.certPem)),
    )
    mafCert = await pki.issueClientCert({ tenant: 'acme', principal: 'maf-1', roles: ['maf'] })
    rogueCert = await pki.issueClientCert({ tenant: 'acme', principal: 'rogue', roles: [] })
    enroleeCert = await pki.issueClientCert({ tenant: 'acme', principal: 'dev-cert-1', roles: [] })

    const config = rspfConfigSchema.parse({
      mefFqdn: MEF,
      psk: { host: '127.0.0.1', port: 0 },
      certificate: {
        host: '127.0.0.1',
        port: 0,
        certFile: pki.paths.serverCert,
        keyFile: pki.paths.serverKey,
        caFile: pki.paths.caCert,
      },
      fetchCredentials: {
        host: '127.0.0.1',
        port: 0,
        certFile: pki.paths.serverCert,
        keyFile: pki.paths.serverKey,
        clientCaFile: pki.paths.caCert,
      },
      enrolees: [
        {
          tenant: 'acme',
          enroleeId: '//sp.example.com/asn-cse-1',
          credential: { kind: 'psk', kpmId: KPM_ID },
          targets: [
            { target: 'maf.example.com', suids: [21] },
            { target: '//sp.example.com/in-cse', suids: [22, 23] },
          ],
        },
        {
          tenant: 'acme',
          enroleeId: '//sp.example.com/asn-cse-2',
          credential: { kind: 'certificate', subjectAltName: 'URI:m2msec://acme/dev-cert-1' },
          targets: [{ target: 'maf.example.com', suids: [21] }],
        },
      ],
      targets: [
        { kind: 'maf', id: 'maf.example.com', principal: 'acme/maf-1', publicJwk: maf.publicJwk },
        { kind: 'cse', id: '//sp.example.com/in-cse', principal: 'acme/in-cse-1', publicJwk: inCse.publicJwk },
      ],
    })
    rspf = createRspfComponent({
      config,
      log: createLogger({ level: 'silent', service: 'bootstrap' }),
      nats: nc,
      kms: { client: kmsClient, timeoutMs: 10_000 },
      authenticator: chainAuthenticators(
        devMtlsAuthenticator(),
        devStaticTokenAuthenticator({ token: TOKEN, tenant: 'acme', principal: 'in-cse-1', roles: [] }),
      ),
    })
    const addresses = await rspf.start()
    pskPort = addresses.psk?.port ?? 0
    certPort = addresses.certificate?.port ?? 0
    fetchUrl = `https://localhost:${addresses.fetchCredentials.port}`
    await rspf.provisionPreSharedKey(KPM_ID, Uint8Array.from(kpm))
  })

  after(async () => {
    await rspf?.stop()
    kmsClient?.close()
    await nc?.close()
    await kms?.stop()
    await nats?.stop()
    await dir?.cleanup()
  })

  const fetchAsMaf = (keId: string, suid = 21) =>
    fetchCredentials({ url: fetchUrl, keId, suid, ca: pki.caCertPem, cert: mafCert.certPem, key: mafCert.keyPem })

  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`SDK PSK enrolee (${maxVersion}) and the MEF derive the same Ke: the MAF fetches Km = local Km`, async () => {
      const e = await enrolWithPsk({ host: '127.0.0.1', port: pskPort, mefFqdn: MEF, kpmId: KPM_ID, kpm, maxVersion })
      assert.equal(e.protocol, maxVersion)
      if (maxVersion === 'TLSv1.2') assert.equal(e.cipher, 'PSK-AES128-CBC-SHA256')
      assert.match(e.keId, /^[0-9a-f]{32}@mef\.example\.com$/)
      assert.equal(e.enroleeId, '//sp.example.com/asn-cse-1')
      const fetched = await fetchAsMaf(e.keId)
      assert.equal(fetched.enroleeId, '//sp.example.com/asn-cse-1')
      assert.equal(fetched.suid, 21)
      assert.equal(fetched.lifetime.getTime(), e.expiresAt.getTime())
      const km = await openCredential(fetched.credential, maf.privateJwk)
      assert.ok(sameKey(km, deriveCredential(e.ke, 21, 'maf.example.com')), 'Km from the KMS equals the local Km')
      // A second fetch re-wraps the same derived key.
      const again = await openCredential((await fetchAsMaf(e.keId)).credential, maf.privateJwk)
      assert.ok(sameKey(again, km))
      e.ke.fill(0)
    })
  }

  it('a bearer-token target (IN-CSE) fetches Kpsa (SUID 22) and a usage-constrained key (SUID 23)', async () => {
    const e = await enrolWithPsk({ host: '127.0.0.1', port: pskPort, mefFqdn: MEF, kpmId: KPM_ID, kpm })
    const get = (suid: number) =>
      fetchCredentials({
        url: fetchUrl,
        keId: e.keId,
        suid,
        ca: pki.caCertPem,
        token: TOKEN,
        origin: '//sp.example.com/in-cse',
      })
    const kpsa = await openCredential((await get(22)).credential, inCse.privateJwk)
    assert.ok(sameKey(kpsa, deriveCredential(e.ke, 22, '//sp.example.com/in-cse')))
    const ucKey = await openCredential((await get(23)).credential, inCse.privateJwk)
    assert.ok(sameKey(ucKey, deriveCredential(e.ke, 23, 'in-cse.sp.example.com')))
    assert.ok(!sameKey(kpsa, ucKey))
    e.ke.fill(0)
  })

  it('openssl s_client completes TLS 1.2 PSK (PSK-AES128-CBC-SHA256) and TLS 1.3 PSK handshakes', async () => {
    for (const versionArgs of [
      ['-tls1_2', '-cipher', 'PSK-AES128-CBC-SHA256'],
      ['-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256'],
    ]) {
      const { out } = await run(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${pskPort}`,
          '-psk',
          kpm.toString('hex'),
          '-psk_identity',
          KPM_ID,
          '-quiet',
          ...versionArgs,
        ],
        '',
      )
      const reply = replyIn(out)
      assert.equal(reply?.status, true, `openssl ${versionArgs[0]} got no successful MEF reply`)
      assert.match(reply?.keId ?? '', /^[0-9a-f]{32}@mef\.example\.com$/)
    }
  })

  it('gnutls-cli completes a TLS 1.2 PSK handshake', async () => {
    const { out } = await run(
      'gnutls-cli',
      [
        '-p',
        String(pskPort),
        '127.0.0.1',
        '--pskusername',
        KPM_ID,
        '--pskkey',
        kpm.toString('hex'),
        '--priority',
        'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CBC:-MAC-ALL:+SHA256',
        '--logfile',
        '/dev/null',
      ],
      '',
    )
    const reply = replyIn(out)
    assert.equal(reply?.status, true, 'gnutls-cli got no successful MEF reply')
  })

  it('a wrong Kpm or an unknown KpmID fails the handshake (SDK and openssl)', async () => {
    const wrong = randomBytes(32)
    await assert.rejects(
      enrolWithPsk({
        host: '127.0.0.1',
        port: pskPort,
        mefFqdn: MEF,
        kpmId: KPM_ID,
        kpm: wrong,
        maxVersion: 'TLSv1.2',
      }),
      (err: { code?: string }) => err.code === 'ERR_UNAUTHENTICATED',
    )
    await assert.rejects(
      enrolWithPsk({ host: '127.0.0.1', port: pskPort, mefFqdn: MEF, kpmId: 'nobody@mef.example.com', kpm }),
      (err: { code?: string }) => err.code === 'ERR_UNAUTHENTICATED',
    )
    const { out } = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${pskPort}`,
        '-psk',
        wrong.toString('hex'),
        '-psk_identity',
        KPM_ID,
        '-quiet',
        '-tls1_2',
        '-cipher',
        'PSK-AES128-CBC-SHA256',
      ],
      '',
    )
    assert.equal(replyIn(out), undefined)
  })

  it('certificate RSPF: an enrolee certificate from the trust anchor enrols; the MAF fetches the same Km', async () => {
    const e = await enrolWithCertificate({
      host: '127.0.0.1',
      port: certPort,
      mefFqdn: MEF,
      ca: pki.caCertPem,
      cert: enroleeCert.certPem,
      key: enroleeCert.keyPem,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES128-SHA256',
    })
    assert.equal(e.cipher, 'ECDHE-ECDSA-AES128-SHA256')
    assert.equal(e.enroleeId, '//sp.example.com/asn-cse-2')
    const km = await openCredential((await fetchAsMaf(e.keId)).credential, maf.privateJwk)
    assert.ok(sameKey(km, deriveCredential(e.ke, 21, 'maf.example.com')))
    e.ke.fill(0)
  })

  it('certificate RSPF refuses a certificate that chains to another CA, and a trusted but unconfigured one', async () => {
    const other = await createDevPki(join(dir.path, 'other-pki'))
    const stranger = await other.issueClientCert({ tenant: 'acme', principal: 'dev-cert-1', roles: [] })
    const opts = { host: '127.0.0.1', port: certPort, mefFqdn: MEF, ca: pki.caCertPem }
    await assert.rejects(
      enrolWithCertificate({ ...opts, cert: stranger.certPem, key: stranger.keyPem }),
      (err: { code?: string }) => err.code === 'ERR_UNAUTHENTICATED' || err.code === 'ERR_UNAVAILABLE',
    )
    await assert.rejects(
      enrolWithCertificate({ ...opts, cert: rogueCert.certPem, key: rogueCert.keyPem }),
      (err: { code?: string }) => err.code === 'ERR_PERMISSION_DENIED',
    )
  })

  it('fetchCredentials refuses unauthorized targets with typed errors', async () => {
    const e = await enrolWithPsk({ host: '127.0.0.1', port: pskPort, mefFqdn: MEF, kpmId: KPM_ID, kpm })
    e.ke.fill(0)
    const base = { url: fetchUrl, keId: e.keId, ca: pki.caCertPem }
    const code = (c: string) => (err: { code?: string }) => err.code === c
    // Authenticated, but not a configured target.
    await assert.rejects(
      fetchCredentials({ ...base, suid: 21, cert: rogueCert.certPem, key: rogueCert.keyPem }),
      code('ERR_PERMISSION_DENIED'),
    )
    // A target asking for a SUID the enrolee did not grant it.
    await assert.rejects(fetchCredentials({ ...base, suid: 24, token: TOKEN }), code('ERR_PERMISSION_DENIED'))
    // X-M2M-Origin naming someone else.
    await assert.rejects(fetchAsMafWithOrigin(base.keId, '//sp.example.com/in-cse'), code('ERR_PERMISSION_DENIED'))
    // No credentials, a wrong token.
    await assert.rejects(fetchCredentials({ ...base, suid: 21 }), code('ERR_UNAUTHENTICATED'))
    await assert.rejects(
      fetchCredentials({ ...base, suid: 21, token: 'wrong-token-0123456789' }),
      code('ERR_TOKEN_INVALID'),
    )
    // Unknown KeID, a KeID of another MEF, a SUID outside the RSPF range.
    await assert.rejects(fetchAsMaf(`${'ab'.repeat(16)}@${MEF}`), code('ERR_NOT_FOUND'))
    await assert.rejects(fetchAsMaf(`${'ab'.repeat(16)}@mef.other.com`), code('ERR_INVALID_ARGUMENT'))
    await assert.rejects(fetchAsMaf(e.keId, 11), code('ERR_INVALID_ARGUMENT'))
  })

  const fetchAsMafWithOrigin = (keId: string, origin: string) =>
    fetchCredentials({
      url: fetchUrl,
      keId,
      suid: 21,
      ca: pki.caCertPem,
      cert: mafCert.certPem,
      key: mafCert.keyPem,
      origin,
    })
})
