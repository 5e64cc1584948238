import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect, createServer } from 'node:tls'
import { promisify } from 'node:util'
import { createDevPki, tmpDir, type DevPki, type TmpDir } from '../src/index.ts'

const run = promisify(execFile)
let dir: TmpDir
let pki: DevPki

before(async () => {
  dir = await tmpDir('devpki')
  pki = await createDevPki(dir.path)
})
after(() => dir.cleanup())

test('openssl verify accepts the server and a client certificate', async () => {
  const client = await pki.issueClientCert({
    tenant: 'acme',
    principal: 'dev-42',
    roles: ['device', 'reader'],
  })
  const clientPath = join(dir.path, 'client.pem')
  await writeFile(clientPath, client.certPem)
  const { stdout } = await run('openssl', ['verify', '-CAfile', pki.paths.caCert, pki.paths.serverCert, clientPath])
  assert.match(stdout, /server\.pem: OK/)
  assert.match(stdout, /client\.pem: OK/)
  // Purpose checks: the server cert is a TLS server, the client cert a TLS client.
  await run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', pki.paths.caCert, pki.paths.serverCert])
  await run('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', pki.paths.caCert, clientPath])
})

test('the client certificate names tenant/principal in a SAN URI and roles in OU fields', async () => {
  const client = await pki.issueClientCert({
    tenant: 'ac me/1',
    principal: 'dev:42',
    roles: ['device', 'admin'],
  })
  const cert = new X509Certificate(client.certPem)
  assert.equal(cert.subjectAltName, 'URI:m2msec://ac%20me%2F1/dev%3A42')
  assert.equal(cert.subject, 'CN=dev:42\nO=ac me/1\nOU=role:device\nOU=role:admin')
  assert.ok(cert.checkIssued(new X509Certificate(pki.caCertPem)))
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1')
  await assert.rejects(pki.issueClientCert({ tenant: '', principal: 'p', roles: [] }), {
    code: 'ERR_INVALID_ARGUMENT',
  })
})

test('the server certificate covers localhost and 127.0.0.1', () => {
  const cert = new X509Certificate(pki.server.certPem)
  assert.equal(cert.checkHost('localhost'), 'localhost')
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1')
})

test('createDevPki is idempotent: a second call reuses the files', async () => {
  const before = await readFile(pki.paths.caKey, 'utf8')
  const again = await createDevPki(dir.path)
  assert.equal(again.caCertPem, pki.caCertPem)
  assert.equal(again.server.certPem, pki.server.certPem)
  assert.equal(await readFile(pki.paths.caKey, 'utf8'), before)
})

test('mTLS with the dev PKI: the server sees the client SAN URI', async () => {
  const client = await pki.issueClientCert({ tenant: 't1', principal: 'svc-a', roles: ['service'] })
  const server = createServer({
    cert: pki.server.certPem,
    key: pki.server.keyPem,
    ca: pki.caCertPem,
    requestCert: true,
    rejectUnauthorized: true,
  })
  const seen = new Promise<string | undefined>((resolve) =>
    server.once('secureConnection', (socket) => {
      resolve(socket.getPeerX509Certificate()?.subjectAltName)
      socket.end()
    }),
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const socket = connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: pki.caCertPem,
    cert: client.certPem,
    key: client.keyPem,
  })
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve)
      socket.once('error', reject)
    })
    assert.equal(await seen, 'URI:m2msec://t1/svc-a')
  } finally {
    socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  }
})
