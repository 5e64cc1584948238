/**
 * The SDK's PKI helpers on their own: the CSR that createKeyAndCsr makes is accepted by
 * openssl and by the CA's checks, and the EST client maps responses and errors, against a
 * small local HTTPS stand-in for the EST server (the real server is tested end to end in
 * services/bootstrap/test/pki).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { checkCsr, certsOnlyPkcs7, describeCertificate, x509 } from '@m2msec/pki'
import { createDevPki, tmpDir, type DevPki, type TmpDir } from '@m2msec/testkit'
import { createEstClient, createKeyAndCsr } from '../../src/pki/index.ts'

const AE = 'm2m://acme.m2m.example/in-cse/Cae-1'

describe('@m2msec/sdk/pki', () => {
  let dir: TmpDir
  let pki: DevPki
  let server: Server
  let base = ''
  let seen: { path: string; auth: string | undefined; type: string | undefined; body: string } | undefined

  before(async () => {
    dir = await tmpDir('sdk-pki')
    pki = await createDevPki(join(dir.path, 'pki'))
    const leaf = new x509.X509Certificate(pki.server.certPem)
    server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => (body += d.toString()))
      req.on('end', () => {
        seen = { path: req.url ?? '', auth: req.headers.authorization, type: req.headers['content-type'], body }
        if (req.url?.endsWith('/simplereenroll')) {
          res.writeHead(403, { 'content-type': 'text/plain', 'm2msec-error-code': 'ERR_PERMISSION_DENIED' })
          res.end('ERR_PERMISSION_DENIED: names differ\n')
          return
        }
        res.writeHead(200, { 'content-type': 'application/pkcs7-mime' })
        res.end(Buffer.from(certsOnlyPkcs7([new Uint8Array(leaf.rawData)])).toString('base64'))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `https://localhost:${(server.address() as AddressInfo).port}/.well-known/est/acme`
  })
  after(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()))
    await dir?.cleanup()
  })

  test('createKeyAndCsr: a P-256 key and a CSR openssl and the CA accept', async () => {
    const { keyPem, csrDer, csrPem } = await createKeyAndCsr({
      uris: [AE],
      dnsNames: ['cse-1.acme.m2m.example'],
      commonName: 'dev-1',
    })
    const key = createPrivateKey(keyPem)
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1')
    const csr = await checkCsr(csrDer)
    assert.deepEqual(csr.names, { uris: [AE], dnsNames: ['cse-1.acme.m2m.example'] })
    assert.equal(csr.commonName, 'dev-1')
    const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
    assert.deepEqual(Buffer.from(csr.publicKeySpki), spki)
    writeFileSync(join(dir.path, 'req.pem'), csrPem)
    const r = spawnSync('openssl', ['req', '-in', 'req.pem', '-verify', '-noout', '-text'], {
      cwd: dir.path,
      encoding: 'utf8',
    })
    assert.match(`${r.stdout}${r.stderr}`, /verify OK/i)
    assert.match(r.stdout, /URI:m2m:\/\/acme\.m2m\.example\/in-cse\/Cae-1/)
    await assert.rejects(createKeyAndCsr({}), { code: 'ERR_INVALID_ARGUMENT' })
  })

  test('EST client: base64 CSR with Bearer token in, PKCS#7 out; errors keep the server code', async () => {
    const est = createEstClient({ baseUrl: base, caPem: pki.caCertPem })
    const { csrDer } = await createKeyAndCsr({ uris: [AE] })
    const issued = await est.simpleEnroll(csrDer, { token: 'abc.def' })
    assert.equal(seen?.path, '/.well-known/est/acme/simpleenroll')
    assert.equal(seen?.auth, 'Bearer abc.def')
    assert.equal(seen?.type, 'application/pkcs10')
    assert.deepEqual(new Uint8Array(Buffer.from(seen?.body ?? '', 'base64')), csrDer)
    assert.match(issued.certificatePem, /^-----BEGIN CERTIFICATE-----/)
    assert.ok(describeCertificate(issued.certificateDer).names.dnsNames.includes('localhost'))
    assert.equal((await est.caCertificates()).length, 1)
    await assert.rejects(est.simpleReenroll(csrDer, { certPem: pki.server.certPem, keyPem: pki.server.keyPem }), {
      code: 'ERR_PERMISSION_DENIED',
      message: 'names differ',
    })
    const untrusting = createEstClient({
      baseUrl: base,
      caPem: (await createDevPki(join(dir.path, 'other'))).caCertPem,
    })
    await assert.rejects(untrusting.caCertificates(), { code: 'ERR_UNAVAILABLE' })
  })
})
