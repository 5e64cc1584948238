/**
 * The per-source limit of unauthenticated HTTP requests: Ub (a fake endpoint behind the real
 * HTTP server) and EST requests without credentials (the real PKI on nats-server and the KMS).
 * Over the limit: 429 with Retry-After, the endpoint is not reached, no Digest nonce is made.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:https'
import { createLogger } from '@m2msec/runtime'
import { createSourceLimit } from '../../src/http/source-limit.ts'
import { startUbServer, type UbServer } from '../../src/http/ub-server.ts'
import type { EstGbaAuthenticator } from '../../src/pki/index.ts'
import { startPkiPlatform, type PkiPlatform } from '../pki/helpers.ts'

const log = createLogger({ level: 'warn', service: 'limit-test' }, { write: () => undefined })

describe('Ub: every request counts against its source', () => {
  let server: UbServer
  let handled = 0
  before(async () => {
    const limit = createSourceLimit({ perSec: 0.5, burst: 2 }, () => Date.now())
    const ub = {
      handle: async () => {
        handled++
        return { status: 401, headers: {}, body: '' }
      },
    }
    server = await startUbServer({ host: '127.0.0.1', port: 0 }, ub, log, [], limit)
  })
  after(async () => {
    await server?.close()
  })

  test('the burst passes, then 429 with Retry-After and the endpoint is not reached', async () => {
    const statuses: number[] = []
    let retryAfter: string | null = null
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${server.url}/`, { headers: { authorization: 'Digest username="x"' } })
      statuses.push(res.status)
      if (res.status === 429) retryAfter = res.headers.get('retry-after')
      await res.arrayBuffer()
    }
    assert.deepEqual(statuses, [401, 401, 429, 429])
    assert.equal(handled, 2)
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 2, `retry-after ${retryAfter}`)
  })
})

describe('EST: every enrolment request counts against its source', () => {
  let p: PkiPlatform
  let challenges = 0
  const gba: EstGbaAuthenticator = {
    challenge: async () => {
      challenges++
      return ['Digest realm="3GPP-bootstrapping@127.0.0.1", nonce="n", algorithm=MD5, qop="auth"']
    },
    verify: async () => {
      throw new Error('not used')
    },
  }
  before(async () => {
    p = await startPkiPlatform({ gba, limit: createSourceLimit({ perSec: 0.5, burst: 2 }, () => Date.now()) })
  })
  after(async () => {
    await p?.stop()
  })

  const post = (headers: Record<string, string>) =>
    new Promise<{ status: number; retryAfter?: string; code?: string }>((resolve, reject) => {
      const req = request(
        `${p.estUrl}/.well-known/est/acme/simpleenroll`,
        { method: 'POST', ca: p.pki.caCertPem, headers: { 'content-type': 'application/pkcs10', ...headers } },
        (res) => {
          res.resume()
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              ...(res.headers['retry-after'] === undefined ? {} : { retryAfter: res.headers['retry-after'] }),
              ...(typeof res.headers['m2msec-error-code'] === 'string'
                ? { code: res.headers['m2msec-error-code'] }
                : {}),
            }),
          )
        },
      )
      req.on('error', reject)
      req.end('AAAA')
    })

  test('two 401s with a challenge each, then 429 without one, whatever the credentials', async () => {
    const anonymous = [await post({}), await post({}), await post({})]
    assert.deepEqual(
      anonymous.map((r) => r.status),
      [401, 401, 429],
    )
    assert.equal(anonymous[2]?.code, 'ERR_RATE_LIMITED')
    assert.ok(Number(anonymous[2]?.retryAfter) >= 1)
    assert.equal(challenges, 2, 'no nonce for the refused request')
    // Credentials do not exempt a request: each enrolment attempt costs lookups and an audit record.
    const withToken = await post({ authorization: 'Bearer nosuch.secret' })
    assert.equal(withToken.status, 429)
  })
})
