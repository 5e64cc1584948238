import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CheckInput } from '../../src/domain/model.ts'
import { admin, authzFixture, cse, otherAdmin, policyJson } from './authz-fixture.ts'

const windowPolicy = {
  id: 'acp-night',
  privileges: {
    accessControlRule: [
      { accessControlOriginators: ['Cae-a'], accessControlOperations: 1 },
      {
        accessControlOriginators: ['Cae-a', 'R-operator'],
        accessControlOperations: 6,
        accessControlAuthenticationFlag: true,
        // 02:00-02:05 UTC every day; the fixture clock is 02:03:04.
        accessControlContexts: [{ accessControlWindow: ['* 0-5 2 * * * *'] }],
      },
    ],
  },
  selfPrivileges: { accessControlRule: [{ accessControlOriginators: ['owner'], accessControlOperations: 63 }] },
}

function req(extra: Partial<CheckInput> = {}): CheckInput {
  return { originator: 'Cae-a', operation: 'update', targetPolicyIds: ['acp-night'], authenticated: true, ...extra }
}

test('Check decides over the caller tenant with the request context', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, { policy: windowPolicy })
  assert.deepEqual(await f.ops.check(cse, req()), {
    decision: 'permit',
    matched: { policyId: 'acp-night', attribute: 'privileges', ruleIndex: 1 },
  })
  // rq_time defaults to the PDP clock; an explicit time outside the window denies.
  f.clock.advance(10 * 60_000)
  assert.equal((await f.ops.check(cse, req())).decision, 'deny')
  const inWindow = new Date('2025-03-05T02:01:00Z')
  assert.equal((await f.ops.check(cse, req({ context: { time: inWindow } }))).decision, 'permit')
  // acaf: an unauthenticated originator is denied.
  assert.equal((await f.ops.check(cse, req({ authenticated: false, context: { time: inWindow } }))).decision, 'deny')
  // Role-IDs match acor entries exactly.
  const byRole = req({ originator: 'Cae-b', roleIds: ['R-operator'], context: { time: inWindow } })
  assert.equal((await f.ops.check(cse, byRole)).decision, 'permit')
  // Another tenant's caller never sees acme's policies.
  assert.equal((await f.ops.check(otherAdmin, req({ context: { time: inWindow } }))).decision, 'deny')
  // Unknown and empty policy lists deny.
  assert.equal((await f.ops.check(cse, req({ targetPolicyIds: ['nope'] }))).decision, 'deny')
  assert.equal((await f.ops.check(cse, req({ targetPolicyIds: [] }))).decision, 'deny')
})

test('Check without originator decides for the caller, which counts as authenticated', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, {
    policy: {
      ...policyJson('acp-svc'),
      privileges: {
        accessControlRule: [
          { accessControlOriginators: ['in-cse'], accessControlOperations: 16, accessControlAuthenticationFlag: true },
        ],
      },
    },
  })
  const r = await f.ops.check(cse, { operation: 'notify', targetPolicyIds: ['acp-svc'], authenticated: false })
  assert.equal(r.decision, 'permit')
})

test('Check: CREATE object details, IP and location contexts, host id forms', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, {
    policy: {
      id: 'acp-ctx',
      privileges: {
        accessControlRule: [
          {
            accessControlOriginators: ['//sp.example/cse1/Cae-dev'],
            accessControlOperations: 1,
            accessControlObjectDetails: [{ childResourceType: [4] }],
          },
          {
            accessControlOriginators: ['all'],
            accessControlOperations: 2,
            accessControlContexts: [
              { accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'] } },
              { accessControlLocationRegion: { countryCode: ['DE'] } },
              { accessControlLocationRegion: { circRegion: [48.1, 11.6, 1000] } },
            ],
          },
        ],
      },
      selfPrivileges: { accessControlRule: [{ accessControlOriginators: ['owner'], accessControlOperations: 63 }] },
    },
  })
  const base = { targetPolicyIds: ['acp-ctx'], authenticated: true }
  const host = { spId: 'sp.example', cseId: 'cse1' }
  const create = (createdResourceType?: number, withHost = true): CheckInput => ({
    ...base,
    originator: 'Cae-dev',
    operation: 'create',
    ...(createdResourceType === undefined ? {} : { createdResourceType }),
    ...(withHost ? { host } : {}),
  })
  assert.equal((await f.ops.check(cse, create(4))).decision, 'permit', 'CSE-relative id of the hosting CSE')
  assert.equal((await f.ops.check(cse, create(4, false))).decision, 'deny', 'without host only the same form matches')
  assert.equal((await f.ops.check(cse, create(3))).decision, 'deny', 'container not in childResourceType')
  assert.equal((await f.ops.check(cse, create())).decision, 'deny', 'no resource type: indeterminate')
  const read = (context: CheckInput['context']) =>
    f.ops.check(cse, {
      ...base,
      originator: 'Cae-x',
      operation: 'retrieve',
      ...(context === undefined ? {} : { context }),
    })
  assert.equal((await read({ ipAddress: '10.9.8.7' })).decision, 'permit')
  assert.equal((await read({ ipAddress: '192.0.2.1' })).decision, 'deny')
  assert.equal((await read({ location: { countryCode: 'de' } })).decision, 'permit')
  assert.equal((await read({ location: { lat: 48.1, lon: 11.605 } })).decision, 'permit')
  assert.equal((await read({ location: { lat: 52.5, lon: 13.4 } })).decision, 'deny')
  assert.equal((await read(undefined)).decision, 'deny', 'no context value: indeterminate denies')
})

test('Check: bad input is a typed error, not a silent deny', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  const ok: CheckInput = {
    originator: 'Cae-reader',
    operation: 'retrieve',
    targetPolicyIds: ['acp-1'],
    authenticated: true,
  }
  const many = Array.from({ length: 257 }, (_, i) => `acp-${i}`)
  const cases: Array<[string, Partial<CheckInput>, string]> = [
    ['malformed IP', { context: { ipAddress: '10.0.0.256' } }, 'ERR_INVALID_ARGUMENT'],
    ['latitude 95', { context: { location: { lat: 95, lon: 0 } } }, 'ERR_INVALID_ARGUMENT'],
    ['country code', { context: { location: { countryCode: 'DEU' } } }, 'ERR_INVALID_ARGUMENT'],
    ['invalid time', { context: { time: new Date(Number.NaN) } }, 'ERR_INVALID_ARGUMENT'],
    ['empty policy id', { targetPolicyIds: [''] }, 'ERR_INVALID_ARGUMENT'],
    ['too many policy ids', { targetPolicyIds: many }, 'ERR_PAYLOAD_TOO_LARGE'],
    ['too many roles', { roleIds: many }, 'ERR_PAYLOAD_TOO_LARGE'],
    ['empty group id', { groupIds: [''] }, 'ERR_INVALID_ARGUMENT'],
    ['originator too long', { originator: 'x'.repeat(2049) }, 'ERR_PAYLOAD_TOO_LARGE'],
    ['host without SP', { host: { spId: '' } }, 'ERR_INVALID_ARGUMENT'],
  ]
  for (const [name, extra, code] of cases) {
    await assert.rejects(f.ops.check(cse, { ...ok, ...extra }), { code }, name)
  }
  assert.equal((await f.ops.check(cse, ok)).decision, 'permit')
})

test('Check audit: every deny, permits sampled by allowSampleRate', async () => {
  const f = authzFixture(0.25)
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  f.audit.length = 0
  const ask = (originator: string) =>
    f.ops.check(cse, {
      originator,
      operation: 'retrieve',
      targetResourceId: '/cse1/cnt-1',
      targetPolicyIds: ['acp-1'],
      authenticated: true,
    })
  f.sample = 0.3
  await ask('Cae-reader')
  assert.equal(f.audit.length, 0, 'permit not sampled')
  f.sample = 0.2
  await ask('Cae-reader')
  await ask('Cae-evil')
  assert.deepEqual(
    f.audit.map((e) => [
      e.action,
      e.principal,
      e.resource,
      e.result,
      e.details?.['originator'],
      e.details?.['matched'],
    ]),
    [
      ['authz.Check', 'in-cse', 'resource//cse1/cnt-1', 'ok', 'Cae-reader', 'acp-1/privileges[0]'],
      ['authz.Check', 'in-cse', 'resource//cse1/cnt-1', 'denied', 'Cae-evil', undefined],
    ],
  )
  f.sample = 0.9
  await ask('Cae-evil2')
  assert.equal(f.audit.length, 3, 'denials are never sampled away')

  const none = authzFixture(0)
  await none.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  none.sample = 0
  none.audit.length = 0
  await none.ops.check(cse, {
    originator: 'Cae-reader',
    operation: 'retrieve',
    targetPolicyIds: ['acp-1'],
    authenticated: true,
  })
  assert.equal(none.audit.length, 0, 'rate 0 audits no permit')
})

test('Check with the audit log down: denials fail with ERR_AUDIT_UNAVAILABLE, unsampled permits answer', async () => {
  const f = authzFixture(0.01)
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  f.auditDown = true
  const ask = (originator: string) =>
    f.ops.check(cse, { originator, operation: 'retrieve', targetPolicyIds: ['acp-1'], authenticated: true })
  assert.equal((await ask('Cae-reader')).decision, 'permit')
  await assert.rejects(ask('Cae-evil'), { code: 'ERR_AUDIT_UNAVAILABLE' })
})

test('Check with isPolicyChange evaluates selfPrivileges', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  const r = await f.ops.check(cse, {
    originator: 'owner',
    operation: 'update',
    targetPolicyIds: ['acp-1'],
    authenticated: true,
    isPolicyChange: true,
  })
  assert.deepEqual(r, { decision: 'permit', matched: { policyId: 'acp-1', attribute: 'selfPrivileges', ruleIndex: 0 } })
  const viaPrivileges = await f.ops.check(cse, {
    originator: 'Cae-reader',
    operation: 'retrieve',
    targetPolicyIds: ['acp-1'],
    authenticated: true,
    isPolicyChange: true,
  })
  assert.equal(viaPrivileges.decision, 'deny')
})
