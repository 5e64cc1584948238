/**
 * OCSP for certificate credentials (RFC 6960), OCSP first then CRL: a good or revoked answer
 * signed by the issuer (or its delegated id-kp-OCSPSigning responder) decides; no answer
 * (unknown, unreachable, forged, unauthorized responder, stale, wrong nonce, garbage, error
 * status) falls back to the CRL; nothing answers: ERR_UNAVAILABLE (fail closed). Answers are
 * cached until nextUpdate, at most cacheMs. The responses are built here with pkijs so each
 * field can be made wrong on purpose.
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { KeyObject, createHash, randomBytes, sign, webcrypto } from 'node:crypto'
import 'reflect-metadata'
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import * as x509 from '@peculiar/x509'
import { SignJWT } from 'jose'
import { createAuthnOperations } from '../../src/domain/operations/index.ts'
import {
  createCertificateRevocation,
  createCrlSource,
  createOcspSource,
  type RevocationSource,
} from '../../src/domain/revocation.ts'
import { ocspUrls } from '../../src/domain/ocsp.ts'
import { ADMIN, AUD, codeOf, createWorld } from './world.ts'
import { createTestCa, type TestCa } from '../test-pki.ts'

const SIG = { name: 'ECDSA', hash: 'SHA-256' } as const
const AE = '//acme.example/in-cse/Cmeter01'
const CRL_URL = 'http://pki.test/pki/acme/crl'
const OCSP_URL = 'http://pki.test/pki/acme/ocsp'
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9'

let root: TestCa
let issuing: TestCa

interface Leaf {
  cert: x509.X509Certificate
  key: webcrypto.CryptoKey
}

interface Signer {
  cert: x509.X509Certificate
  key: webcrypto.CryptoKey
}

async function ecKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair
}

async function leaf(pointers: { crl?: boolean; ocsp?: boolean } = { crl: true, ocsp: true }): Promise<Leaf> {
  const k = await ecKeys()
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
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'm2m://acme.example/in-cse/Cmeter01' }]),
      ...(pointers.crl === true ? [new x509.CRLDistributionPointsExtension([CRL_URL])] : []),
      ...(pointers.ocsp === true ? [new x509.AuthorityInfoAccessExtension({ ocsp: [OCSP_URL] })] : []),
    ],
  })
  return { cert, key: k.privateKey }
}

/** A responder certificate issued by `ca` (with id-kp-OCSPSigning unless `eku` is false). */
async function responder(ca: TestCa, eku = true): Promise<Signer> {
  const k = await ecKeys()
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: `7e${randomBytes(15).toString('hex')}`,
    subject: 'CN=acme OCSP responder',
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: k.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIG,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(eku ? [OCSP_SIGNING] : ['1.3.6.1.5.5.7.3.2']),
    ],
  })
  return { cert, key: k.privateKey }
}

async function crl(revoked: x509.X509Certificate[]): Promise<Uint8Array> {
  const c = await x509.X509CrlGenerator.create({
    issuer: issuing.cert.subject,
    thisUpdate: new Date(Date.now() - 1000),
    nextUpdate: new Date(Date.now() + 3_600_000),
    entries: revoked.map((r) => ({ serialNumber: r.serialNumber, revocationDate: new Date() })),
    signingKey: issuing.key,
    signingAlgorithm: SIG,
  })
  return new Uint8Array(c.rawData)
}

interface AnswerOptions {
  status: 'good' | 'revoked' | 'unknown'
  /** Default: the issuing CA. */
  signer?: Signer
  /** Whom the ResponderID names; default the signer. */
  claims?: Signer
  /** Certificates carried in the response. */
  certs?: x509.X509Certificate[]
  /** ms from now; null = no nextUpdate. Default one hour. */
  nextUpdateMs?: number | null
  thisUpdateMs?: number
  nonce?: 'echo' | 'none' | 'wrong'
  /** Answer about another serial. */
  otherSerial?: boolean
  /** The responder's clock (ms); default now. */
  at?: number
}

const keyBits = (cert: x509.X509Certificate) =>
  pkijs.Certificate.fromBER(new Uint8Array(cert.rawData)).subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView

/** A signed OCSPResponse to `requestDer`, built field by field. */
function answer(requestDer: Uint8Array, o: AnswerOptions): Uint8Array {
  const request = pkijs.OCSPRequest.fromBER(requestDer.slice())
  const reqCert = request.tbsRequest.requestList[0]!.reqCert
  const certID = o.otherSerial
    ? new pkijs.CertID({
        hashAlgorithm: reqCert.hashAlgorithm,
        issuerNameHash: reqCert.issuerNameHash,
        issuerKeyHash: reqCert.issuerKeyHash,
        serialNumber: new asn1js.Integer({ value: 12345 }),
      })
    : reqCert
  const signer = o.signer ?? issuing
  const now = o.at ?? Date.now()
  const certStatus =
    o.status === 'revoked'
      ? new asn1js.Constructed({
          idBlock: { tagClass: 3, tagNumber: 1 },
          value: [new asn1js.GeneralizedTime({ valueDate: new Date(now - 10_000) })],
        })
      : new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: o.status === 'good' ? 0 : 2 } })
  const next = o.nextUpdateMs === undefined ? 3_600_000 : o.nextUpdateMs
  const basic = new pkijs.BasicOCSPResponse()
  const data = basic.tbsResponseData
  data.responderID = new asn1js.OctetString({
    valueHex: createHash('sha1')
      .update(keyBits((o.claims ?? signer).cert))
      .digest(),
  })
  data.producedAt = new Date(now)
  data.responses = [
    new pkijs.SingleResponse({
      certID,
      certStatus,
      thisUpdate: new Date(now + (o.thisUpdateMs ?? -1000)),
      ...(next === null ? {} : { nextUpdate: new Date(now + next) }),
    }),
  ]
  const nonce = request.tbsRequest.requestExtensions?.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2')
  const mode = o.nonce ?? 'echo'
  if (mode !== 'none' && nonce !== undefined) {
    const value =
      mode === 'echo'
        ? nonce.extnValue.valueBlock.valueHexView.slice()
        : new Uint8Array(new asn1js.OctetString({ valueHex: randomBytes(16) }).toBER(false))
    data.responseExtensions = [
      new pkijs.Extension({ extnID: '1.3.6.1.5.5.7.48.1.2', critical: false, extnValue: value.buffer }),
    ]
  }
  const tbs = new Uint8Array(data.toSchema(true).toBER(false))
  data.tbsView = tbs
  basic.signatureAlgorithm = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.10045.4.3.2' })
  basic.signature = new asn1js.BitString({ valueHex: sign('sha256', tbs, KeyObject.from(signer.key)) })
  if (o.certs !== undefined) basic.certs = o.certs.map((c) => pkijs.Certificate.fromBER(new Uint8Array(c.rawData)))
  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: '1.3.6.1.5.5.7.48.1.1',
      response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER(false) }),
    }),
  })
  return new Uint8Array(response.toSchema().toBER(false))
}

function assertion(l: Leaf): Promise<string> {
  return new SignJWT({ jti: randomBytes(12).toString('base64url') })
    .setProtectedHeader({
      alg: 'ES256',
      x5c: [l.cert, issuing.cert].map((c) => Buffer.from(c.rawData).toString('base64')),
    })
    .setIssuer(AE)
    .setSubject(AE)
    .setAudience(AUD)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(l.key)
}

const unreachable = () => Promise.reject(new Error('connection refused'))

interface Setup {
  postOcsp?: (url: string, der: Uint8Array) => Promise<Uint8Array>
  fetchCrl?: (url: string) => Promise<Uint8Array>
  prefer?: 'ocsp' | 'crl'
  cacheMs?: number
  now?: () => number
}

async function setup(s: Setup) {
  const world = await createWorld()
  const posted: string[] = []
  const fetched: string[] = []
  const clock = { now: () => new Date(s.now?.() ?? Date.now()) }
  const ocsp = createOcspSource({
    postOcsp: (url, der) => {
      posted.push(url)
      return (s.postOcsp ?? unreachable)(url, der)
    },
    clock,
    random: (n) => new Uint8Array(randomBytes(n)),
    cacheMs: s.cacheMs ?? 0,
    allowedUrlPrefixes: ['http://pki.test/'],
  })
  const crlSource = createCrlSource({
    fetchCrl: (url) => {
      fetched.push(url)
      return (s.fetchCrl ?? unreachable)(url)
    },
    clock,
    cacheMs: 0,
    allowedUrlPrefixes: ['http://pki.test/'],
  })
  const order: RevocationSource[] = s.prefer === 'crl' ? [crlSource, ocsp] : [ocsp, crlSource]
  const ops = createAuthnOperations({ ...world.deps, revocation: createCertificateRevocation({ order }) })
  await ops.addTrustAnchors(ADMIN, [root.pem])
  await ops.registerEntity(ADMIN, { entityId: AE, kind: 'AE', roles: ['meter'], labels: {} })
  const issue = async (l: Leaf) =>
    ops.issueToken({ tenant: 'acme', assertion: await assertion(l), audience: '', popPublicJwk: '' })
  return { issue, posted, fetched }
}

before(async () => {
  x509.cryptoProvider.set(webcrypto)
  root = await createTestCa('acme Root CA')
  issuing = await createTestCa('acme Issuing CA', root)
})

test('the AIA OCSP URL of a certificate', async () => {
  assert.deepEqual(ocspUrls((await leaf()).cert), [OCSP_URL])
  assert.deepEqual(ocspUrls((await leaf({ crl: true })).cert), [])
})

test('OCSP decides while the CRL is unreachable: good gets a token, revoked is ERR_TOKEN_REVOKED', async () => {
  const l = await leaf()
  let status: 'good' | 'revoked' = 'good'
  const { issue, posted, fetched } = await setup({ postOcsp: async (_u, der) => answer(der, { status }) })
  assert.equal((await issue(l)).loa, 3)
  status = 'revoked'
  assert.equal(await codeOf(issue(l)), 'ERR_TOKEN_REVOKED')
  assert.deepEqual(posted, [OCSP_URL, OCSP_URL])
  assert.deepEqual(fetched, [], 'the CRL is not needed when OCSP answers')
})

test('a delegated responder (issued by the issuer, id-kp-OCSPSigning, carried in the response) is accepted', async () => {
  const l = await leaf()
  const delegate = await responder(issuing)
  const { issue } = await setup({
    postOcsp: async (_u, der) => answer(der, { status: 'revoked', signer: delegate, certs: [delegate.cert] }),
  })
  assert.equal(await codeOf(issue(l)), 'ERR_TOKEN_REVOKED')
})

test('OCSP without an answer falls back to the CRL, which decides', async () => {
  const l = await leaf()
  const other = await createTestCa('acme Issuing CA', root) // same name, another key
  const noEku = await responder(issuing, false)
  const foreign = await responder(other)
  // Every bad answer says "good": had it been accepted, a token would be issued.
  const cases: Array<[string, (der: Uint8Array) => Promise<Uint8Array>]> = [
    ['unreachable', unreachable],
    ['unknown', async (der) => answer(der, { status: 'unknown' })],
    ['signed by an unknown responder', async (der) => answer(der, { status: 'good', signer: other })],
    ['forged signature', async (der) => answer(der, { status: 'good', signer: other, claims: issuing })],
    [
      'responder without OCSPSigning',
      async (der) => answer(der, { status: 'good', signer: noEku, certs: [noEku.cert] }),
    ],
    ['responder of another CA', async (der) => answer(der, { status: 'good', signer: foreign, certs: [foreign.cert] })],
    ['stale', async (der) => answer(der, { status: 'good', nextUpdateMs: -1000, thisUpdateMs: -3_600_000 })],
    ['old, no nextUpdate', async (der) => answer(der, { status: 'good', nextUpdateMs: null, thisUpdateMs: -600_000 })],
    ['from the future', async (der) => answer(der, { status: 'good', thisUpdateMs: 3_600_000 })],
    ['wrong nonce', async (der) => answer(der, { status: 'good', nonce: 'wrong' })],
    ['another serial', async (der) => answer(der, { status: 'good', otherSerial: true })],
    ['garbage', async () => new Uint8Array(randomBytes(64))],
    ['tryLater', async () => new Uint8Array([0x30, 0x03, 0x0a, 0x01, 0x03])],
  ]
  for (const [what, post] of cases) {
    const { issue, fetched } = await setup({ postOcsp: (_u, der) => post(der), fetchCrl: () => crl([l.cert]) })
    assert.equal(await codeOf(issue(l)), 'ERR_TOKEN_REVOKED', what)
    assert.deepEqual(fetched, [CRL_URL], what)
  }
  const { issue } = await setup({
    postOcsp: async (_u, der) => answer(der, { status: 'unknown' }),
    fetchCrl: () => crl([]),
  })
  assert.equal((await issue(l)).loa, 3, 'unknown to OCSP, not on the CRL')
})

test('fail closed: neither OCSP nor the CRL answers; no pointer at all is not checked', async () => {
  const l = await leaf()
  const { issue } = await setup({ postOcsp: async (_u, der) => answer(der, { status: 'unknown' }) })
  assert.equal(await codeOf(issue(l)), 'ERR_UNAVAILABLE')
  const ocspOnly = await leaf({ ocsp: true })
  assert.equal(await codeOf((await setup({})).issue(ocspOnly)), 'ERR_UNAVAILABLE')
  assert.equal((await (await setup({})).issue(await leaf({}))).loa, 3)
})

test('a responder that omits the nonce is accepted (freshness from thisUpdate/nextUpdate)', async () => {
  const l = await leaf()
  const { issue } = await setup({ postOcsp: async (_u, der) => answer(der, { status: 'good', nonce: 'none' }) })
  assert.equal((await issue(l)).loa, 3)
})

test('good and revoked answers are cached until nextUpdate, at most cacheMs', async () => {
  const l = await leaf()
  let now = Date.now()
  let nextUpdateMs = 3_600_000
  const { issue, posted } = await setup({
    postOcsp: async (_u, der) => answer(der, { status: 'good', nextUpdateMs, at: now }),
    cacheMs: 60_000,
    now: () => now,
  })
  await issue(l)
  await issue(l)
  assert.equal(posted.length, 1, 'second check from the cache')
  now += 61_000
  nextUpdateMs = 30_000
  await issue(l)
  assert.equal(posted.length, 2, 'cacheMs passed')
  now += 31_000
  await issue(l)
  assert.equal(posted.length, 3, 'nextUpdate passed before cacheMs')
})

test('prefer crl: the CRL is asked first and OCSP only when the CRL has no answer', async () => {
  const l = await leaf()
  const ok = await setup({
    prefer: 'crl',
    fetchCrl: () => crl([]),
    postOcsp: async (_u, der) => answer(der, { status: 'revoked' }),
  })
  assert.equal((await ok.issue(l)).loa, 3)
  assert.equal(ok.posted.length, 0)
  const fallback = await setup({ prefer: 'crl', postOcsp: async (_u, der) => answer(der, { status: 'revoked' }) })
  assert.equal(await codeOf(fallback.issue(l)), 'ERR_TOKEN_REVOKED')
})
