/**
 * Certificate credentials issued by a PKI like the bootstrap service's: a URI SAN that is the
 * "full URI" of an absolute AE-ID names the entity, and the CRL of the leaf's distribution
 * point is checked (revoked: ERR_TOKEN_REVOKED after the signature verified; CRL unreachable,
 * not signed by the issuer or stale: ERR_UNAVAILABLE, fail closed). CRLs are cached.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, webcrypto } from 'node:crypto'
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { SignJWT } from 'jose'
import { createAuthnOperations, type AuthnOperations } from '../../src/domain/operations/index.ts'
import { createCrlRevocation } from '../../src/domain/revocation.ts'
import { namesEntity } from '../../src/domain/certificates.ts'
import { ADMIN, AUD, codeOf, createWorld, type World } from './world.ts'
import { createTestCa, type TestCa } from '../test-pki.ts'

const SIG = { name: 'ECDSA', hash: 'SHA-256' } as const
const AE = '//acme.example/in-cse/Cmeter01'
const CRL_URL = 'http://pki.test/pki/acme/crl'

let root: TestCa
let issuing: TestCa

interface Leaf {
  cert: x509.X509Certificate
  key: webcrypto.CryptoKey
}

async function leaf(uri: string, crlUrl: string | undefined = CRL_URL): Promise<Leaf> {
  const k = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `7f${randomBytes(15).toString('hex')}`,
    subject: 'CN=meter',
    issuer: issuing.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: k.publicKey,
    signingKey: issuing.key,
    signingAlgorithm: SIG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]),
      ...(crlUrl === undefined ? [] : [new x509.CRLDistributionPointsExtension([crlUrl])]),
    ],
  })
  return { cert, key: k.privateKey }
}

async function crl(revoked: x509.X509Certificate[], signer = issuing, nextUpdateMs = 3_600_000): Promise<Uint8Array> {
  const c = await x509.X509CrlGenerator.create({
    issuer: signer.cert.subject,
    thisUpdate: new Date(Date.now() - 1000),
    nextUpdate: new Date(Date.now() + nextUpdateMs),
    entries: revoked.map((r) => ({ serialNumber: r.serialNumber, revocationDate: new Date() })),
    signingKey: signer.key,
    signingAlgorithm: SIG,
  })
  return new Uint8Array(c.rawData)
}

function assertion(entity: string, l: Leaf): Promise<string> {
  return new SignJWT({ jti: randomBytes(12).toString('base64url') })
    .setProtectedHeader({
      alg: 'ES256',
      x5c: [l.cert, issuing.cert].map((c) => Buffer.from(c.rawData).toString('base64')),
    })
    .setIssuer(entity)
    .setSubject(entity)
    .setAudience(AUD)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(l.key)
}

before(async () => {
  x509.cryptoProvider.set(webcrypto)
  root = await createTestCa('acme Root CA')
  issuing = await createTestCa('acme Issuing CA', root)
})

async function setup(fetchCrl: (url: string) => Promise<Uint8Array>, cacheMs = 0) {
  const world: World = await createWorld()
  const fetched: string[] = []
  const revocation = createCrlRevocation({
    fetchCrl: (url) => {
      fetched.push(url)
      return fetchCrl(url)
    },
    clock: { now: () => new Date() },
    cacheMs,
    allowedUrlPrefixes: ['http://pki.test/'],
  })
  const ops: AuthnOperations = createAuthnOperations({ ...world.deps, revocation })
  await ops.addTrustAnchors(ADMIN, [root.pem])
  await ops.registerEntity(ADMIN, { entityId: AE, kind: 'AE', roles: ['meter'], labels: {} })
  const issue = async (l: Leaf, entity = AE) =>
    ops.issueToken({ tenant: 'acme', assertion: await assertion(entity, l), audience: '', popPublicJwk: '' })
  return { ops, fetched, issue }
}

test('the full URI of an absolute AE-ID names it; other URIs and relative ids do not', async () => {
  const l = await leaf('m2m://acme.example/in-cse/Cmeter01')
  assert.ok(namesEntity(l.cert, AE))
  assert.ok(!namesEntity(l.cert, '/in-cse/Cmeter01'))
  assert.ok(!namesEntity(l.cert, '//acme.example/in-cse/Cmeter02'))
  assert.ok(!namesEntity((await leaf('m2m://evil.example/in-cse/Cmeter01')).cert, AE))
})

test('a certificate not on the CRL gets a token; once listed it is ERR_TOKEN_REVOKED', async () => {
  const good = await leaf('m2m://acme.example/in-cse/Cmeter01')
  const revoked: x509.X509Certificate[] = []
  const { issue, fetched, ops } = await setup(() => crl(revoked))
  const issued = await issue(good)
  assert.equal(issued.loa, 3)
  assert.deepEqual(fetched, [CRL_URL])
  revoked.push(good.cert)
  assert.equal(await codeOf(issue(good)), 'ERR_TOKEN_REVOKED')
  // AddCredential checks it too.
  assert.equal(
    await codeOf(
      ops.addCredential(ADMIN, {
        entityId: AE,
        credential: {
          type: 'CERTIFICATE',
          chainPem: [good.cert, issuing.cert].map((c) => c.toString('pem')).join('\n'),
        },
      }),
    ),
    'ERR_TOKEN_REVOKED',
  )
})

test('fail closed: CRL unreachable, signed by another key, stale, or at a URL outside the prefixes', async () => {
  const l = await leaf('m2m://acme.example/in-cse/Cmeter01')
  const other = await createTestCa('acme Issuing CA', root) // same name, another key
  const cases: Array<[string, (url: string) => Promise<Uint8Array>]> = [
    ['unreachable', () => Promise.reject(new Error('connection refused'))],
    ['forged', () => crl([], other)],
    ['stale', () => crl([], issuing, -1000)],
    ['garbage', async () => new Uint8Array(randomBytes(64))],
  ]
  for (const [what, fetchCrl] of cases) {
    const { issue } = await setup(fetchCrl)
    assert.equal(await codeOf(issue(l)), 'ERR_UNAVAILABLE', what)
  }
  const { issue } = await setup(() => crl([]))
  assert.equal(
    await codeOf(issue(await leaf('m2m://acme.example/in-cse/Cmeter01', 'http://10.0.0.1/crl'))),
    'ERR_UNAVAILABLE',
  )
  // No distribution point: not checked.
  assert.equal((await issue(await leaf('m2m://acme.example/in-cse/Cmeter01', undefined))).loa, 3)
})

test('a CRL is cached for cacheMs and fetched once for concurrent checks', async () => {
  const l = await leaf('m2m://acme.example/in-cse/Cmeter01')
  const { issue, fetched } = await setup(() => crl([]), 60_000)
  await Promise.all([issue(l), issue(l), issue(l)])
  await issue(l)
  assert.equal(fetched.length, 1)
})

test('an assertion whose signature does not verify never reaches the CRL', async () => {
  const l = await leaf('m2m://acme.example/in-cse/Cmeter01')
  const { ops, fetched } = await setup(() => crl([l.cert]))
  const good = await assertion(AE, l)
  const tampered = `${good.slice(0, good.lastIndexOf('.'))}.${Buffer.alloc(64, 1).toString('base64url')}`
  assert.equal(
    await codeOf(ops.issueToken({ tenant: 'acme', assertion: tampered, audience: '', popPublicJwk: '' })),
    'ERR_TOKEN_INVALID',
  )
  assert.equal(fetched.length, 0)
})
