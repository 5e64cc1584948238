/**
 * The other ways to enrol, through the SDK (libs/sdk/src/pki) on the same real-process setup:
 * a manufacturer (claim) certificate as TLS client certificate, re-enrolment with the current
 * certificate, and GBA HTTP Digest. GBA runs against a FAKE of the EstGbaAuthenticator port
 * (a fixed B-TID and Ks_NAF, RFC 2617 MD5 digest with qop=auth, checked with libs/gba), so the
 * EST side is tested alone; the real implementation is tested in ../gba/est-gba-e2e.test.ts.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, webcrypto } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import { computeResponse, parseAuthorization } from '@m2msec/gba'
import {
  certificatePem,
  describeCertificate,
  issueLeafCertificate,
  issueRootCaCertificate,
  localSigner,
  newSerialHex,
  x509,
} from '@m2msec/pki'
import {
  CreateCaRequest,
  CreateEnrolmentAuthorizationRequest,
  EnrolmentMethod,
  GetCertificateRequest,
  ListCertificatesRequest,
  RevocationReason,
  RevokeCertificateRequest,
} from '@m2msec/proto/bootstrap/v1'
import { createEstClient, createKeyAndCsr, type EstClient } from '@m2msec/sdk/pki'
import type { EstGbaAuthenticator } from '../../src/pki/index.ts'
import { codeOf, run, startPkiPlatform, type Pki, type PkiPlatform } from './helpers.ts'

const TENANT = 'acme'
const DOMAIN = 'acme.m2m.example'
const AE = `m2m://${DOMAIN}/in-cse/Cae-gw-1`
const CLAIMED = `m2m://${DOMAIN}/devices/sn-0001`
const GBA_AE = `m2m://${DOMAIN}/in-cse/Cae-sim-1`
const BTID = 'bTiDvalue12345@bsf.acme.m2m.example'
const KS_NAF = randomBytes(32).toString('base64')
const REALM = 'gba-est@acme.m2m.example'
const random = (n: number) => new Uint8Array(randomBytes(n))

/** FAKE GBA port: one subscriber, one nonce per challenge, standard RFC 2617 digest. */
function fakeGba(): EstGbaAuthenticator & { verified: number } {
  const nonces = new Set<string>()
  const fake = {
    verified: 0,
    async challenge() {
      const nonce = randomBytes(16).toString('hex')
      nonces.add(nonce)
      return [`Digest realm="${REALM}", nonce="${nonce}", qop="auth", algorithm=MD5`]
    },
    async verify(r: { method: string; uri: string; authorization: string }) {
      const c = parseAuthorization(r.authorization)
      if (c.username !== BTID || c.realm !== REALM || !nonces.has(c.nonce) || c.uri !== r.uri) {
        throw new M2msecError('ERR_UNAUTHENTICATED', 'unknown B-TID or nonce')
      }
      const expected = computeResponse({
        username: c.username,
        realm: c.realm,
        password: KS_NAF,
        method: r.method,
        uri: c.uri,
        nonce: c.nonce,
        qop: c.qop,
        nc: c.nc,
        cnonce: c.cnonce,
      })
      if (expected !== c.response) throw new M2msecError('ERR_TOKEN_INVALID', 'wrong digest')
      nonces.delete(c.nonce)
      fake.verified += 1
      return { identity: BTID, allowed: { uris: [GBA_AE], dnsNames: [] } }
    },
  }
  return fake
}

/** A manufacturer CA (local keys) and one claim certificate with its PEM key. */
async function manufacturer() {
  const alg = { name: 'ECDSA', namedCurve: 'P-256' }
  const caKeys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify'])
  const caSpki = new Uint8Array(await webcrypto.subtle.exportKey('spki', caKeys.publicKey))
  const now = Date.now()
  const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000) }
  const root = await issueRootCaCertificate(
    {
      serialHex: newSerialHex(random),
      commonName: 'Meters Inc. Devices',
      organization: 'Meters Inc.',
      publicKeySpki: caSpki,
      domain: DOMAIN,
      pathLength: 0,
      ...validity,
    },
    localSigner(caKeys.privateKey),
  )
  const devKeys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])
  const claim = await issueLeafCertificate(
    {
      serialHex: newSerialHex(random),
      publicKeySpki: new Uint8Array(await webcrypto.subtle.exportKey('spki', devKeys.publicKey)),
      names: { uris: [CLAIMED], dnsNames: [] },
      ...validity,
    },
    { certificate: root, signer: localSigner(caKeys.privateKey) },
  )
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', devKeys.privateKey)
  return {
    rootPem: certificatePem(root),
    certPem: certificatePem(claim),
    keyPem: `${x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')}\n`,
  }
}

describe('EST enrolment methods through the SDK: claim certificate, re-enrolment, GBA (fake port)', () => {
  let p: PkiPlatform
  let admin: Pki
  let client: EstClient
  let maker: Awaited<ReturnType<typeof manufacturer>>
  let stranger: Awaited<ReturnType<typeof manufacturer>>
  const gba = fakeGba()
  let current: { certPem: string; keyPem: string; serial: string }

  before(async () => {
    p = await startPkiPlatform({ gba })
    admin = await p.client(TENANT, 'admin-1', ['admin'])
    maker = await manufacturer()
    stranger = await manufacturer()
    await admin.createCa(CreateCaRequest.fromPartial({ domain: DOMAIN, claimTrustAnchorsPem: [maker.rootPem] }))
    client = createEstClient({ baseUrl: `${p.estUrl}/.well-known/est/${TENANT}`, caPem: p.pki.caCertPem })
    p.file('ca.pem', p.pki.caCertPem)
  })
  after(async () => {
    await p?.stop()
  })

  test('SDK: cacerts, then key + CSR enrolled with a token', async () => {
    const cas = await client.caCertificates()
    assert.equal(cas.length, 2)
    const { token } = await admin.createEnrolmentAuthorization(
      CreateEnrolmentAuthorizationRequest.fromPartial({ allowedUris: [AE] }),
    )
    const { keyPem, csrDer } = await createKeyAndCsr({ uris: [AE], commonName: 'gw-1' })
    const issued = await client.simpleEnroll(csrDer, { token })
    const info = describeCertificate(issued.certificateDer)
    assert.deepEqual(info.names.uris, [AE])
    assert.equal(info.commonName, 'gw-1')
    current = { certPem: issued.certificatePem, keyPem, serial: info.serialHex }
    const again = await codeOf(client.simpleEnroll(csrDer, { token }))
    assert.equal(again, 'ERR_REPLAY')
  })

  test('two concurrent enrolments with one token: one certificate, the other ERR_REPLAY', async () => {
    const { token } = await admin.createEnrolmentAuthorization(
      CreateEnrolmentAuthorizationRequest.fromPartial({ allowedUris: [AE] }),
    )
    const before = (await admin.listCertificates(ListCertificatesRequest.fromPartial({ pageSize: 1000 }))).certificates
    const [a, b] = await Promise.all([createKeyAndCsr({ uris: [AE] }), createKeyAndCsr({ uris: [AE] })])
    const outcomes = await Promise.allSettled([
      client.simpleEnroll(a.csrDer, { token }),
      client.simpleEnroll(b.csrDer, { token }),
    ])
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected'])
    const lost = outcomes.find((o) => o.status === 'rejected')
    assert.equal((lost?.reason as { code?: string }).code, 'ERR_REPLAY')
    const after = (await admin.listCertificates(ListCertificatesRequest.fromPartial({ pageSize: 1000 }))).certificates
    assert.equal(after.length, before.length + 1, 'the losing signature was never stored')
    // Both attempts are in the audit log: the winner with its serial, the loser denied.
    const id = token.split('.')[0] ?? ''
    const mine = (await p.auditRecords()).filter((r) => r.principal === `authorization:${id}`)
    assert.deepEqual(mine.map((r) => r.result).sort(), ['denied', 'ok'])
    const ok = mine.find((r) => r.result === 'ok')
    assert.equal(ok?.action, 'pki.SimpleEnroll')
    assert.match(String((ok?.details as Record<string, unknown>)['serial']), /^[0-9a-f]+$/)
    assert.equal(mine.find((r) => r.result === 'denied')?.code, 'ERR_REPLAY')
    assert.ok(!JSON.stringify(mine).includes(token), 'the token secret is never in the audit log')
    const actions = new Set((await p.auditRecords()).map((r) => r.action))
    for (const a of ['pki.CreateCa', 'pki.CreateEnrolmentAuthorization']) assert.ok(actions.has(a), a)
  })

  test('re-enrolment with the current certificate (new key, same names) renews it', async () => {
    const next = await createKeyAndCsr({ uris: [AE], commonName: 'gw-1' })
    const renewed = await client.simpleReenroll(next.csrDer, current)
    const info = describeCertificate(renewed.certificateDer)
    assert.notEqual(info.serialHex, current.serial)
    assert.deepEqual(info.names.uris, [AE])
    const got = await admin.getCertificate(GetCertificateRequest.fromPartial({ serial: info.serialHex }))
    assert.equal(got.certificate?.method, EnrolmentMethod.ENROLMENT_METHOD_REENROLL)
    assert.equal(got.certificate?.renewsSerial, current.serial)

    const otherNames = await createKeyAndCsr({ uris: [AE, `${AE}-extra`] })
    assert.equal(await codeOf(client.simpleReenroll(otherNames.csrDer, current)), 'ERR_PERMISSION_DENIED')
    // A certificate of another CA (the claim certificate) cannot re-enrol.
    assert.equal(await codeOf(client.simpleReenroll(next.csrDer, maker)), 'ERR_UNAUTHENTICATED')
    // Without a client certificate: 401.
    p.file('re.b64', Buffer.from(next.csrDer).toString('base64'))
    const r = await run(
      'curl',
      [
        '-sS',
        '--max-time',
        '30',
        '--cacert',
        'ca.pem',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-H',
        'Content-Type: application/pkcs10',
        '--data-binary',
        '@re.b64',
        `${p.estUrl}/.well-known/est/${TENANT}/simplereenroll`,
      ],
      p.dir.path,
    )
    assert.equal(r.out.trim(), '401')
    // Once revoked, the old certificate cannot renew any more.
    await admin.revokeCertificate(
      RevokeCertificateRequest.fromPartial({
        serial: current.serial,
        reason: RevocationReason.REVOCATION_REASON_SUPERSEDED,
      }),
    )
    assert.equal(await codeOf(client.simpleReenroll(next.csrDer, current)), 'ERR_UNAUTHENTICATED')
    current = { certPem: renewed.certificatePem, keyPem: next.keyPem, serial: info.serialHex }
  })

  test('a claim certificate chaining to the tenant trust anchor enrols its own names only', async () => {
    const own = await createKeyAndCsr({ uris: [CLAIMED] })
    const issued = await client.simpleEnrollWithClaim(own.csrDer, maker)
    const info = describeCertificate(issued.certificateDer)
    assert.deepEqual(info.names.uris, [CLAIMED])
    const got = await admin.getCertificate(GetCertificateRequest.fromPartial({ serial: info.serialHex }))
    assert.equal(got.certificate?.method, EnrolmentMethod.ENROLMENT_METHOD_CLAIM_CERTIFICATE)
    const other = await createKeyAndCsr({ uris: [AE] })
    assert.equal(await codeOf(client.simpleEnrollWithClaim(other.csrDer, maker)), 'ERR_PERMISSION_DENIED')
    assert.equal(await codeOf(client.simpleEnrollWithClaim(own.csrDer, stranger)), 'ERR_UNAUTHENTICATED')
  })

  test('GBA: curl --digest with B-TID and Ks_NAF enrols through the (fake) GBA port', async () => {
    const { csrDer } = await createKeyAndCsr({ uris: [GBA_AE] })
    p.file('gba.b64', Buffer.from(csrDer).toString('base64'))
    const url = `${p.estUrl}/.well-known/est/${TENANT}/simpleenroll`
    const args = [
      '-sS',
      '--max-time',
      '30',
      '--cacert',
      'ca.pem',
      '-o',
      'gba.p7',
      '-w',
      '%{http_code}',
      '-H',
      'Content-Type: application/pkcs10',
      '--data-binary',
      '@gba.b64',
      '--digest',
    ]
    const ok = await run('curl', [...args, '--user', `${BTID}:${KS_NAF}`, url], p.dir.path)
    assert.equal(ok.out.trim(), '200', p.read('gba.p7').toString())
    assert.equal(gba.verified, 1)
    const bad = await run('curl', [...args, '--user', `${BTID}:${randomBytes(32).toString('base64')}`, url], p.dir.path)
    assert.equal(bad.out.trim(), '401')
    assert.equal(gba.verified, 1)
    // The 401 offers the GBA Digest challenge next to Bearer and Basic.
    const h = await run(
      'curl',
      [
        '-sS',
        '--max-time',
        '30',
        '--cacert',
        'ca.pem',
        '-o',
        '/dev/null',
        '-D',
        '-',
        '-H',
        'Content-Type: application/pkcs10',
        '--data-binary',
        '@gba.b64',
        url,
      ],
      p.dir.path,
    )
    assert.match(h.out, /www-authenticate: Digest realm="gba-est@acme\.m2m\.example"/i)
  })
})
