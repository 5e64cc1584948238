import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { webcrypto, X509Certificate } from 'node:crypto'
import {
  assertNamesAllowed,
  buildCrl,
  buildOcspResponse,
  certsOnlyPkcs7,
  checkCsr,
  crlPem,
  describeCertificate,
  issueLeafCertificate,
  localSigner,
  newSerialHex,
  normalizeNames,
  ocspErrorResponse,
  parseCertsOnlyPkcs7,
  parseOcspRequest,
  p1363ToDer,
  verifyCertificatePath,
  type OcspStatus,
} from '../src/index.ts'
import {
  DAY,
  DOMAIN,
  certificatePem,
  createTestCa,
  openssl,
  opensslCsr,
  random,
  scratch,
  type TestCa,
} from './helpers.ts'

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
  return 'resolved'
}

const URI = `m2m://${DOMAIN}/in-cse/Cae-meter-1`
const NOW = new Date()

describe('@m2msec/pki', () => {
  let ca: TestCa
  const dir = scratch()
  before(async () => {
    ca = await createTestCa(NOW)
    dir.file('root.pem', certificatePem(ca.root))
    dir.file('issuing.pem', certificatePem(ca.issuing))
    dir.file('chain.pem', certificatePem(ca.root) + certificatePem(ca.issuing))
  })
  after(() => dir.cleanup())

  async function issue(uris: string[], serialHex = newSerialHex(random)) {
    const csr = await checkCsr(opensslCsr(dir.path, `k${serialHex.slice(0, 8)}`, uris.map((u) => `URI:${u}`).join(',')))
    return issueLeafCertificate(
      {
        serialHex,
        publicKeySpki: csr.publicKeySpki,
        names: csr.names,
        notBefore: new Date(NOW.getTime() - 60_000),
        notAfter: new Date(NOW.getTime() + 30 * DAY),
        crlUrl: 'http://127.0.0.1:1/crl',
        ocspUrl: 'http://127.0.0.1:1/ocsp',
        ...(csr.commonName === undefined ? {} : { commonName: csr.commonName }),
      },
      { certificate: ca.issuing, signer: ca.issuingSigner },
    )
  }

  test('CA chain and an AE-ID leaf pass openssl verify; nameConstraints are on both CA certificates', async () => {
    const leaf = await issue([URI])
    dir.file('leaf.pem', certificatePem(leaf))
    const r = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'leaf.pem'], dir.path)
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /leaf\.pem: OK/)
    for (const f of ['root.pem', 'issuing.pem']) {
      const text = openssl(['x509', '-in', f, '-noout', '-text'], dir.path).out
      assert.match(text, /X509v3 Name Constraints: critical/)
      assert.match(text, new RegExp(`URI:\\.${DOMAIN.replace(/\./g, '\\.')}`))
      assert.match(text, /Digital Signature, Certificate Sign, CRL Sign/)
    }
    const info = describeCertificate(leaf)
    assert.deepEqual(info.names.uris, [URI])
    const text = openssl(['x509', '-in', 'leaf.pem', '-noout', '-text'], dir.path).out
    assert.match(text, /ecdsa-with-SHA256/)
    assert.match(text, /CA:FALSE/)
    assert.match(text, /TLS Web Client Authentication, TLS Web Server Authentication/)
    assert.match(text, /OCSP - URI:http:\/\/127\.0\.0\.1:1\/ocsp/)
  })

  test('a name outside the domain violates the CA nameConstraints (openssl refuses the chain)', async () => {
    const leaf = await issue(['m2m://evil.example/in-cse/Cae-x'])
    dir.file('outside.pem', certificatePem(leaf))
    const r = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'outside.pem'], dir.path)
    assert.notEqual(r.status, 0)
    assert.match(r.out, /permitted subtree violation/)
  })

  test('CSR checks: openssl P-256 CSR accepted; bad input gets typed errors', async () => {
    const good = opensslCsr(dir.path, 'good', `URI:${URI},DNS:cse-1.${DOMAIN}`)
    const csr = await checkCsr(good)
    assert.deepEqual(csr.names, { uris: [URI], dnsNames: [`cse-1.${DOMAIN}`] })
    assert.equal(csr.commonName, 'good')
    assert.equal(csr.publicKeySpki.length, 91)

    assert.equal(await codeOf(checkCsr(good, { maxBytes: 100 })), 'ERR_PAYLOAD_TOO_LARGE')
    assert.equal(await codeOf(checkCsr(new Uint8Array([0x30, 0x03, 1, 2, 3]))), 'ERR_INVALID_ARGUMENT')
    const p384 = opensslCsr(dir.path, 'p384', `URI:${URI}`, ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'])
    assert.equal(await codeOf(checkCsr(p384)), 'ERR_KEY_TYPE_MISMATCH')
    const rsa = opensslCsr(dir.path, 'rsa', `URI:${URI}`, ['-newkey', 'rsa:2048'])
    assert.equal(await codeOf(checkCsr(rsa)), 'ERR_KEY_TYPE_MISMATCH')
    const tampered = good.slice()
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01
    assert.equal(await codeOf(checkCsr(tampered)), 'ERR_SIGNATURE_INVALID')
    const noSan = opensslCsr(dir.path, 'nosan', undefined)
    assert.equal(await codeOf(checkCsr(noSan)), 'ERR_INVALID_ARGUMENT')
    const email = opensslCsr(dir.path, 'email', 'email:a@acme.m2m.example')
    assert.equal(await codeOf(checkCsr(email)), 'ERR_INVALID_ARGUMENT')
  })

  test('names: syntax, domain, authorization', async () => {
    const ok = normalizeNames({ uris: [URI, URI], dnsNames: [`cse-1.${DOMAIN}`] }, DOMAIN)
    assert.deepEqual(ok.uris, [URI])
    assert.equal(
      await codeOf(() => normalizeNames({ uris: [`m2m://*.${DOMAIN}/x`], dnsNames: [] }, DOMAIN)),
      'ERR_INVALID_ARGUMENT',
    )
    assert.equal(
      await codeOf(() => normalizeNames({ uris: ['urn:dev:mac:0024befffe804ff1'], dnsNames: [] }, DOMAIN)),
      'ERR_INVALID_ARGUMENT',
    )
    assert.equal(
      await codeOf(() => normalizeNames({ uris: ['m2m://other.example/x'], dnsNames: [] }, DOMAIN)),
      'ERR_PERMISSION_DENIED',
    )
    assert.equal(
      await codeOf(() => normalizeNames({ uris: [], dnsNames: [`notacme${DOMAIN}`] }, DOMAIN)),
      'ERR_PERMISSION_DENIED',
    )
    assert.equal(await codeOf(() => normalizeNames({ uris: [], dnsNames: [] }, DOMAIN)), 'ERR_INVALID_ARGUMENT')
    assertNamesAllowed({ uris: [URI], dnsNames: [] }, { uris: [URI, `${URI}2`], dnsNames: [] })
    assert.equal(
      await codeOf(() => assertNamesAllowed({ uris: [`${URI}2`], dnsNames: [] }, { uris: [URI], dnsNames: [] })),
      'ERR_PERMISSION_DENIED',
    )
  })

  test('CRL signed by the issuing CA: openssl verifies it and reports the revoked certificate', async () => {
    const revokedSerial = newSerialHex(random)
    const revoked = await issue([`${URI}-revoked`], revokedSerial)
    const good = await issue([`${URI}-good`])
    dir.file('rev.pem', certificatePem(revoked))
    dir.file('good.pem', certificatePem(good))
    const crl = await buildCrl(
      {
        issuerCertificate: ca.issuing,
        entries: [{ serialHex: revokedSerial, revokedAt: NOW, reason: 'keyCompromise' }],
        crlNumber: 3,
        thisUpdate: new Date(NOW.getTime() - 1000),
        nextUpdate: new Date(NOW.getTime() + DAY),
      },
      ca.issuingSigner,
    )
    dir.file('ca.crl', crlPem(crl))
    const c = openssl(['crl', '-in', 'ca.crl', '-CAfile', 'issuing.pem', '-noout', '-text'], dir.path)
    assert.equal(c.status, 0, c.out)
    assert.match(c.out, /verify OK/)
    assert.match(c.out, /X509v3 CRL Number:\s*\n\s*3/)
    assert.match(c.out, new RegExp(`Serial Number: ${revokedSerial.toUpperCase()}`))
    assert.match(c.out, /Key Compromise/)
    const v = openssl(
      ['verify', '-crl_check', '-CRLfile', 'ca.crl', '-CAfile', 'chain.pem', 'good.pem', 'rev.pem'],
      dir.path,
    )
    assert.match(v.out, /good\.pem: OK/)
    assert.match(v.out, /certificate revoked/)
  })

  test('OCSP: an openssl request answered good / revoked / unknown, nonce echoed, signature verified', async () => {
    const revokedSerial = newSerialHex(random)
    const revoked = await issue([`${URI}-ocsp-revoked`], revokedSerial)
    const good = await issue([`${URI}-ocsp-good`])
    dir.file('orev.pem', certificatePem(revoked))
    dir.file('ogood.pem', certificatePem(good))
    const rq = openssl(
      ['ocsp', '-issuer', 'issuing.pem', '-cert', 'ogood.pem', '-cert', 'orev.pem', '-reqout', 'req.der'],
      dir.path,
    )
    assert.equal(rq.status, 0, rq.out)
    const request = parseOcspRequest(new Uint8Array(dir.read('req.der')))
    assert.equal(request.certIds.length, 2)
    assert.ok(request.nonce !== undefined)
    const statusOf = async (serial: string): Promise<OcspStatus> =>
      serial === revokedSerial ? { status: 'revoked', revokedAt: NOW, reason: 'keyCompromise' } : { status: 'good' }
    const der = await buildOcspResponse(
      {
        request,
        issuerCertificate: ca.issuing,
        statusOf,
        producedAt: NOW,
        nextUpdate: new Date(NOW.getTime() + 3600_000),
      },
      ca.issuingSigner,
    )
    dir.file('resp.der', der)
    // With -reqin alone openssl checks the nonce and the signature (TOOLCHAIN pitfall 16) ...
    const v = openssl(['ocsp', '-reqin', 'req.der', '-respin', 'resp.der', '-CAfile', 'chain.pem'], dir.path)
    assert.match(v.out, /Response verify OK/, v.out)
    assert.doesNotMatch(v.out, /Nonce Verify error/)
    // ... and with -issuer/-cert it matches the statuses to the certificates.
    const st = openssl(
      [
        'ocsp',
        '-respin',
        'resp.der',
        '-CAfile',
        'chain.pem',
        '-issuer',
        'issuing.pem',
        '-cert',
        'ogood.pem',
        '-cert',
        'orev.pem',
        '-no_nonce',
      ],
      dir.path,
    )
    assert.match(st.out, /Response verify OK/, st.out)
    assert.match(st.out, /ogood\.pem: good/)
    assert.match(st.out, /orev\.pem: revoked/)

    // A CertID of another issuer is "unknown" without asking the store.
    const other = await createTestCa(NOW)
    dir.file('other-issuing.pem', certificatePem(other.issuing))
    openssl(['ocsp', '-issuer', 'other-issuing.pem', '-serial', `0x${revokedSerial}`, '-reqout', 'req2.der'], dir.path)
    let asked = 0
    const der2 = await buildOcspResponse(
      {
        request: parseOcspRequest(new Uint8Array(dir.read('req2.der'))),
        issuerCertificate: ca.issuing,
        statusOf: async () => ((asked += 1), { status: 'good' }),
        producedAt: NOW,
        nextUpdate: new Date(NOW.getTime() + 3600_000),
      },
      ca.issuingSigner,
    )
    dir.file('resp2.der', der2)
    const t = openssl(['ocsp', '-respin', 'resp2.der', '-resp_text', '-noverify'], dir.path)
    assert.match(t.out, /Cert Status: unknown/)
    assert.equal(asked, 0)

    assert.equal(await codeOf(() => parseOcspRequest(new Uint8Array([1, 2, 3]))), 'ERR_INVALID_ARGUMENT')
    dir.file('err.der', ocspErrorResponse('malformedRequest'))
    assert.match(openssl(['ocsp', '-respin', 'err.der', '-resp_text'], dir.path).out, /malformedrequest/i)
  })

  test('PKCS#7 certs-only round-trips and openssl reads it', async () => {
    const p7 = certsOnlyPkcs7([ca.issuing, ca.root])
    dir.file('certs.p7', p7)
    const r = openssl(['pkcs7', '-inform', 'DER', '-in', 'certs.p7', '-print_certs', '-noout'], dir.path)
    assert.equal(r.status, 0, r.out)
    assert.match(r.out, /acme Issuing CA/)
    const back = parseCertsOnlyPkcs7(Buffer.from(p7).toString('base64'))
    assert.equal(back.length, 2)
    assert.deepEqual(back[0], ca.issuing)
    assert.equal(await codeOf(() => parseCertsOnlyPkcs7('bm90IHBrY3M3')), 'ERR_INVALID_ARGUMENT')
  })

  test('client certificate path validation', async () => {
    const leaf = await issue([`${URI}-path`])
    assert.deepEqual(verifyCertificatePath(leaf, [ca.issuing], [ca.root], NOW), ca.root)
    assert.deepEqual(verifyCertificatePath(leaf, [], [ca.issuing], NOW), ca.issuing)
    assert.equal(await codeOf(() => verifyCertificatePath(leaf, [], [ca.root], NOW)), 'ERR_UNAUTHENTICATED')
    const other = await createTestCa(NOW)
    assert.equal(
      await codeOf(() => verifyCertificatePath(leaf, [other.issuing], [other.root], NOW)),
      'ERR_UNAUTHENTICATED',
    )
    const later = new Date(NOW.getTime() + 40 * DAY)
    assert.equal(await codeOf(() => verifyCertificatePath(leaf, [ca.issuing], [ca.root], later)), 'ERR_UNAUTHENTICATED')
    assert.equal(await codeOf(() => verifyCertificatePath(ca.issuing, [], [ca.root], NOW)), 'ERR_UNAUTHENTICATED')
  })

  test('p1363ToDer gives a signature node:crypto verifies as DER', async () => {
    const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
    const msg = new TextEncoder().encode('m2msec')
    for (let i = 0; i < 20; i++) {
      const sig = await localSigner(pair.privateKey).sign(msg)
      const der = p1363ToDer(sig)
      const { createPublicKey, verify } = await import('node:crypto')
      const pub = createPublicKey({
        key: Buffer.from(await webcrypto.subtle.exportKey('spki', pair.publicKey)),
        format: 'der',
        type: 'spki',
      })
      assert.ok(verify('sha256', msg, pub, der))
    }
    assert.ok(new X509Certificate(ca.root).verify(new X509Certificate(ca.root).publicKey))
  })
})
