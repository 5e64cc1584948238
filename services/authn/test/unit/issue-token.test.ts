/**
 * The token endpoint with in-memory fakes: the assertion verification table (every bad
 * assertion gets its typed error and leaves nothing behind: no jti recorded, nothing signed),
 * and the accepted cases (HS256, ES256 with a registered certificate or an x5c chain, PoP
 * binding, credential rotation with overlapping windows, replay).
 */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import {
  base64url,
  calculateJwkThumbprint,
  compactDecrypt,
  createLocalJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type JWTPayload,
} from 'jose'
import { createAuthnOperations, type AuthnOperations } from '../../src/domain/operations/index.ts'
import { serverProofInput } from '../../src/domain/tokens.ts'
import { fakeDeps, type FakeDeps } from './fakes.ts'
import { createTestCa, issueEntityCert, type TestCa, type TestLeaf } from '../test-pki.ts'

const OPERATOR = { tenant: '_platform', id: 'op', roles: ['operator'] }
const ADMIN = { tenant: 'acme', id: 'adm', roles: ['admin'] }
const DEVICE = 'urn:dev:mac:0024befffe804ff1'
const CERT_DEVICE = 'urn:dev:mac:0024befffe804ff2'
const AUD = 'm2msec-authn-token'

let deps: FakeDeps
let ops: AuthnOperations
let ca: TestCa
let otherCa: TestCa
let leaf: TestLeaf
let symKey: Buffer
let symKid: string
let certKid: string

before(async () => {
  deps = fakeDeps()
  ops = createAuthnOperations(deps)
  ca = await createTestCa('acme devices CA')
  otherCa = await createTestCa('someone else')
  await ops.createTenant(OPERATOR, {
    tenantId: 'acme',
    displayName: 'ACME',
    trustAnchorsPem: [ca.pem],
    secureEnvironment: '',
  })
  await ops.registerEntity(ADMIN, { entityId: DEVICE, kind: 'DEVICE', roles: ['device'], labels: {} })
  await ops.registerEntity(ADMIN, { entityId: CERT_DEVICE, kind: 'DEVICE', roles: ['device'], labels: {} })
  const sym = await ops.addCredential(ADMIN, {
    entityId: DEVICE,
    credential: { type: 'SYMMETRIC', source: { kind: 'generate' } },
  })
  symKid = sym.credential.id
  symKey = deps.kms.secretOf('acme', sym.credential.kmsKeyId as string)
  leaf = await issueEntityCert(ca, { uri: CERT_DEVICE, cn: 'device 2' })
  const cert = await ops.addCredential(ADMIN, {
    entityId: CERT_DEVICE,
    credentialId: 'cert-1',
    credential: { type: 'CERTIFICATE', chainPem: leaf.pem },
  })
  certKid = cert.credential.id
})

interface Claims {
  iss?: unknown
  sub?: unknown
  aud?: unknown
  iat?: unknown
  exp?: unknown
  jti?: unknown
  [k: string]: unknown
}

function now(): number {
  return Math.floor(Date.now() / 1000)
}

function claims(over: Claims = {}, sub = DEVICE): Claims {
  const t = now()
  return { iss: sub, sub, aud: AUD, iat: t, exp: t + 60, jti: randomBytes(12).toString('base64url'), ...over }
}

function b64(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url')
}

/** An HS256 JWS over arbitrary header and claims (jose refuses to build some bad ones). */
function hs256(c: Claims, header: Record<string, unknown> = {}, key: Buffer = symKey): string {
  const input = `${b64({ alg: 'HS256', kid: symKid, ...header })}.${b64(c)}`
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
}

async function es256(c: Claims, header: Record<string, unknown>, key = leaf.privateKey): Promise<string> {
  return new SignJWT(c as JWTPayload).setProtectedHeader({ alg: 'ES256', ...header }).sign(key)
}

async function issue(assertion: string, extra: { audience?: string; popPublicJwk?: string } = {}) {
  return ops.issueToken({
    tenant: 'acme',
    assertion,
    audience: extra.audience ?? '',
    popPublicJwk: extra.popPublicJwk ?? '',
  })
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as { code: string }).code
  }
  return 'resolved'
}

test('bad assertions get typed errors and change nothing', async (t) => {
  const t0 = now()
  const cases: Array<[string, () => Promise<string> | string, string, string]> = [
    ['alg none', () => `${b64({ alg: 'none' })}.${b64(claims())}.`, 'ERR_TOKEN_INVALID', 'alg none'],
    ['malformed (not a JWS)', () => 'not.a-jws', 'ERR_TOKEN_INVALID', 'compact JWS'],
    ['wrong aud', () => hs256(claims({ aud: 'someone-else' })), 'ERR_TOKEN_INVALID', 'aud is not'],
    ['aud with two entries', () => hs256(claims({ aud: [AUD, 'x'] })), 'ERR_TOKEN_INVALID', 'aud is not'],
    ['expired', () => hs256(claims({ iat: t0 - 400, exp: t0 - 100 })), 'ERR_TOKEN_EXPIRED', 'expired'],
    ['iat in the future', () => hs256(claims({ iat: t0 + 120, exp: t0 + 180 })), 'ERR_TOKEN_INVALID', 'in the future'],
    ['nbf in the future', () => hs256(claims({ nbf: t0 + 120 })), 'ERR_TOKEN_INVALID', 'nbf'],
    [
      'lifetime above 300 s',
      () => hs256(claims({ iat: t0, exp: t0 + 301 })),
      'ERR_TOKEN_INVALID',
      'lifetime above 300',
    ],
    [
      'iss differs from sub',
      () => hs256(claims({ iss: 'urn:dev:mac:ffffffffffffffff' })),
      'ERR_TOKEN_INVALID',
      'iss must equal sub',
    ],
    ['no jti', () => hs256(claims({ jti: undefined })), 'ERR_TOKEN_INVALID', 'jti'],
    ['no exp', () => hs256(claims({ exp: undefined })), 'ERR_TOKEN_INVALID', 'exp must be'],
    ['unknown kid', () => hs256(claims(), { kid: 'no-such-credential' }), 'ERR_TOKEN_INVALID', 'unknown kid'],
    ['no kid (HS256)', () => hs256(claims(), { kid: undefined }), 'ERR_TOKEN_INVALID', 'kid is required'],
    ['oversized (> 8 KiB)', () => hs256(claims({ pad: 'x'.repeat(8200) })), 'ERR_TOKEN_INVALID', 'larger than 8192'],
    [
      'HS256 with the wrong key',
      () => hs256(claims(), {}, randomBytes(32)),
      'ERR_TOKEN_INVALID',
      'HS256 signature does not verify',
    ],
    ['HS256 with a truncated MAC', () => hs256(claims()).slice(0, -4), 'ERR_TOKEN_INVALID', '32 bytes'],
    [
      'embedded jwk header',
      () => hs256(claims(), { jwk: { kty: 'oct', k: 'AAAA' } }),
      'ERR_TOKEN_INVALID',
      'header jwk',
    ],
    ['crit header', () => hs256(claims(), { crit: ['exp'] }), 'ERR_TOKEN_INVALID', 'header crit'],
    [
      'unknown entity',
      () => hs256(claims({}, 'urn:dev:mac:0000000000000000')),
      'ERR_TOKEN_INVALID',
      'unknown or disabled entity',
    ],
    [
      'ES256 with a symmetric credential kid',
      () => es256(claims(), { kid: symKid }),
      'ERR_TOKEN_INVALID',
      'does not fit a SYMMETRIC',
    ],
    [
      'HS256 with a certificate credential kid',
      () => hs256(claims({}, CERT_DEVICE), { kid: certKid }),
      'ERR_TOKEN_INVALID',
      'does not fit a CERTIFICATE',
    ],
    [
      'ES256 signed by another key than the certificate',
      async () => es256(claims({}, CERT_DEVICE), { kid: certKid }, (await generateKeyPair('ES256')).privateKey),
      'ERR_TOKEN_INVALID',
      'ES256 signature does not verify',
    ],
    [
      'ES256 with an untrusted certificate (x5c)',
      async () => {
        const rogue = await issueEntityCert(otherCa, { uri: CERT_DEVICE, cn: 'rogue' })
        return es256(claims({}, CERT_DEVICE), { x5c: [rogue.x5c] }, rogue.privateKey)
      },
      'ERR_TOKEN_INVALID',
      'does not chain to a trust anchor',
    ],
    [
      'ES256 with a trusted certificate naming another entity (x5c)',
      async () => {
        const other = await issueEntityCert(ca, { uri: 'urn:dev:mac:00000000000000aa', cn: 'other' })
        return es256(claims({}, CERT_DEVICE), { x5c: [other.x5c] }, other.privateKey)
      },
      'ERR_TOKEN_INVALID',
      'does not name the entity',
    ],
    [
      'ES256 with an expired certificate (x5c)',
      async () => {
        const old = await issueEntityCert(ca, {
          uri: CERT_DEVICE,
          cn: 'old',
          notBefore: new Date(Date.now() - 10 * 86_400_000),
          notAfter: new Date(Date.now() - 86_400_000),
        })
        return es256(claims({}, CERT_DEVICE), { x5c: [old.x5c] }, old.privateKey)
      },
      'ERR_TOKEN_INVALID',
      'expired or not yet valid',
    ],
  ]
  for (const [name, make, expected, reason] of cases) {
    await t.test(name, async () => {
      const usedBefore = deps.jti.used.size
      const signedBefore = deps.kms.calls.filter((c) => c === 'sign' || c === 'mac').length
      assert.equal(await codeOf(issue(await make())), expected)
      assert.equal(deps.jti.used.size, usedBefore, 'no jti recorded')
      assert.equal(deps.kms.calls.filter((c) => c === 'sign' || c === 'mac').length, signedBefore, 'nothing signed')
      const last = deps.auditLog.at(-1)
      assert.equal(last?.action, 'authn.IssueToken')
      assert.equal(last?.result, 'denied')
      assert.equal(last?.code, expected)
      assert.ok(String(last?.details?.['reason']).includes(reason), `audited reason mentions "${reason}"`)
    })
  }
})

test('tenant and entity state: unknown tenant, disabled entity, revoked or future credential', async () => {
  assert.equal(
    await codeOf(ops.issueToken({ tenant: 'nope', assertion: hs256(claims()), audience: '', popPublicJwk: '' })),
    'ERR_TOKEN_INVALID',
  )
  const id = 'urn:dev:mac:00000000000000bb'
  await ops.registerEntity(ADMIN, { entityId: id, kind: 'DEVICE', roles: [], labels: {} })
  const later = await ops.addCredential(ADMIN, {
    entityId: id,
    notBefore: new Date(Date.now() + 3_600_000),
    credential: { type: 'SYMMETRIC', source: { kind: 'generate' } },
  })
  const key = deps.kms.secretOf('acme', later.credential.kmsKeyId as string)
  assert.equal(await codeOf(issue(hs256(claims({}, id), { kid: later.credential.id }, key))), 'ERR_TOKEN_INVALID')
  const now1 = await ops.addCredential(ADMIN, {
    entityId: id,
    credential: { type: 'SYMMETRIC', source: { kind: 'generate' } },
  })
  const key1 = deps.kms.secretOf('acme', now1.credential.kmsKeyId as string)
  assert.ok((await issue(hs256(claims({}, id), { kid: now1.credential.id }, key1))).accessToken)
  await ops.revokeCredential(ADMIN, { entityId: id, credentialId: now1.credential.id })
  assert.equal(await codeOf(issue(hs256(claims({}, id), { kid: now1.credential.id }, key1))), 'ERR_TOKEN_INVALID')
  await ops.disableEntity(ADMIN, id)
  assert.equal(await codeOf(issue(hs256(claims({}, id), { kid: now1.credential.id }, key1))), 'ERR_TOKEN_INVALID')
})

test('HS256: token, server proof, replay', async () => {
  const assertion = hs256(claims())
  const ajti = decodeJwt(assertion).jti as string
  const out = await issue(assertion)
  assert.equal(out.loa, 2)
  assert.equal(out.proofType, 'HMAC_SHA256')
  const expected = createHmac('sha256', symKey).update(serverProofInput(ajti, out.tokenId)).digest('base64url')
  assert.equal(out.proof, expected)
  assert.equal(Buffer.from(serverProofInput('a', 'b')).toString('latin1'), 'm2msec-server-proof\0a\0b')

  const jwks = createLocalJWKSet((await ops.tenantJwks('acme')) as { keys: [] })
  const { payload, protectedHeader } = await jwtVerify(out.accessToken, jwks, {
    issuer: 'm2msec-authn',
    audience: 'm2msec',
    typ: 'at+jwt',
    algorithms: ['ES256'],
  })
  assert.equal(protectedHeader.kid, 'authn-signing-acme/1')
  assert.equal(payload.sub, DEVICE)
  assert.equal(payload['tenant'], 'acme')
  assert.equal(payload['loa'], 2)
  assert.deepEqual(payload['roles'], ['device'])
  assert.equal(payload.jti, out.tokenId)
  assert.equal((payload.exp as number) - (payload.iat as number), 300)
  assert.equal(payload['cnf'], undefined)

  assert.equal(await codeOf(issue(assertion)), 'ERR_REPLAY')
  assert.equal(deps.auditLog.at(-1)?.code, 'ERR_REPLAY')
})

test('ES256 with a registered certificate and with an x5c chain: loa 3, cnf x5t#S256, JWS server proof', async () => {
  const byKid = await issue(await es256(claims({}, CERT_DEVICE), { kid: certKid }))
  const x5t = base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', leaf.cert.rawData)))
  const jwks = createLocalJWKSet((await ops.tenantJwks('acme')) as { keys: [] })
  const token = await jwtVerify(byKid.accessToken, jwks, { audience: 'm2msec' })
  assert.equal(token.payload['loa'], 3)
  assert.deepEqual(token.payload['cnf'], { 'x5t#S256': x5t })
  assert.equal(byKid.proofType, 'JWS_ES256')
  const proof = await jwtVerify(byKid.proof, jwks, { typ: 'm2msec-server-proof+jwt', audience: CERT_DEVICE })
  assert.equal(proof.payload['tjti'], byKid.tokenId)

  // A certificate from an intermediate of the trusted CA, presented in x5c (not registered).
  const sub = await createTestCa('acme intermediate', ca)
  const fresh = await issueEntityCert(sub, { uri: CERT_DEVICE, cn: 'device 2 (new)' })
  const byChain = await issue(
    await es256(
      claims({}, CERT_DEVICE),
      { x5c: [fresh.x5c, Buffer.from(sub.cert.rawData).toString('base64')] },
      fresh.privateKey,
    ),
  )
  assert.equal(byChain.loa, 3)
})

test('PoP key: cnf.jkt, and the assertion may pin it', async () => {
  const { publicKey } = await generateKeyPair('ES256')
  const jwk = await exportJWK(publicKey)
  const jkt = await calculateJwkThumbprint(jwk)
  const out = await issue(hs256(claims({ cnf: { jkt } })), { popPublicJwk: JSON.stringify(jwk), audience: '/in-cse' })
  const payload = decodeJwt(out.accessToken)
  assert.deepEqual(payload['cnf'], { jkt })
  assert.equal(payload.aud, '/in-cse')
  assert.equal(
    await codeOf(issue(hs256(claims({ cnf: { jkt: 'AAAA' } })), { popPublicJwk: JSON.stringify(jwk) })),
    'ERR_TOKEN_INVALID',
  )
  assert.equal(await codeOf(issue(hs256(claims()), { popPublicJwk: '{"kty":"EC","d":"x"}' })), 'ERR_INVALID_ARGUMENT')
})

test('rotation without a gap: two symmetric credentials with overlapping windows both work', async () => {
  const id = 'urn:dev:mac:00000000000000cc'
  await ops.registerEntity(ADMIN, { entityId: id, kind: 'DEVICE', roles: [], labels: {} })
  const old = await ops.addCredential(ADMIN, {
    entityId: id,
    notAfter: new Date(Date.now() + 60_000),
    credential: { type: 'SYMMETRIC', source: { kind: 'generate' } },
  })
  const next = await ops.addCredential(ADMIN, {
    entityId: id,
    credential: { type: 'SYMMETRIC', source: { kind: 'generate' } },
  })
  for (const c of [old.credential, next.credential]) {
    const key = deps.kms.secretOf('acme', c.kmsKeyId as string)
    assert.ok((await issue(hs256(claims({}, id), { kid: c.id }, key))).accessToken)
  }
})

test('generated key delivered wrapped for the device’s public JWK', async () => {
  const id = 'urn:dev:mac:00000000000000dd'
  await ops.registerEntity(ADMIN, { entityId: id, kind: 'DEVICE', roles: [], labels: {} })
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
  const out = await ops.addCredential(ADMIN, {
    entityId: id,
    credential: {
      type: 'SYMMETRIC',
      source: { kind: 'generate', deliverToPublicJwk: JSON.stringify(await exportJWK(publicKey)) },
    },
  })
  const { plaintext } = await compactDecrypt(out.wrappedKey as string, privateKey)
  const key = Buffer.from(plaintext)
  assert.equal(key.length, 32)
  assert.ok((await issue(hs256(claims({}, id), { kid: out.credential.id }, key))).accessToken)
})

test('TLS client certificate instead of an assertion: cnf x5t#S256; refusals audited, nothing signed', async () => {
  const tls = (cert: TestLeaf, entityId = CERT_DEVICE, o: { ops?: AuthnOperations } = {}) =>
    (o.ops ?? ops).issueToken({
      tenant: 'acme',
      assertion: '',
      audience: '',
      popPublicJwk: '',
      entityId,
      clientCertificateDer: new Uint8Array(cert.cert.rawData),
    })
  const fresh = await issueEntityCert(ca, { uri: CERT_DEVICE, cn: 'device 2 (tls)' })
  const ok = await tls(fresh)
  const claims = decodeJwt(ok.accessToken)
  const x5t = createHash('sha256').update(new Uint8Array(fresh.cert.rawData)).digest('base64url')
  assert.deepEqual(claims['cnf'], { 'x5t#S256': x5t })
  assert.equal(ok.loa, 3)
  assert.equal(ok.proofType, 'NONE')
  assert.equal(deps.auditLog.at(-1)?.principal, CERT_DEVICE)

  const revoking = createAuthnOperations({
    ...deps,
    revocation: {
      check: () => Promise.reject(new M2msecError('ERR_TOKEN_REVOKED', 'certificate revoked')),
    },
  })
  const expired = await issueEntityCert(ca, {
    uri: CERT_DEVICE,
    cn: 'old',
    notBefore: new Date(Date.now() - 2 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  })
  const cases: Array<[string, () => Promise<unknown>, string, string]> = [
    [
      'no certificate',
      () => ops.issueToken({ tenant: 'acme', assertion: '', audience: '', popPublicJwk: '', entityId: CERT_DEVICE }),
      'ERR_UNAUTHENTICATED',
      'needs an assertion or a TLS client certificate',
    ],
    [
      'another CA',
      async () => tls(await issueEntityCert(otherCa, { uri: CERT_DEVICE, cn: 'x' })),
      'ERR_TOKEN_INVALID',
      'trust anchor',
    ],
    ['expired', () => tls(expired), 'ERR_TOKEN_INVALID', 'expired'],
    ['another entity', () => tls(fresh, DEVICE), 'ERR_TOKEN_INVALID', 'does not name the entity'],
    ['revoked', () => tls(fresh, CERT_DEVICE, { ops: revoking }), 'ERR_TOKEN_REVOKED', 'revoked'],
  ]
  for (const [name, run, code, reason] of cases) {
    const signedBefore = deps.kms.calls.filter((c) => c === 'sign' || c === 'mac').length
    assert.equal(await codeOf(run()), code, name)
    assert.equal(
      deps.kms.calls.filter((c) => c === 'sign' || c === 'mac').length,
      signedBefore,
      `${name}: nothing signed`,
    )
    const last = deps.auditLog.at(-1)
    assert.equal(last?.result, 'denied', name)
    assert.equal(last?.code, code, name)
    assert.ok(String(last?.details?.['reason']).includes(reason), `${name}: audited reason mentions "${reason}"`)
  }
})
