import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import * as grpc from '@grpc/grpc-js'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import type { M2msecError } from '@m2msec/errors'
import {
  chainAuthenticators,
  createGrpcServer,
  devStaticTokenAuthenticator,
  platformServiceAuthenticator,
  tokenAuthenticator,
  type Authenticator,
  type CallContext,
  type Principal,
  type UnaryHandlers,
} from '../src/index.ts'
import {
  bearer,
  captureLogger,
  echoClient,
  echoRequest,
  loadEchoDefinition,
  unary,
  type EchoServiceDefinition,
} from './helpers.ts'

const ISSUER = 'm2msec-authn'
const KID = 'authn-signing-acme/1'

let privateKey: CryptoKey
let publicJwk: JWK
let otherKey: CryptoKey

before(async () => {
  const pair = await generateKeyPair('ES256')
  privateKey = pair.privateKey as CryptoKey
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'ES256', use: 'sig' }
  otherKey = (await generateKeyPair('ES256')).privateKey as CryptoKey
})

type Claims = Record<string, unknown>

function claims(over: Claims = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000)
  return {
    iss: ISSUER,
    sub: 'Cmeter01',
    aud: 'm2msec',
    tenant: 'acme',
    roles: ['meter'],
    iat: now,
    exp: now + 300,
    jti: 'tok-1',
    ...over,
  }
}

async function token(
  over: Claims = {},
  header: Record<string, unknown> = {},
  key: CryptoKey = privateKey,
): Promise<string> {
  return new SignJWT(claims(over)).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: KID, ...header }).sign(key)
}

const source = async (kid: string) => (kid === KID ? publicJwk : undefined)

async function codeOf(auth: Authenticator, metadata: grpc.Metadata): Promise<string> {
  try {
    await auth.authenticate({ metadata })
  } catch (err) {
    return (err as M2msecError).code
  }
  return 'resolved'
}

describe('tokenAuthenticator', () => {
  const revoked = new Set<string>()
  const auth = tokenAuthenticator({
    jwks: source,
    issuer: ISSUER,
    audience: ['m2msec', '/in-cse'],
    isRevoked: (t) => revoked.has(`${t.tenant}/${t.jti}`),
  })

  test('a valid token maps to its principal', async () => {
    assert.deepEqual(await auth.authenticate({ metadata: bearer(await token()) }), {
      tenant: 'acme',
      id: 'Cmeter01',
      roles: ['meter'],
      via: 'token',
    })
    assert.equal(
      (await auth.authenticate({ metadata: bearer(await token({ aud: '/in-cse', roles: undefined })) })).roles.length,
      0,
    )
  })

  test('every defect has its typed error', async () => {
    const now = Math.floor(Date.now() / 1000)
    const hs = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: KID })
      .sign(new Uint8Array(32))
    const cases: Array<[string, string | grpc.Metadata, string]> = [
      ['no authorization header', new grpc.Metadata(), 'ERR_UNAUTHENTICATED'],
      ['expired', await token({ iat: now - 900, exp: now - 600 }), 'ERR_TOKEN_EXPIRED'],
      ['wrong aud', await token({ aud: 'other' }), 'ERR_TOKEN_INVALID'],
      ['wrong iss', await token({ iss: 'evil' }), 'ERR_TOKEN_INVALID'],
      ['HS256', hs, 'ERR_TOKEN_INVALID'],
      [
        'alg none',
        `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.`,
        'ERR_TOKEN_INVALID',
      ],
      ['no typ at+jwt', await token({}, { typ: 'JWT' }), 'ERR_TOKEN_INVALID'],
      ['unknown kid', await token({}, { kid: 'authn-signing-acme/9' }), 'ERR_TOKEN_INVALID'],
      ['no kid', await token({}, { kid: undefined }), 'ERR_TOKEN_INVALID'],
      ['signed by another key', await token({}, {}, otherKey), 'ERR_TOKEN_INVALID'],
      ['no tenant claim', await token({ tenant: undefined }), 'ERR_TOKEN_INVALID'],
      ['platform tenant claim', await token({ tenant: '_platform' }), 'ERR_TOKEN_INVALID'],
      ['malformed roles', await token({ roles: 'admin' }), 'ERR_TOKEN_INVALID'],
      ['no jti', await token({ jti: undefined }), 'ERR_TOKEN_INVALID'],
      ['oversized', await token({ pad: 'x'.repeat(9000) }), 'ERR_TOKEN_INVALID'],
      ['garbage', 'not-a-jwt', 'ERR_TOKEN_INVALID'],
    ]
    for (const [name, t, expected] of cases) {
      assert.equal(await codeOf(auth, typeof t === 'string' ? bearer(t) : t), expected, name)
    }
    const bound = tokenAuthenticator({ jwks: source, issuer: ISSUER, audience: 'm2msec', keyTenant: () => 'acme' })
    assert.equal((await bound.authenticate({ metadata: bearer(await token()) })).tenant, 'acme')
    assert.equal(await codeOf(bound, bearer(await token({ tenant: 'globex' }))), 'ERR_TOKEN_INVALID')
    revoked.add('acme/tok-2')
    assert.equal(await codeOf(auth, bearer(await token({ jti: 'tok-2' }))), 'ERR_TOKEN_REVOKED')
  })
})

describe('tokenAuthenticator with a JWKS URL', () => {
  let server: Server
  let url: string
  let served: JWK[] = []
  let fetches = 0
  before(async () => {
    server = createServer((_req, res) => {
      fetches++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: served }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  test('fetches the key set, re-fetches for an unknown kid, reports an unreachable JWKS as ERR_UNAVAILABLE', async () => {
    served = [publicJwk]
    const auth = tokenAuthenticator({ jwks: url, issuer: ISSUER, audience: 'm2msec' })
    assert.equal((await auth.authenticate({ metadata: bearer(await token()) })).id, 'Cmeter01')
    assert.equal(fetches, 1)
    assert.equal(await codeOf(auth, bearer(await token({}, { kid: 'authn-signing-acme/2' }))), 'ERR_TOKEN_INVALID')
    // A rotation: the new kid appears in the set; after the 1 s cooldown it is fetched.
    const next = await generateKeyPair('ES256')
    served = [publicJwk, { ...(await exportJWK(next.publicKey)), kid: 'authn-signing-acme/2', alg: 'ES256' }]
    await sleep(1100)
    const rotated = await token({}, { kid: 'authn-signing-acme/2' }, next.privateKey as CryptoKey)
    assert.equal((await auth.authenticate({ metadata: bearer(rotated) })).id, 'Cmeter01')
    assert.ok(fetches >= 2)
    const down = tokenAuthenticator({ jwks: 'http://127.0.0.1:1/jwks.json', issuer: ISSUER, audience: 'm2msec' })
    assert.equal(await codeOf(down, bearer(await token())), 'ERR_UNAVAILABLE')
  })
})

describe('platformServiceAuthenticator', () => {
  const fixed = (p: Principal): Authenticator => ({ authenticate: async () => p })
  const platform = fixed({ tenant: '_platform', id: 'authn', roles: ['service'], via: 'mtls' })
  const tenantUser = fixed({ tenant: 'acme', id: 'Cmeter01', roles: ['meter'], via: 'token' })
  const md = (...tenants: string[]) => {
    const m = new grpc.Metadata()
    for (const t of tenants) m.add('m2msec-tenant', t)
    return m
  }

  test('a platform service acts as admin of the tenant it names', async () => {
    assert.deepEqual(await platformServiceAuthenticator(platform).authenticate({ metadata: md('acme') }), {
      tenant: 'acme',
      id: 'svc:authn',
      roles: ['admin', 'service'],
      via: 'mtls',
    })
  })

  test('the header is required and validated for platform services', async () => {
    const auth = platformServiceAuthenticator(platform)
    assert.equal(await codeOf(auth, md()), 'ERR_UNAUTHENTICATED')
    assert.equal(await codeOf(auth, md('_platform')), 'ERR_UNAUTHENTICATED')
    assert.equal(await codeOf(auth, md('a/b')), 'ERR_UNAUTHENTICATED')
    assert.equal(await codeOf(auth, md('acme', 'globex')), 'ERR_UNAUTHENTICATED')
  })

  test('other principals pass unchanged and cannot switch tenants', async () => {
    const auth = platformServiceAuthenticator(tenantUser)
    assert.equal((await auth.authenticate({ metadata: md() })).tenant, 'acme')
    assert.equal((await auth.authenticate({ metadata: md('acme') })).id, 'Cmeter01')
    assert.equal(await codeOf(auth, md('globex')), 'ERR_PERMISSION_DENIED')
    const noService = platformServiceAuthenticator(
      fixed({ tenant: '_platform', id: 'ops', roles: ['operator'], via: 'mtls' }),
    )
    assert.equal((await noService.authenticate({ metadata: md() })).tenant, '_platform')
    assert.equal(await codeOf(noService, md('acme')), 'ERR_PERMISSION_DENIED')
  })

  test('through a real gRPC server: handlers see the acting principal', async () => {
    const DEV = 'platform-dev-token-0123456789'
    const { log } = captureLogger()
    const server = createGrpcServer(
      { host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20, shutdownGraceMs: 100, reflection: false },
      {
        log,
        authenticator: platformServiceAuthenticator(
          chainAuthenticators(
            tokenAuthenticator({ jwks: source, issuer: ISSUER, audience: 'm2msec' }),
            devStaticTokenAuthenticator({ token: DEV, tenant: '_platform', principal: 'authn', roles: ['service'] }),
          ),
        ),
      },
    )
    const def = loadEchoDefinition()
    const respond = async (_r: unknown, ctx: CallContext) => ({
      text: '',
      tenant: ctx.principal.tenant,
      principal: ctx.principal.id,
      roles: [...ctx.principal.roles],
      via: ctx.principal.via,
      requestId: '',
      aborted: false,
    })
    const handlers: UnaryHandlers<EchoServiceDefinition> = { Echo: respond, Ping: respond }
    server.addUnaryService(def, handlers)
    const { address } = await server.listen()
    const client = echoClient(address)
    try {
      const m = bearer(DEV)
      m.set('m2msec-tenant', 'acme')
      const acting = await unary(client, def.Echo, echoRequest(), m).result
      assert.deepEqual(
        [acting.response.tenant, acting.response.principal, acting.response.roles],
        ['acme', 'svc:authn', ['admin', 'service']],
      )
      const viaToken = await unary(client, def.Echo, echoRequest(), bearer(await token())).result
      assert.deepEqual([viaToken.response.tenant, viaToken.response.via], ['acme', 'token'])
      await assert.rejects(unary(client, def.Echo, echoRequest(), bearer(DEV)).result, {
        code: grpc.status.UNAUTHENTICATED,
      })
    } finally {
      client.close()
      await server.shutdown()
    }
  })
})
