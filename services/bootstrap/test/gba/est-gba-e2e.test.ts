/**
 * EST enrolment authorized by GBA, end to end on real processes: nats-server (JetStream), the
 * KMS as a child process, one bootstrap replica (Ub + Zn + PKI) in this process. A simulated
 * device bootstraps over Ub, then enrols a certificate with HTTP Digest (username B-TID,
 * password base64(Ks_NAF)) through the SDK and through `curl --digest` as independent peer.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { join } from 'node:path'
import { UA_PROTOCOL_ID } from '@m2msec/crypto'
import {
  computeResponse,
  createSimulatedUsim,
  deriveSessionKsNaf,
  formatAuthorization,
  parseWwwAuthenticate,
} from '@m2msec/gba'
import { describeCertificate } from '@m2msec/pki'
import {
  CreateCaRequest,
  CreateSubscriberRequest,
  EnrolmentMethod,
  GetCertificateRequest,
  ListCertificatesRequest,
} from '@m2msec/proto/bootstrap/v1'
import { bootstrapOverHttp, type GbaBootstrapResult } from '@m2msec/sdk/gba'
import { createEstClient, createKeyAndCsr, type EstClient } from '@m2msec/sdk/pki'
import { bootstrapConfigSchema } from '../../src/config.ts'
import { codeOf, startGbaPlatform, type GbaPlatform } from './platform.ts'

const BSF_HOST = 'bsf.example.org'
const DOMAIN = 'acme.m2m.example'
const ADMIN = { tenant: 'acme', principal: 'ops', roles: ['admin'] }

let p: GbaPlatform
let estUrl: string

/** Provisions a subscriber of `tenant` with these enrolment names and bootstraps it over Ub. */
async function provision(tenant: string, enrolmentUris: string[]) {
  const d = await p.provision(tenant, { enrolmentUris })
  const usim = createSimulatedUsim(d)
  const session = await bootstrapOverHttp({ bsfUrl: p.app.ubUrl, impi: d.impi, realm: BSF_HOST, usim })
  return { ...d, session }
}

const gbaKey = (session: GbaBootstrapResult) => ({
  btid: session.btid,
  ksNaf: (fqdn: string) => deriveSessionKsNaf(session, fqdn, UA_PROTOCOL_ID.httpDigest),
})

function est(tenant = 'acme', extra: { nafFqdn?: string } = {}): EstClient {
  return createEstClient({ baseUrl: `${estUrl}/.well-known/est/${tenant}`, caPem: p.pki.caCertPem, ...extra })
}

/** A raw HTTPS POST to simpleenroll: status, headers and body. */
function post(
  tenant: string,
  body: string,
  headers: Record<string, string>,
): Promise<{
  status: number
  headers: Record<string, string | string[] | undefined>
  challenges: string[]
  text: string
}> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${estUrl}/.well-known/est/${tenant}/simpleenroll`,
      { method: 'POST', ca: p.pki.caCertPem, headers: { 'content-type': 'application/pkcs10', ...headers } },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          // Each WWW-Authenticate field apart: res.headers joins them with commas.
          const challenges = res.rawHeaders.filter(
            (_, i, raw) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === 'www-authenticate',
          )
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            challenges,
            text: Buffer.concat(chunks).toString(),
          })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--max-time', '30', ...args], { cwd: p.dir.path })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.on('error', reject)
    child.on('close', () => resolve(out))
  })
}

async function certificateCount(): Promise<number> {
  const admin = await p.pkiAdmin(ADMIN)
  return (await admin.listCertificates(ListCertificatesRequest.fromPartial({ pageSize: 1000 }))).certificates.length
}

before(async () => {
  p = await startGbaPlatform({ name: 'bootstrap-est-gba', bsfHost: BSF_HOST, tenants: ['acme', 'globex'], pki: true })
  estUrl = p.app.pki?.estUrl ?? ''
  await writeFile(join(p.dir.path, 'ca.pem'), p.pki.caCertPem)
  await (await p.pkiAdmin(ADMIN)).createCa(CreateCaRequest.fromPartial({ domain: DOMAIN }))
})

after(async () => {
  await p?.stop()
})

describe('EST enrolment authorized by GBA (HTTP Digest with Ks_NAF)', () => {
  test('a bootstrapped device enrols with the SDK; the certificate names the subscriber', async () => {
    const uri = `m2m://${DOMAIN}/in-cse/Cae-sim-1`
    const d = await provision('acme', [uri])
    const { csrDer } = await createKeyAndCsr({ uris: [uri] })
    const issued = await est().simpleEnrollWithGba(csrDer, gbaKey(d.session))
    const info = describeCertificate(issued.certificateDer)
    assert.deepEqual(info.names.uris, [uri])
    const admin = await p.pkiAdmin(ADMIN)
    const got = await admin.getCertificate(GetCertificateRequest.fromPartial({ serial: info.serialHex }))
    assert.equal(got.certificate?.method, EnrolmentMethod.ENROLMENT_METHOD_GBA)
    assert.equal(got.certificate?.enrolledBy, `gba:${d.impi}`)
    // Twice in a row: each enrolment answers its own fresh nonce (H(A1) comes from the cache).
    const again = await createKeyAndCsr({ uris: [uri] })
    assert.ok((await est().simpleEnrollWithGba(again.csrDer, gbaKey(d.session))).certificateDer.length > 0)
  })

  test('curl --digest (B-TID, base64 Ks_NAF) enrols; a wrong key gets 401 and nothing is issued', async () => {
    const uri = `m2m://${DOMAIN}/in-cse/Cae-sim-curl`
    const d = await provision('acme', [uri])
    const { csrDer } = await createKeyAndCsr({ uris: [uri] })
    await writeFile(join(p.dir.path, 'csr.b64'), Buffer.from(csrDer).toString('base64'))
    const url = `${estUrl}/.well-known/est/acme/simpleenroll`
    const base = ['--cacert', 'ca.pem', '-o', 'out.p7', '-w', '%{http_code}', '-H', 'Content-Type: application/pkcs10']
    const password = Buffer.from(deriveSessionKsNaf(d.session, '127.0.0.1', UA_PROTOCOL_ID.httpDigest)).toString(
      'base64',
    )
    const before = await certificateCount()
    const wrong = randomBytes(32).toString('base64')
    assert.equal(
      await curl([...base, '--data-binary', '@csr.b64', '--digest', '--user', `${d.session.btid}:${wrong}`, url]),
      '401',
    )
    assert.equal(await certificateCount(), before)
    assert.equal(
      await curl([...base, '--data-binary', '@csr.b64', '--digest', '--user', `${d.session.btid}:${password}`, url]),
      '200',
    )
    assert.equal(await certificateCount(), before + 1)
  })

  test('the 401 offers the GBA realm; a replayed Authorization is refused and issues nothing', async () => {
    const uri = `m2m://${DOMAIN}/in-cse/Cae-sim-replay`
    const d = await provision('acme', [uri])
    const { csrDer } = await createKeyAndCsr({ uris: [uri] })
    const body = Buffer.from(csrDer).toString('base64')
    const first = await post('acme', body, {})
    assert.equal(first.status, 401)
    const digest = first.challenges.find((h) => h.startsWith('Digest '))
    assert.match(digest ?? '', /realm="3GPP-bootstrapping@127\.0\.0\.1"/)
    assert.match(digest ?? '', /qop="auth,auth-int"/)
    // Answer the challenge by hand (as the SDK does), then send the same header twice.
    const c = parseWwwAuthenticate(digest ?? '')
    const uriPath = '/.well-known/est/acme/simpleenroll'
    const common = { username: d.session.btid, realm: c.realm, nonce: c.nonce, uri: uriPath, qop: 'auth-int' as const }
    const password = Buffer.from(gbaKey(d.session).ksNaf('127.0.0.1')).toString('base64')
    const response = computeResponse({ ...common, password, method: 'POST', nc: '00000001', cnonce: 'abc', body })
    const authorization = formatAuthorization({ ...common, response, algorithm: 'MD5', nc: '00000001', cnonce: 'abc' })
    const before = await certificateCount()
    assert.equal((await post('acme', body, { authorization })).status, 200)
    const replay = await post('acme', body, { authorization })
    assert.equal(replay.status, 401)
    assert.equal(replay.headers['m2msec-error-code'], 'ERR_UNAUTHENTICATED')
    assert.equal(await certificateCount(), before + 1)
  })

  test('names outside the subscriber’s enrolment names, or none at all: 403', async () => {
    const uri = `m2m://${DOMAIN}/in-cse/Cae-sim-2`
    const d = await provision('acme', [uri])
    const other = await createKeyAndCsr({ uris: [`m2m://${DOMAIN}/in-cse/Cae-someone-else`] })
    assert.equal(await codeOf(est().simpleEnrollWithGba(other.csrDer, gbaKey(d.session))), 'ERR_PERMISSION_DENIED')
    const none = await provision('acme', [])
    const csr = await createKeyAndCsr({ uris: [uri] })
    assert.equal(await codeOf(est().simpleEnrollWithGba(csr.csrDer, gbaKey(none.session))), 'ERR_PERMISSION_DENIED')
  })

  test('unknown B-TID, another tenant’s B-TID and a wrong key get the same refusal', async () => {
    const uri = `m2m://${DOMAIN}/in-cse/Cae-sim-3`
    const d = await provision('acme', [uri])
    const foreign = await provision('globex', [uri])
    const { csrDer } = await createKeyAndCsr({ uris: [uri] })
    const attempts = [
      { btid: `${randomBytes(16).toString('base64')}@${BSF_HOST}`, ksNaf: () => new Uint8Array(32) },
      gbaKey(foreign.session),
      { btid: d.session.btid, ksNaf: () => new Uint8Array(randomBytes(32)) },
    ]
    const messages = new Set<string>()
    for (const key of attempts) {
      try {
        await est().simpleEnrollWithGba(csrDer, key)
        assert.fail('enrolled')
      } catch (err) {
        const e = err as { code: string; message: string }
        assert.equal(e.code, 'ERR_UNAUTHENTICATED')
        messages.add(e.message)
      }
    }
    assert.equal(messages.size, 1, [...messages].join(' | '))
  })

  test('junk in the Authorization header is refused before the nonce is spent or the store is asked', async () => {
    const uri = `m2m://${DOMAIN}/in-cse/Cae-sim-5`
    const d = await provision('acme', [uri])
    const { csrDer } = await createKeyAndCsr({ uris: [uri] })
    const body = Buffer.from(csrDer).toString('base64')
    const uriPath = '/.well-known/est/acme/simpleenroll'
    const challenge = async () =>
      parseWwwAuthenticate((await post('acme', body, {})).challenges.find((h) => h.startsWith('Digest ')) ?? '')
    const answer = (nonce: string, username: string, realm: string) => {
      const common = { username, realm, nonce, uri: uriPath, qop: 'auth' as const, nc: '00000001', cnonce: 'c0ffee' }
      const password = Buffer.from(gbaKey(d.session).ksNaf('127.0.0.1')).toString('base64')
      const response = computeResponse({ ...common, password, method: 'POST' })
      return formatAuthorization({ ...common, response, algorithm: 'MD5' })
    }
    const c = await challenge()
    // A nonce of 3,000 '!' would become a 9,000-character KV key, past nats-server's 4 KiB
    // protocol line, which closes the whole connection: refused before any lookup.
    const huge = await post('acme', body, { authorization: answer('!'.repeat(3000), d.session.btid, c.realm) })
    assert.equal(huge.status, 401)
    // A username that is no B-TID of this BSF: refused without spending the nonce...
    assert.equal((await post('acme', body, { authorization: answer(c.nonce, 'admin', c.realm) })).status, 401)
    // ...which then still works for the real answer, over the same (undisturbed) NATS connection.
    assert.equal((await post('acme', body, { authorization: answer(c.nonce, d.session.btid, c.realm) })).status, 200)
  })

  test('config: GBA enrolment needs the pki section and a DNS name devices can reach', () => {
    const base = {
      kms: { target: 'localhost:7001' },
      pki: { est: { tls: { certFile: 'c.pem', keyFile: 'k.pem' } } },
    }
    assert.equal(bootstrapConfigSchema.safeParse({ ...base, gba: { estEnrolment: true } }).success, true)
    const noPki = bootstrapConfigSchema.safeParse({ kms: base.kms, gba: { estEnrolment: true } })
    assert.deepEqual(
      noPki.error?.issues.map((i) => i.path.join('.')),
      ['gba.estEnrolment'],
    )
    const anyHost = { est: { host: '0.0.0.0', tls: base.pki.est.tls } }
    const wildcard = bootstrapConfigSchema.safeParse({ ...base, pki: anyHost, gba: { estEnrolment: true } })
    assert.deepEqual(
      wildcard.error?.issues.map((i) => i.path.join('.')),
      ['gba.estNafFqdn'],
    )
    const named = { ...base, pki: anyHost, gba: { estEnrolment: true, estNafFqdn: 'est.acme.example' } }
    assert.equal(bootstrapConfigSchema.safeParse(named).success, true)
  })

  test('the SDK refuses a challenge for another NAF; bad enrolment names are refused at provisioning', async () => {
    const uri = `m2m://${DOMAIN}/in-cse/Cae-sim-4`
    const d = await provision('acme', [uri])
    const { csrDer } = await createKeyAndCsr({ uris: [uri] })
    const asked: string[] = []
    const key = { btid: d.session.btid, ksNaf: (fqdn: string) => (asked.push(fqdn), new Uint8Array(32)) }
    assert.equal(
      await codeOf(est('acme', { nafFqdn: 'est.elsewhere.example' }).simpleEnrollWithGba(csrDer, key)),
      'ERR_UNAUTHENTICATED',
    )
    assert.deepEqual(asked, [], 'no Ks_NAF derived for a NAF the server does not claim to be')
    const subs = await p.subscribers(ADMIN)
    const bad = subs.createSubscriber(
      CreateSubscriberRequest.fromPartial({
        impi: `bad-names-${randomBytes(4).toString('hex')}@ims.example`,
        milenageKey: { $case: 'milenageKeyId', value: 'unused' },
        enrolmentUris: ['not a uri'],
      }),
    )
    assert.equal(await codeOf(bad), 'ERR_INVALID_ARGUMENT')
  })
})
