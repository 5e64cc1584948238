/**
 * The PKI on real processes (nats-server, the KMS process, the component's gRPC service and
 * EST/CRL/OCSP listeners on 127.0.0.1) against independent peers: `openssl req` makes the
 * CSRs, `curl` talks EST, `openssl verify`, `openssl ocsp` and `openssl crl` check the results.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  CertificateStatus,
  CreateCaRequest,
  CreateEnrolmentAuthorizationRequest,
  EnrolmentMethod,
  GetCaChainRequest,
  GetCertificateRequest,
  ListCertificatesRequest,
  RevocationReason,
  RevokeCertificateRequest,
} from '@m2msec/proto/bootstrap/v1'
import { codeOf, curlEst, run, startPkiPlatform, type Pki, type PkiPlatform } from './helpers.ts'

const TENANT = 'acme'
const DOMAIN = 'acme.m2m.example'
const AE = `m2m://${DOMAIN}/in-cse/Cae-meter-1`

describe('PKI and EST interop (openssl, curl)', () => {
  let p: PkiPlatform
  let admin: Pki
  let device: Pki
  let globex: Pki
  let cwd: string
  let serial = ''

  const est = (op: string) => `${p.estUrl}/.well-known/est/${TENANT}/${op}`

  async function token(uris: string[], dnsNames: string[] = []): Promise<string> {
    const res = await admin.createEnrolmentAuthorization(
      CreateEnrolmentAuthorizationRequest.fromPartial({
        allowedUris: uris,
        allowedDnsNames: dnsNames,
        ttlSeconds: 600,
      }),
    )
    return res.token
  }

  async function csr(
    name: string,
    san: string,
    keyOpts = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  ): Promise<string> {
    const r = await run(
      'openssl',
      [
        'req',
        '-new',
        ...keyOpts,
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-outform',
        'DER',
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=${san}`,
      ],
      cwd,
    )
    assert.equal(r.status, 0, r.out)
    assert.equal((await run('openssl', ['base64', '-in', `${name}.csr`, '-out', `${name}.b64`], cwd)).status, 0)
    return `${name}.b64`
  }

  async function certCount(): Promise<number> {
    return (await admin.listCertificates(ListCertificatesRequest.fromPartial({ pageSize: 1000 }))).certificates.length
  }

  before(async () => {
    p = await startPkiPlatform({ maxCsrBytes: 1024 })
    cwd = p.dir.path
    p.file('ca.pem', p.pki.caCertPem)
    admin = await p.client(TENANT, 'admin-1', ['admin'])
    device = await p.client(TENANT, 'dev-1', ['device'])
    globex = await p.client('globex', 'admin-1', ['admin'])
  })
  after(async () => {
    await p?.stop()
  })

  test('CreateCa: admin only, once per tenant; GetCaChain is tenant-scoped', async () => {
    assert.equal(
      await codeOf(device.createCa(CreateCaRequest.fromPartial({ domain: DOMAIN }))),
      'ERR_PERMISSION_DENIED',
    )
    assert.equal(
      await codeOf(admin.createCa(CreateCaRequest.fromPartial({ domain: 'Not A Domain' }))),
      'ERR_INVALID_ARGUMENT',
    )
    const res = await admin.createCa(CreateCaRequest.fromPartial({ domain: DOMAIN }))
    assert.equal(res.ca?.chainPem.length, 2)
    assert.match(res.ca?.issuingKeyId ?? '', /^pki-issuing-[0-9a-f]{12}$/)
    assert.equal(await codeOf(admin.createCa(CreateCaRequest.fromPartial({ domain: DOMAIN }))), 'ERR_ALREADY_EXISTS')
    const chain = await device.getCaChain(GetCaChainRequest.fromPartial({}))
    assert.deepEqual(chain.ca?.chainPem, res.ca?.chainPem)
    assert.equal(await codeOf(globex.getCaChain(GetCaChainRequest.fromPartial({}))), 'ERR_NOT_FOUND')
    p.file('issuing.pem', chain.ca?.chainPem[0] ?? '')
    p.file('root.pem', chain.ca?.chainPem[1] ?? '')
    p.file('chain.pem', (chain.ca?.chainPem[1] ?? '') + (chain.ca?.chainPem[0] ?? ''))
    // The CA certificates are signed by KMS keys and carry nameConstraints.
    const v = await run('openssl', ['verify', '-CAfile', 'root.pem', 'issuing.pem'], cwd)
    assert.match(v.out, /issuing\.pem: OK/, v.out)
    assert.match(
      (await run('openssl', ['x509', '-in', 'issuing.pem', '-noout', '-text'], cwd)).out,
      /Name Constraints: critical/,
    )
  })

  test('GET cacerts with curl: base64 PKCS#7 certs-only that openssl reads', async () => {
    const r = await run(
      'curl',
      [
        '-sS',
        '--max-time',
        '30',
        '--cacert',
        'ca.pem',
        '-o',
        'cacerts.b64',
        '-w',
        '%{http_code} %{content_type}',
        est('cacerts'),
      ],
      cwd,
    )
    assert.match(r.out, /^200 application\/pkcs7-mime/)
    assert.equal((await run('openssl', ['base64', '-d', '-in', 'cacerts.b64', '-out', 'cacerts.der'], cwd)).status, 0)
    const certs = await run('openssl', ['pkcs7', '-inform', 'DER', '-in', 'cacerts.der', '-print_certs', '-noout'], cwd)
    assert.match(certs.out, /acme Issuing CA/)
    assert.match(certs.out, /acme Root CA/)
  })

  test('an `openssl req` CSR enrols over EST with curl and a token; the chain passes openssl verify', async () => {
    const t = await token([AE])
    const body = await csr('meter', `URI:${AE}`)
    const r = await curlEst(cwd, est('simpleenroll'), body, 'meter.p7.b64', ['-H', `Authorization: Bearer ${t}`])
    assert.equal(r.http, 200, p.read('meter.p7.b64').toString())
    assert.match(r.headers, /content-type: application\/pkcs7-mime; smime-type=certs-only/i)
    await run('openssl', ['base64', '-d', '-in', 'meter.p7.b64', '-out', 'meter.p7'], cwd)
    assert.equal(
      (await run('openssl', ['pkcs7', '-inform', 'DER', '-in', 'meter.p7', '-print_certs', '-out', 'meter.pem'], cwd))
        .status,
      0,
    )
    const v = await run('openssl', ['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'meter.pem'], cwd)
    assert.match(v.out, /meter\.pem: OK/, v.out)
    const text = (await run('openssl', ['x509', '-in', 'meter.pem', '-noout', '-text', '-serial'], cwd)).out
    assert.match(text, new RegExp(`URI:${AE.replace(/[/.]/g, '\\$&')}`))
    assert.match(text, /ASN1 OID: prime256v1/)
    serial = (/serial=([0-9A-F]+)/.exec(text)?.[1] ?? '').toLowerCase()
    const got = await admin.getCertificate(GetCertificateRequest.fromPartial({ serial }))
    assert.equal(got.certificate?.method, EnrolmentMethod.ENROLMENT_METHOD_TOKEN)
    assert.equal(got.certificate?.status, CertificateStatus.CERTIFICATE_STATUS_VALID)
    assert.equal(await codeOf(globex.getCertificate(GetCertificateRequest.fromPartial({ serial }))), 'ERR_NOT_FOUND')
    assert.equal(
      await codeOf(device.getCertificate(GetCertificateRequest.fromPartial({ serial }))),
      'ERR_PERMISSION_DENIED',
    )

    // The token is single-use.
    const again = await curlEst(cwd, est('simpleenroll'), await csr('meter2', `URI:${AE}`), 'again.out', [
      '-H',
      `Authorization: Bearer ${t}`,
    ])
    assert.equal(again.http, 401)
    assert.equal(again.code, 'ERR_REPLAY')
  })

  test('bad input gets typed errors and changes nothing (the token still works afterwards)', async () => {
    const before = await certCount()
    const t = await token([`${AE}-2`])
    const auth = ['-H', `Authorization: Bearer ${t}`]
    // Oversized body (limit 2 x 1024 + 1024 bytes) and oversized CSR (DER > 1024 bytes).
    p.file('huge.b64', Buffer.alloc(4000, 'A'))
    assert.deepEqual(pick(await curlEst(cwd, est('simpleenroll'), 'huge.b64', 'huge.out', auth)), [
      413,
      'ERR_PAYLOAD_TOO_LARGE',
    ])
    const many = Array.from({ length: 12 }, (_, i) => `URI:${AE}-${'x'.repeat(60)}-${i}`).join(',')
    assert.deepEqual(pick(await curlEst(cwd, est('simpleenroll'), await csr('big', many), 'big.out', auth)), [
      413,
      'ERR_PAYLOAD_TOO_LARGE',
    ])
    // Names the authorization does not allow.
    assert.deepEqual(pick(await curlEst(cwd, est('simpleenroll'), await csr('other', `URI:${AE}-3`), 'o.out', auth)), [
      403,
      'ERR_PERMISSION_DENIED',
    ])
    assert.deepEqual(
      pick(await curlEst(cwd, est('simpleenroll'), await csr('evil', 'URI:m2m://evil.example/x'), 'e.out', auth)),
      [403, 'ERR_PERMISSION_DENIED'],
    )
    // Bad proof of possession: one bit of the CSR signature flipped.
    await csr('pop', `URI:${AE}-2`)
    const der = p.read('pop.csr')
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 1
    p.file('pop-bad.b64', der.toString('base64'))
    assert.deepEqual(pick(await curlEst(cwd, est('simpleenroll'), 'pop-bad.b64', 'pop.out', auth)), [
      400,
      'ERR_SIGNATURE_INVALID',
    ])
    // Wrong key type.
    const p384 = await csr('p384', `URI:${AE}-2`, ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'])
    assert.deepEqual(pick(await curlEst(cwd, est('simpleenroll'), p384, 'p384.out', auth)), [
      400,
      'ERR_KEY_TYPE_MISMATCH',
    ])
    const rsa = await csr('rsa', `URI:${AE}-2`, ['-newkey', 'rsa:2048'])
    assert.deepEqual(pick(await curlEst(cwd, est('simpleenroll'), rsa, 'rsa.out', auth)), [
      400,
      'ERR_KEY_TYPE_MISMATCH',
    ])
    // Not base64, wrong content type, unknown token, no credentials.
    p.file('junk.b64', '%%%%')
    assert.deepEqual(pick(await curlEst(cwd, est('simpleenroll'), 'junk.b64', 'j.out', auth)), [
      400,
      'ERR_INVALID_ARGUMENT',
    ])
    const good = await csr('good2', `URI:${AE}-2`)
    const ct = await run(
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
        'Content-Type: text/plain',
        ...auth,
        '--data-binary',
        `@${good}`,
        est('simpleenroll'),
      ],
      cwd,
    )
    assert.equal(ct.out.trim(), '415')
    const [id] = t.split('.')
    const wrong = await curlEst(cwd, est('simpleenroll'), good, 'w.out', [
      '-H',
      `Authorization: Bearer ${id}.${'A'.repeat(43)}`,
    ])
    assert.deepEqual(pick(wrong), [401, 'ERR_TOKEN_INVALID'])
    const none = await curlEst(cwd, est('simpleenroll'), good, 'n.out')
    assert.deepEqual(pick(none), [401, 'ERR_UNAUTHENTICATED'])
    assert.match(none.headers, /www-authenticate: Bearer realm="m2msec-est"/i)

    assert.equal(await certCount(), before, 'no certificate was issued')
    // The token survived all of it: HTTP Basic <id>:<secret> works too.
    const [tid, secret] = t.split('.')
    const ok = await curlEst(cwd, est('simpleenroll'), good, 'good2.p7', ['--user', `${tid}:${secret}`])
    assert.equal(ok.http, 200)
    assert.equal(await certCount(), before + 1)
    const list = await admin.listCertificates(ListCertificatesRequest.fromPartial({ pageSize: 1 }))
    assert.equal(list.certificates.length, 1)
    assert.notEqual(list.nextPageToken, '')
  })

  test('OCSP (POST via openssl ocsp -url, and GET) says good, signed by the issuing CA key', async () => {
    const ocspUrl = `${p.revocationUrl}/pki/${TENANT}/ocsp`
    const r = await run(
      'openssl',
      ['ocsp', '-issuer', 'issuing.pem', '-cert', 'meter.pem', '-url', ocspUrl, '-CAfile', 'chain.pem'],
      cwd,
    )
    assert.match(r.out, /Response verify OK/, r.out)
    assert.match(r.out, /meter\.pem: good/)
    await run(
      'openssl',
      ['ocsp', '-issuer', 'issuing.pem', '-cert', 'meter.pem', '-no_nonce', '-reqout', 'get.req'],
      cwd,
    )
    const res = await fetch(`${ocspUrl}/${encodeURIComponent(p.read('get.req').toString('base64'))}`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'application/ocsp-response')
    p.file('get.resp', new Uint8Array(await res.arrayBuffer()))
    const g = await run(
      'openssl',
      [
        'ocsp',
        '-respin',
        'get.resp',
        '-issuer',
        'issuing.pem',
        '-cert',
        'meter.pem',
        '-CAfile',
        'chain.pem',
        '-no_nonce',
      ],
      cwd,
    )
    assert.match(g.out, /meter\.pem: good/, g.out)
    const bad = await fetch(ocspUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body: 'nope',
    })
    p.file('bad.resp', new Uint8Array(await bad.arrayBuffer()))
    assert.match((await run('openssl', ['ocsp', '-respin', 'bad.resp', '-resp_text'], cwd)).out, /malformedrequest/i)
  })

  test('a revoked certificate shows as revoked in the CRL (openssl crl, verify -crl_check) and in OCSP', async () => {
    const req = RevokeCertificateRequest.fromPartial({
      serial,
      reason: RevocationReason.REVOCATION_REASON_KEY_COMPROMISE,
    })
    assert.equal(await codeOf(device.revokeCertificate(req)), 'ERR_PERMISSION_DENIED')
    assert.equal(await codeOf(globex.revokeCertificate(req)), 'ERR_NOT_FOUND')
    const crlUrl = `${p.revocationUrl}/pki/${TENANT}/crl`
    assert.equal((await run('curl', ['-sS', '--max-time', '30', '-o', 'before.crl', crlUrl], cwd)).status, 0)
    const revoked = await admin.revokeCertificate(req)
    assert.equal(revoked.certificate?.status, CertificateStatus.CERTIFICATE_STATUS_REVOKED)
    assert.equal(
      (await admin.revokeCertificate(req)).certificate?.revokedAt?.getTime(),
      revoked.certificate?.revokedAt?.getTime(),
    )

    const c = await run(
      'curl',
      ['-sS', '--max-time', '30', '-o', 'ca.crl', '-w', '%{http_code} %{content_type}', crlUrl],
      cwd,
    )
    assert.equal(c.out, '200 application/pkix-crl')
    const text = await run(
      'openssl',
      ['crl', '-inform', 'DER', '-in', 'ca.crl', '-CAfile', 'chain.pem', '-noout', '-text'],
      cwd,
    )
    assert.match(text.out, /verify OK/, text.out)
    assert.match(text.out, new RegExp(`Serial Number: ${serial.toUpperCase()}`))
    assert.match(text.out, /Key Compromise/)
    const beforeText = (await run('openssl', ['crl', '-inform', 'DER', '-in', 'before.crl', '-noout', '-text'], cwd))
      .out
    assert.doesNotMatch(beforeText, new RegExp(serial.toUpperCase()))
    await run('openssl', ['crl', '-inform', 'DER', '-in', 'ca.crl', '-out', 'ca.crl.pem'], cwd)
    const v = await run(
      'openssl',
      ['verify', '-crl_check', '-CRLfile', 'ca.crl.pem', '-CAfile', 'chain.pem', 'meter.pem'],
      cwd,
    )
    assert.match(v.out, /certificate revoked/, v.out)

    const o = await run(
      'openssl',
      [
        'ocsp',
        '-issuer',
        'issuing.pem',
        '-cert',
        'meter.pem',
        '-url',
        `${p.revocationUrl}/pki/${TENANT}/ocsp`,
        '-CAfile',
        'chain.pem',
      ],
      cwd,
    )
    assert.match(o.out, /Response verify OK/)
    assert.match(o.out, /meter\.pem: revoked/)
    assert.match(o.out, /Reason: keyCompromise/)
  })

  test('the certificate names the enrolment authorization it used', async () => {
    const t = await token([`${AE}-9`])
    const r = await curlEst(cwd, est('simpleenroll'), await csr('nine', `URI:${AE}-9`), 'nine.out', [
      '-H',
      `Authorization: Bearer ${t}`,
    ])
    assert.equal(r.http, 200)
    const [id] = t.split('.')
    const list = await admin.listCertificates(ListCertificatesRequest.fromPartial({ pageSize: 1000 }))
    const issued = list.certificates.filter((c) => c.enrolledBy === `authorization:${id}`)
    assert.equal(issued.length, 1)
    assert.deepEqual(issued[0]?.uris, [`${AE}-9`])
  })
})

function pick(r: { http: number; code: string }): [number, string] {
  return [r.http, r.code]
}
