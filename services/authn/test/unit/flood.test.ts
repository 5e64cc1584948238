/**
 * Flood protection of the token endpoint: the back-off arithmetic, the per-replica token
 * buckets, and IssueToken refusing with ERR_RATE_LIMITED (retry information, no KMS call,
 * audited) per entity and per source, recovering once the back-off is over.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { afterFailure, retryAfterMs, sourceOfPeer } from '../../src/domain/flood.ts'
import { SETTINGS } from './fakes.ts'
import { codeOf, createWorld, errorOf } from './world.ts'

const POLICY = { freeFailures: 3, baseDelayMs: 1000, maxDelayMs: 8000 }

test('back-off: free failures, then doubling delays up to the cap; old failures are forgotten', () => {
  let s = undefined as ReturnType<typeof afterFailure> | undefined
  const delays: number[] = []
  for (let i = 0; i < 8; i++) {
    s = afterFailure(s, 10_000, POLICY, 60_000)
    delays.push(retryAfterMs(s, 10_000))
  }
  assert.deepEqual(delays, [0, 0, 0, 1000, 2000, 4000, 8000, 8000])
  assert.equal(s?.failures, 8)
  // A failure after the window starts counting from one again (the running block stays).
  const later = afterFailure(s, 10_000 + 60_000, POLICY, 60_000)
  assert.equal(later.failures, 1)
  assert.equal(retryAfterMs(later, 70_000), 0)
})

test('source of a gRPC peer: the address without the port', () => {
  assert.equal(sourceOfPeer('10.0.0.7:53412'), '10.0.0.7')
  assert.equal(sourceOfPeer('[::1]:53412'), '::1')
  assert.equal(sourceOfPeer('[2001:DB8::7]:1'), '2001:db8::7')
  assert.equal(sourceOfPeer('[::ffff:10.0.0.7]:53412'), '10.0.0.7')
  assert.equal(sourceOfPeer('ipv4:10.0.0.7:53412'), '10.0.0.7')
  assert.equal(sourceOfPeer('ipv6:[::1]:53412'), '::1')
  assert.equal(sourceOfPeer('/tmp/grpc.sock'), '/tmp/grpc.sock')
})

test('an entity that keeps failing is backed off for every source; refusals are audited, never verified', async () => {
  const w = await createWorld({
    flood: { ...SETTINGS.flood, entity: { freeFailures: 2, baseDelayMs: 4000, maxDelayMs: 60_000 } },
  })
  const dev = await w.register('urn:dev:mac:000000000001')
  const other = await w.register('urn:dev:mac:000000000002')
  const wrong = randomBytes(32)
  for (let i = 0; i < 3; i++) {
    const code = await codeOf(
      w.ops.issueToken({
        tenant: 'acme',
        assertion: w.assertion(dev, wrong),
        audience: '',
        popPublicJwk: '',
        source: `10.0.0.${i}`,
      }),
    )
    assert.equal(code, 'ERR_TOKEN_INVALID')
  }
  const verifies = w.deps.kms.calls.filter((c) => c === 'verifyMac').length
  const refused = await errorOf(
    w.ops.issueToken({
      tenant: 'acme',
      assertion: w.assertion(dev),
      audience: '',
      popPublicJwk: '',
      source: '10.9.9.9',
    }),
  )
  assert.equal(refused.code, 'ERR_RATE_LIMITED')
  assert.equal(refused.details['scope'], 'entity')
  assert.equal(refused.details['retryAfterMs'], 4000)
  assert.equal(refused.details['retryAfterSec'], 4)
  assert.equal(w.deps.kms.calls.filter((c) => c === 'verifyMac').length, verifies, 'a refused attempt is not verified')
  const backoff = w.deps.auditLog.filter((e) => e.action === 'authn.AuthBackoff')
  assert.equal(backoff.length, 1)
  assert.equal(backoff[0]?.details?.['scope'], 'entity')
  assert.ok(
    w.deps.auditLog.some(
      (e) => e.action === 'authn.IssueToken' && e.code === 'ERR_RATE_LIMITED' && e.result === 'denied',
    ),
  )
  // Other entities are not affected.
  const ok = await w.ops.issueToken({
    tenant: 'acme',
    assertion: w.assertion(other),
    audience: '',
    popPublicJwk: '',
    source: '10.9.9.9',
  })
  assert.ok(ok.accessToken.length > 0)
  // After the back-off the entity gets its token, and a success forgets its failures.
  w.now += 4001
  const later = await w.ops.issueToken({
    tenant: 'acme',
    assertion: w.assertion(dev),
    audience: '',
    popPublicJwk: '',
    source: '10.9.9.9',
  })
  assert.ok(later.accessToken.length > 0)
  assert.equal([...w.deps.attempts.states.keys()].filter((k) => k.startsWith('e')).length, 0)
})

test('a source that keeps failing is backed off for every entity; other sources are not', async () => {
  const w = await createWorld({
    flood: { ...SETTINGS.flood, source: { freeFailures: 3, baseDelayMs: 2000, maxDelayMs: 60_000 } },
  })
  const a = await w.register('urn:dev:mac:00000000000a')
  const b = await w.register('urn:dev:mac:00000000000b')
  const garbage = ['x', 'not.a-jws', w.assertion(a, randomBytes(32)), w.assertion(b, randomBytes(32))]
  for (const assertion of garbage) {
    await codeOf(w.ops.issueToken({ tenant: 'acme', assertion, audience: '', popPublicJwk: '', source: '192.0.2.1' }))
  }
  const refused = await errorOf(
    w.ops.issueToken({
      tenant: 'acme',
      assertion: w.assertion(b),
      audience: '',
      popPublicJwk: '',
      source: '192.0.2.1',
    }),
  )
  assert.equal(refused.code, 'ERR_RATE_LIMITED')
  assert.equal(refused.details['scope'], 'source')
  assert.equal(refused.details['retryAfterMs'], 2000)
  const elsewhere = await w.ops.issueToken({
    tenant: 'acme',
    assertion: w.assertion(b),
    audience: '',
    popPublicJwk: '',
    source: '192.0.2.2',
  })
  assert.ok(elsewhere.accessToken.length > 0)
})

test('attempt rate per entity (per replica): a burst, then ERR_RATE_LIMITED until a token refills', async () => {
  const w = await createWorld({ flood: { ...SETTINGS.flood, entityRate: { perSec: 1, burst: 2 } } })
  const dev = await w.register('urn:dev:mac:0000000000cc')
  const issue = () =>
    w.ops.issueToken({ tenant: 'acme', assertion: w.assertion(dev), audience: '', popPublicJwk: '', source: 's' })
  assert.equal(await codeOf(issue()), 'resolved')
  assert.equal(await codeOf(issue()), 'resolved')
  const refused = await errorOf(issue())
  assert.equal(refused.code, 'ERR_RATE_LIMITED')
  assert.equal(refused.details['retryAfterMs'], 1000)
  w.now += 1000
  assert.equal(await codeOf(issue()), 'resolved')
  // Nothing about successful or rate-limited attempts is written to the shared store.
  assert.equal(w.deps.attempts.writes, 0)
})
