import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { PeerCertificate } from 'node:tls'
import { Metadata } from '@grpc/grpc-js'
import { M2msecError } from '@m2msec/errors'
import {
  chainAuthenticators,
  devMtlsAuthenticator,
  devStaticTokenAuthenticator,
  readBearerToken,
  subjectAltUris,
  type Authenticator,
} from '../src/index.ts'

const TOKEN = 'dev-token-0123456789abcdef'

function md(authorization?: string): Metadata {
  const m = new Metadata()
  if (authorization !== undefined) m.set('authorization', authorization)
  return m
}

function cert(subjectaltname: string | undefined, ou: string | string[] | undefined): PeerCertificate {
  return {
    subject: { CN: 'x', ...(ou === undefined ? {} : { OU: ou }) },
    subjectaltname,
    raw: Buffer.alloc(1),
  } as unknown as PeerCertificate
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as M2msecError).code
  }
  return 'resolved'
}

test('readBearerToken accepts the Bearer scheme only', () => {
  assert.equal(readBearerToken(md('Bearer abc')), 'abc')
  assert.equal(readBearerToken(md('bearer   abc ')), 'abc')
  assert.equal(readBearerToken(md('Basic abc')), undefined)
  assert.equal(readBearerToken(md()), undefined)
})

test('devStaticTokenAuthenticator: right token -> fixed principal, else UNAUTHENTICATED codes', async () => {
  const auth = devStaticTokenAuthenticator({
    token: TOKEN,
    tenant: 'demo',
    principal: 'admin',
    roles: ['admin'],
  })
  assert.deepEqual(await auth.authenticate({ metadata: md(`Bearer ${TOKEN}`) }), {
    tenant: 'demo',
    id: 'admin',
    roles: ['admin'],
    via: 'dev-token',
  })
  assert.equal(await code(auth.authenticate({ metadata: md() })), 'ERR_UNAUTHENTICATED')
  assert.equal(await code(auth.authenticate({ metadata: md(`Bearer ${TOKEN}x`) })), 'ERR_TOKEN_INVALID')
  assert.equal(await code(auth.authenticate({ metadata: md('Bearer short') })), 'ERR_TOKEN_INVALID')
  assert.throws(
    () => devStaticTokenAuthenticator({ token: 'short', tenant: 't', principal: 'p', roles: [] }),
    (e: M2msecError) => e.code === 'ERR_CONFIG_INVALID',
  )
})

test('subjectAltUris parses plain and quoted URI entries', () => {
  assert.deepEqual(subjectAltUris('DNS:localhost, URI:m2msec://a/b, IP Address:127.0.0.1, URI:"m2msec://c/d,e"'), [
    'm2msec://a/b',
    'm2msec://c/d,e',
  ])
  assert.deepEqual(subjectAltUris(undefined), [])
})

test('devMtlsAuthenticator maps SAN URI and OU=role:* to a principal', async () => {
  const auth = devMtlsAuthenticator()
  const p = await auth.authenticate({
    metadata: md(),
    peerCertificate: cert('URI:m2msec://tenant%2Da/dev.1', ['role:admin', 'engineering', 'role:reader']),
  })
  assert.deepEqual(p, { tenant: 'tenant-a', id: 'dev.1', roles: ['admin', 'reader'], via: 'mtls' })
  const single = await auth.authenticate({
    metadata: md(),
    peerCertificate: cert('URI:m2msec://t/p', 'role:gateway'),
  })
  assert.deepEqual(single.roles, ['gateway'])
  assert.equal(await code(auth.authenticate({ metadata: md() })), 'ERR_UNAUTHENTICATED')
  assert.equal(
    await code(auth.authenticate({ metadata: md(), peerCertificate: cert('DNS:x', undefined) })),
    'ERR_UNAUTHENTICATED',
  )
  assert.equal(
    await code(
      auth.authenticate({
        metadata: md(),
        peerCertificate: cert('URI:m2msec://t/p, URI:m2msec://t/q', undefined),
      }),
    ),
    'ERR_UNAUTHENTICATED',
  )
  assert.equal(
    await code(
      auth.authenticate({
        metadata: md(),
        peerCertificate: cert('URI:m2msec://t%2F/p', undefined),
      }),
    ),
    'ERR_UNAUTHENTICATED',
  )
})

test('chainAuthenticators: first success wins, the most specific failure is rethrown, other errors stop the chain', async () => {
  const fail = (c: 'ERR_UNAUTHENTICATED' | 'ERR_TOKEN_EXPIRED' | 'ERR_UNAVAILABLE'): Authenticator => ({
    authenticate: () => Promise.reject(new M2msecError(c, c)),
  })
  const ok: Authenticator = {
    authenticate: async () => ({ tenant: 't', id: 'p', roles: [], via: 'token' }),
  }
  assert.equal((await chainAuthenticators(fail('ERR_UNAUTHENTICATED'), ok).authenticate({ metadata: md() })).id, 'p')
  assert.equal(
    await code(
      chainAuthenticators(fail('ERR_UNAUTHENTICATED'), fail('ERR_TOKEN_EXPIRED')).authenticate({
        metadata: md(),
      }),
    ),
    'ERR_TOKEN_EXPIRED',
  )
  assert.equal(
    await code(
      chainAuthenticators(fail('ERR_UNAUTHENTICATED'), fail('ERR_UNAUTHENTICATED')).authenticate({
        metadata: md(),
      }),
    ),
    'ERR_UNAUTHENTICATED',
  )
  assert.equal(
    await code(chainAuthenticators(fail('ERR_UNAVAILABLE'), ok).authenticate({ metadata: md() })),
    'ERR_UNAVAILABLE',
  )
  assert.equal(await code(chainAuthenticators().authenticate({ metadata: md() })), 'ERR_UNAUTHENTICATED')
})
