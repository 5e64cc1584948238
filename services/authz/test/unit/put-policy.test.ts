import { test } from 'node:test'
import assert from 'node:assert/strict'
import { admin, authzFixture, otherAdmin, owner, policyJson, stranger } from './authz-fixture.ts'

const reads = (f: ReturnType<typeof authzFixture>, tenant: string, originator: string, id = 'acp-1') =>
  f.ops.check(
    { tenant, id: 'in-cse', roles: [] },
    {
      originator,
      operation: 'retrieve',
      targetPolicyIds: [id],
      authenticated: true,
    },
  )

test('an admin creates and replaces a policy; bookkeeping and decisions follow', async () => {
  const f = authzFixture()
  const created = await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  assert.equal(created.created, true)
  assert.equal(created.policy.value.createdBy, 'ops')
  assert.equal(created.policy.value.createdAt, '2025-03-04T02:03:04.000Z')
  assert.equal((await reads(f, 'acme', 'Cae-reader')).decision, 'permit')
  f.clock.advance(60_000)
  const replaced = await f.ops.putPolicy(owner, { policy: policyJson('acp-1', 'Cae-new') })
  assert.equal(replaced.created, false)
  assert.ok(replaced.policy.revision > created.policy.revision)
  assert.equal(replaced.policy.value.createdBy, 'ops', 'creator kept')
  assert.equal(replaced.policy.value.updatedBy, 'owner')
  assert.equal(replaced.policy.value.updatedAt, '2025-03-04T02:04:04.000Z')
  assert.equal((await reads(f, 'acme', 'Cae-reader')).decision, 'deny')
  assert.equal((await reads(f, 'acme', 'Cae-new')).decision, 'permit')
  // Short names are accepted and stored in the canonical long form.
  const short = await f.ops.putPolicy(admin, {
    policy: { ri: 'acp-short', pv: { acr: [] }, pvs: { acr: [{ acor: ['owner'], acop: 63 }] } },
  })
  assert.deepEqual(short.policy.value.policy.selfPrivileges, {
    accessControlRule: [{ accessControlOriginators: ['owner'], accessControlOperations: 63 }],
  })
})

test('only admins create; others replace only as the STORED selfPrivileges allow', async () => {
  const f = authzFixture()
  await assert.rejects(f.ops.putPolicy(owner, { policy: policyJson('acp-1') }), { code: 'ERR_PERMISSION_DENIED' })
  assert.equal(await f.store.get('acme', 'acp-1'), undefined)
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  // A stranger cannot grant itself rights by sending new selfPrivileges naming itself.
  const grab = policyJson('acp-1', 'stranger', [
    { accessControlOriginators: ['stranger'], accessControlOperations: 63 },
  ])
  await assert.rejects(f.ops.putPolicy(stranger, { policy: grab }), { code: 'ERR_PERMISSION_DENIED' })
  assert.equal((await reads(f, 'acme', 'stranger')).decision, 'deny')
  // The owner may, and after that the stranger is the one the stored selfPrivileges name.
  await f.ops.putPolicy(owner, { policy: grab })
  await f.ops.putPolicy(stranger, {
    policy: policyJson('acp-1', 'Cae-x', [{ accessControlOriginators: ['stranger'], accessControlOperations: 4 }]),
  })
  assert.equal((await reads(f, 'acme', 'Cae-x')).decision, 'permit')
})

test('selfPrivileges contexts apply to policy changes: the caller IP is rq_ip', async () => {
  const f = authzFixture()
  const onlyFromLan = [
    {
      accessControlOriginators: ['owner'],
      accessControlOperations: 4,
      accessControlContexts: [{ accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'] } }],
    },
  ]
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1', 'Cae-reader', onlyFromLan) })
  await f.ops.putPolicy(owner, { policy: policyJson('acp-1', 'Cae-2', onlyFromLan) })
  const outside = { ...owner, ipAddress: '192.0.2.1' }
  await assert.rejects(f.ops.putPolicy(outside, { policy: policyJson('acp-1', 'Cae-3', onlyFromLan) }), {
    code: 'ERR_PERMISSION_DENIED',
  })
  const { ipAddress: _, ...noIp } = owner
  await assert.rejects(f.ops.putPolicy(noIp, { policy: policyJson('acp-1', 'Cae-3', onlyFromLan) }), {
    code: 'ERR_PERMISSION_DENIED',
  })
})

test('expected_revision makes the write a compare-and-set', async () => {
  const f = authzFixture()
  await assert.rejects(f.ops.putPolicy(admin, { policy: policyJson('acp-1'), expectedRevision: 7 }), {
    code: 'ERR_NOT_FOUND',
  })
  const first = await f.ops.putPolicy(admin, { policy: policyJson('acp-1'), expectedRevision: 0 })
  await assert.rejects(f.ops.putPolicy(admin, { policy: policyJson('acp-1'), expectedRevision: 0 }), {
    code: 'ERR_ALREADY_EXISTS',
  })
  const second = await f.ops.putPolicy(admin, {
    policy: policyJson('acp-1', 'Cae-2'),
    expectedRevision: first.policy.revision,
  })
  await assert.rejects(
    f.ops.putPolicy(admin, { policy: policyJson('acp-1', 'Cae-lost'), expectedRevision: first.policy.revision }),
    { code: 'ERR_REVISION_CONFLICT' },
  )
  await assert.rejects(f.ops.putPolicy(admin, { policy: policyJson('acp-1'), expectedRevision: -1 }), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  assert.equal((await f.store.get('acme', 'acp-1'))?.revision, second.policy.revision)
})

test('malformed policies are rejected with the acp parse error and change nothing', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  const before = await f.store.get('acme', 'acp-1')
  const rule = (extra: Record<string, unknown>) => ({
    id: 'acp-1',
    privileges: { accessControlRule: [{ accessControlOriginators: ['x'], accessControlOperations: 2, ...extra }] },
    selfPrivileges: { accessControlRule: [{ accessControlOriginators: ['owner'], accessControlOperations: 63 }] },
  })
  const ctx = (c: Record<string, unknown>) => rule({ accessControlContexts: [c] })
  const cases: Array<[string, unknown, RegExp]> = [
    ['6-field crontab', ctx({ accessControlWindow: ['* * * * * *'] }), /accessControlWindow\[0\]/],
    ['crontab hour 24', ctx({ accessControlWindow: ['* * 24 * * * *'] }), /accessControlWindow\[0\]/],
    ['CIDR prefix 33', ctx({ accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/33'] } }), /ipv4Addresses\[0\]/],
    ['CIDR host bits', ctx({ accessControlIpAddresses: { ipv4Addresses: ['10.0.0.1/8'] } }), /ipv4Addresses\[0\]/],
    ['IPv6 garbage', ctx({ accessControlIpAddresses: { ipv6Addresses: ['fd00::zz/8'] } }), /ipv6Addresses\[0\]/],
    ['country code', ctx({ accessControlLocationRegion: { countryCode: ['DEU'] } }), /countryCode\[0\]/],
    ['latitude 91', ctx({ accessControlLocationRegion: { circRegion: [91, 0, 10] } }), /circRegion/],
    ['operations 0', rule({ accessControlOperations: 0 }), /accessControlOperations/],
    ['operations 64', rule({ accessControlOperations: 64 }), /accessControlOperations/],
    ['unknown element', rule({ aca: ['x'] }), /unknown element/],
    ['wildcard SP domain', rule({ accessControlOriginators: ['//sp*.example'] }), /accessControlOriginators\[0\]/],
    ['empty selfPrivileges', { ...policyJson('acp-1'), selfPrivileges: { accessControlRule: [] } }, /selfPrivileges/],
    ['missing id', { privileges: {}, selfPrivileges: {} }, /id/],
    ['whitespace in id', policyJson('acp 1'), /policy id/],
    ['id too long', policyJson('a'.repeat(257)), /policy id/],
  ]
  for (const [name, policy, message] of cases) {
    await assert.rejects(f.ops.putPolicy(admin, { policy }), (err: Error & { code: string }) => {
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', name)
      assert.match(err.message, message, name)
      return true
    })
  }
  assert.deepEqual(await f.store.get('acme', 'acp-1'), before)
  assert.equal((await f.store.list('acme', { limit: 10 })).items.length, 1)
  const errors = f.audit.filter((e) => e.action === 'authz.PutPolicy' && e.result === 'error')
  assert.equal(errors.length, cases.length, 'every refused change is audited')
})

test('policy changes are audited (attempt first); with the audit log down nothing changes', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  assert.deepEqual(
    f.audit.map((e) => [e.action, e.resource, e.result, e.details?.['phase']]),
    [
      ['authz.PutPolicy', 'policy/acp-1', 'ok', 'attempt'],
      ['authz.PutPolicy', 'policy/acp-1', 'ok', undefined],
    ],
  )
  f.auditDown = true
  await assert.rejects(f.ops.putPolicy(admin, { policy: policyJson('acp-2') }), { code: 'ERR_AUDIT_UNAVAILABLE' })
  assert.equal(await f.store.get('acme', 'acp-2'), undefined)
})

test('tenants are isolated: the same id in another tenant is another policy', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  const theirs = await f.ops.putPolicy(otherAdmin, { policy: policyJson('acp-1', 'Cae-globex') })
  assert.equal(theirs.created, true)
  assert.equal((await reads(f, 'acme', 'Cae-globex')).decision, 'deny')
  assert.equal((await reads(f, 'globex', 'Cae-globex')).decision, 'permit')
  assert.equal((await reads(f, 'globex', 'Cae-reader')).decision, 'deny')
})

test('a store outage is ERR_UNAVAILABLE', async () => {
  const f = authzFixture()
  f.store.down = true
  await assert.rejects(f.ops.putPolicy(admin, { policy: policyJson('acp-1') }), { code: 'ERR_UNAVAILABLE' })
})
