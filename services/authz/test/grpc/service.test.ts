/**
 * The Authorization service over real gRPC (mTLS with the development PKI) on a real
 * nats-server, with two replicas sharing the policy bucket.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import * as grpc from '@grpc/grpc-js'
import { connectNats, verifyAuditChain } from '@m2msec/bus'
import { fromGrpcError } from '@m2msec/runtime'
import { grpcHealthCheck, grpcListServices } from '@m2msec/testkit'
import * as pb from '@m2msec/proto/authz/v1'
import { startAuthzHarness, type Authz, type AuthzHarness } from './authz-harness.ts'

const admin = { tenant: 'acme', principal: 'ops', roles: ['admin'] }
const owner = { tenant: 'acme', principal: 'owner', roles: ['device'] }
const stranger = { tenant: 'acme', principal: 'stranger', roles: ['device'] }
const cse = { tenant: 'acme', principal: 'in-cse', roles: ['cse'] }
const otherAdmin = { tenant: 'globex', principal: 'ops', roles: ['admin'] }

let h: AuthzHarness
let A: Authz
let O: Authz
let S: Authz
let C: Authz
let G: Authz

before(async () => {
  h = await startAuthzHarness({ replicas: 2 })
  A = await h.client(admin)
  O = await h.client(owner)
  S = await h.client(stranger)
  C = await h.client(cse)
  G = await h.client(otherAdmin)
})
after(async () => {
  await h.stop()
})

const Op = pb.Operation
const PERMIT = pb.Decision.DECISION_PERMIT
const DENY = pb.Decision.DECISION_DENY

async function expectError(p: Promise<unknown>, status: grpc.status, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, status, `status ${grpc.status[err.code]} (${err.details})`)
    assert.equal(fromGrpcError(err).code, code)
    if (message !== undefined) assert.match(err.details, message)
    return true
  })
}

/** Only the owner, from this host (the test's loopback address), may manage the policy. */
const ownerFromLoopback: pb.AccessControlRule = pb.AccessControlRule.fromPartial({
  accessControlOriginators: ['owner'],
  accessControlOperations: 63,
  accessControlContexts: [
    {
      accessControlIpAddresses: { ipv4Addresses: ['127.0.0.0/8'], ipv6Addresses: ['::1/128', '::ffff:127.0.0.0/104'] },
    },
  ],
})

function simplePolicy(id: string, reader: string, self: pb.AccessControlRule[] = [ownerFromLoopback]) {
  return pb.AccessControlPolicy.fromPartial({
    id,
    privileges: { accessControlRule: [{ accessControlOriginators: [reader], accessControlOperations: 2 }] },
    selfPrivileges: { accessControlRule: self },
  })
}

function put(c: Authz, policy: pb.AccessControlPolicy, expectedRevision?: bigint) {
  return c.putPolicy(
    pb.PutPolicyRequest.fromPartial({ policy, ...(expectedRevision === undefined ? {} : { expectedRevision }) }),
  )
}

function check(c: Authz, r: pb.DeepPartial<pb.CheckRequest>) {
  return c.check(pb.CheckRequest.fromPartial({ operation: Op.OPERATION_RETRIEVE, authenticated: true, ...r }))
}

test('health and reflection answer without credentials; Authorization RPCs do not', async () => {
  const tlsOnly = grpc.credentials.createSsl(Buffer.from(h.caPem))
  assert.equal(await grpcHealthCheck(h.targets[0] ?? '', tlsOnly, 'm2msec.authz.v1.Authorization'), 'SERVING')
  assert.ok((await grpcListServices(h.targets[0] ?? '', tlsOnly)).includes('m2msec.authz.v1.Authorization'))
  await expectError(
    h.anonymousClient().check(pb.CheckRequest.fromPartial({ operation: Op.OPERATION_RETRIEVE })),
    grpc.status.UNAUTHENTICATED,
    'ERR_UNAUTHENTICATED',
  )
})

test('policy CRUD: every field round-trips, selfPrivileges govern non-admins, tenants are isolated', async () => {
  const full = pb.AccessControlPolicy.fromPartial({
    id: '//sp.example/in-cse/acp-full',
    privileges: {
      accessControlRule: [
        {
          accessControlOriginators: ['//sp.example/in-cse/Cae-*', 'R-operator', '/in-cse/grp-1'],
          accessControlOperations: 3,
          accessControlContexts: [
            {
              accessControlWindow: ['* * 8-17 * * 1-5 *'],
              accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'], ipv6Addresses: ['fd00::/8'] },
              accessControlLocationRegion: { region: { $case: 'countryCode', value: { codes: ['DE', 'FR'] } } },
            },
            {
              accessControlLocationRegion: {
                region: { $case: 'circRegion', value: { latitude: 48.1, longitude: 11.6, radius: 500 } },
              },
            },
          ],
          accessControlAuthenticationFlag: true,
          accessControlObjectDetails: [
            { resourceType: 2, specializationType: 'org.onem2m.home.device', childResourceType: [3, 4] },
            { childResourceType: [23] },
          ],
        },
        { accessControlOriginators: ['all'], accessControlOperations: 32 },
      ],
    },
    selfPrivileges: { accessControlRule: [ownerFromLoopback] },
  })
  const created = await put(A, full, 0n)
  assert.equal(created.created, true)
  const got = (await O.getPolicy({ policyId: full.id })).policy
  assert.ok(got)
  assert.deepEqual(got.privileges, full.privileges)
  assert.deepEqual(got.selfPrivileges, full.selfPrivileges)
  assert.equal(got.revision, created.policy?.revision)
  assert.equal(got.createdBy, 'ops')
  assert.ok(got.createTime instanceof Date)

  // The owner (allowed from loopback by selfPrivileges) replaces it with compare-and-set.
  const replaced = await put(O, simplePolicy(full.id, 'Cae-1'), got.revision)
  assert.equal(replaced.created, false)
  assert.equal(replaced.policy?.updatedBy, 'owner')
  await expectError(put(O, simplePolicy(full.id, 'Cae-2'), got.revision), grpc.status.ABORTED, 'ERR_REVISION_CONFLICT')
  await expectError(put(S, simplePolicy(full.id, 'Cae-3')), grpc.status.PERMISSION_DENIED, 'ERR_PERMISSION_DENIED')
  await expectError(put(O, simplePolicy('acp-new', 'x')), grpc.status.PERMISSION_DENIED, 'ERR_PERMISSION_DENIED')
  await expectError(S.getPolicy({ policyId: full.id }), grpc.status.PERMISSION_DENIED, 'ERR_PERMISSION_DENIED')

  // A selfPrivileges rule that admits the owner only from another network refuses it here.
  const remoteOnly = pb.AccessControlRule.fromPartial({
    accessControlOriginators: ['owner'],
    accessControlOperations: 63,
    accessControlContexts: [{ accessControlIpAddresses: { ipv4Addresses: ['192.0.2.0/24'] } }],
  })
  await put(A, simplePolicy('acp-remote', 'x', [remoteOnly]))
  await expectError(O.getPolicy({ policyId: 'acp-remote' }), grpc.status.PERMISSION_DENIED, 'ERR_PERMISSION_DENIED')

  // Another tenant: not found, not listed, never used in its decisions; same id is its own policy.
  await expectError(G.getPolicy({ policyId: full.id }), grpc.status.NOT_FOUND, 'ERR_NOT_FOUND')
  await expectError(G.deletePolicy({ policyId: full.id }), grpc.status.NOT_FOUND, 'ERR_NOT_FOUND')
  assert.equal((await G.listPolicies({ pageSize: 0, pageToken: '' })).policies.length, 0)
  assert.equal((await check(G, { originator: 'Cae-1', targetPolicyIds: [full.id] })).decision, DENY)
  assert.equal((await put(G, simplePolicy(full.id, 'Cae-globex'))).created, true)
  assert.equal((await check(C, { originator: 'Cae-globex', targetPolicyIds: [full.id] })).decision, DENY)
  assert.equal((await check(C, { originator: 'Cae-1', targetPolicyIds: [full.id] })).decision, PERMIT)

  const listed = await A.listPolicies({ pageSize: 1, pageToken: '' })
  assert.equal(listed.policies.length, 1)
  assert.notEqual(listed.nextPageToken, '')
  const rest = await A.listPolicies({ pageSize: 10, pageToken: listed.nextPageToken })
  assert.deepEqual(
    [...listed.policies, ...rest.policies].map((p) => p.id),
    ['//sp.example/in-cse/acp-full', 'acp-remote'],
  )
  assert.equal(rest.nextPageToken, '')

  await expectError(
    O.deletePolicy({ policyId: full.id, expectedRevision: 1n }),
    grpc.status.ABORTED,
    'ERR_REVISION_CONFLICT',
  )
  await O.deletePolicy({ policyId: full.id })
  await expectError(A.getPolicy({ policyId: full.id }), grpc.status.NOT_FOUND, 'ERR_NOT_FOUND')
  assert.equal((await check(C, { originator: 'Cae-1', targetPolicyIds: [full.id] })).decision, DENY)
  await A.deletePolicy({ policyId: 'acp-remote' })
  await G.deletePolicy({ policyId: full.id })
})

test('Check, BatchCheck and Explain end to end', async () => {
  await put(
    A,
    pb.AccessControlPolicy.fromPartial({
      id: 'acp-meter',
      privileges: {
        accessControlRule: [
          {
            accessControlOriginators: ['//sp.example/in-cse/Cmeter*'],
            accessControlOperations: 1,
            accessControlObjectDetails: [{ childResourceType: [4] }],
          },
          {
            accessControlOriginators: ['R-reader'],
            accessControlOperations: 2 | 32,
            accessControlContexts: [
              { accessControlLocationRegion: { region: { $case: 'countryCode', value: { codes: ['DE'] } } } },
            ],
          },
        ],
      },
      selfPrivileges: { accessControlRule: [ownerFromLoopback] },
    }),
  )
  const host = { spId: 'sp.example', cseId: 'in-cse' }
  const create = await check(C, {
    originator: 'Cmeter-7',
    operation: Op.OPERATION_CREATE,
    targetResourceId: '/in-cse/meter-7',
    targetPolicyIds: ['acp-meter'],
    createdResourceType: 4,
    host,
  })
  assert.equal(create.decision, PERMIT)
  assert.deepEqual(create.matchedRule, {
    policyId: 'acp-meter',
    attribute: pb.PolicyAttribute.POLICY_ATTRIBUTE_PRIVILEGES,
    ruleIndex: 0,
    tokenId: '',
    permissionIndex: 0,
  })
  const discover = {
    originator: 'Cdash',
    operation: Op.OPERATION_DISCOVERY,
    targetPolicyIds: ['acp-meter'],
    roleIds: ['R-reader'],
    context: { countryCode: 'de', ipAddress: '192.0.2.7', time: new Date('2026-01-01T00:00:00Z') },
  }
  assert.equal((await check(C, discover)).decision, PERMIT)
  assert.equal((await check(C, { ...discover, context: { countryCode: 'FR' } })).decision, DENY)
  assert.equal((await check(C, { ...discover, context: {} })).decision, DENY, 'no country: indeterminate')

  const batch = await C.batchCheck(
    pb.BatchCheckRequest.fromPartial({
      items: [
        {
          operation: Op.OPERATION_CREATE,
          originator: 'Cmeter-8',
          targetPolicyIds: ['acp-meter'],
          createdResourceType: 4,
          host,
        },
        {
          operation: Op.OPERATION_CREATE,
          originator: 'Cmeter-8',
          targetPolicyIds: ['acp-meter'],
          createdResourceType: 3,
          host,
        },
        { operation: Op.OPERATION_UNSPECIFIED, targetPolicyIds: ['acp-meter'] },
        { operation: Op.OPERATION_RETRIEVE, targetPolicyIds: ['acp-meter'], context: { ipAddress: 'not-an-ip' } },
      ],
    }),
  )
  const outcomes = batch.results.map((r) => r.outcome)
  assert.equal(outcomes[0]?.$case === 'result' ? outcomes[0].value.decision : -1, PERMIT)
  assert.equal(outcomes[1]?.$case === 'result' ? outcomes[1].value.decision : -1, DENY)
  assert.equal(outcomes[2]?.$case === 'error' ? outcomes[2].value.code : -1, grpc.status.INVALID_ARGUMENT)
  assert.equal(outcomes[3]?.$case === 'error' ? outcomes[3].value.code : -1, grpc.status.INVALID_ARGUMENT)
  await expectError(C.batchCheck({ items: [] }), grpc.status.INVALID_ARGUMENT, 'ERR_INVALID_ARGUMENT')
  const many = Array.from({ length: 1001 }, () =>
    pb.CheckRequest.fromPartial({ operation: Op.OPERATION_RETRIEVE, targetPolicyIds: ['acp-meter'] }),
  )
  await expectError(C.batchCheck({ items: many }), grpc.status.INVALID_ARGUMENT, 'ERR_PAYLOAD_TOO_LARGE')

  const explained = await C.explain(
    pb.ExplainRequest.fromPartial({
      check: {
        originator: 'Cmeter-9',
        operation: Op.OPERATION_CREATE,
        targetPolicyIds: ['acp-meter', 'acp-404'],
        host,
      },
    }),
  )
  assert.equal(explained.decision, DENY)
  assert.equal(explained.matchedRule, undefined)
  assert.deepEqual(explained.reasons, [
    'policy acp-meter privileges[0]: accessControlObjectDetails indeterminate: request lacks a resource type',
    'policy acp-meter privileges[1]: operation not in accessControlOperations',
    'policy acp-404: not found',
    'deny: no applicable rule permits (2 rules considered)',
  ])
  await expectError(C.explain({}), grpc.status.INVALID_ARGUMENT, 'ERR_INVALID_ARGUMENT')
})

test('bad input gets a typed error and changes nothing', async () => {
  await put(A, simplePolicy('acp-stable', 'Cae-1'))
  const before = await A.listPolicies({ pageSize: 1000, pageToken: '' })
  const stable = (await A.getPolicy({ policyId: 'acp-stable' })).policy
  const withContext = (c: Partial<pb.AccessControlContext>) =>
    pb.AccessControlPolicy.fromPartial({
      id: 'acp-stable',
      privileges: {
        accessControlRule: [
          { accessControlOriginators: ['x'], accessControlOperations: 2, accessControlContexts: [c] },
        ],
      },
      selfPrivileges: { accessControlRule: [ownerFromLoopback] },
    })
  const ip4 = (...ipv4Addresses: string[]) =>
    withContext({ accessControlIpAddresses: { ipv4Addresses, ipv6Addresses: [] } })
  const cases: Array<[string, () => Promise<unknown>, grpc.status, string, RegExp?]> = [
    [
      'crontab with 6 fields',
      () => put(A, withContext({ accessControlWindow: ['* * * * * *'] })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /accessControlWindow\[0\]/,
    ],
    [
      'crontab minute 60',
      () => put(A, withContext({ accessControlWindow: ['* 60 * * * * *'] })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /accessControlWindow\[0\]/,
    ],
    [
      'crontab year 1999',
      () => put(A, withContext({ accessControlWindow: ['* * * * * * 1999'] })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /accessControlWindow\[0\]/,
    ],
    [
      'CIDR prefix 33',
      () => put(A, ip4('10.0.0.0/33')),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /ipv4Addresses\[0\]/,
    ],
    [
      'CIDR with host bits',
      () => put(A, ip4('10.1.2.3/8')),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /ipv4Addresses\[0\]/,
    ],
    [
      'IPv4 octet 256',
      () => put(A, ip4('10.0.0.0/8', '10.256.0.0/16')),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /ipv4Addresses\[1\]/,
    ],
    [
      'IPv6 in the IPv4 list',
      () => put(A, ip4('fd00::/8')),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /ipv4Addresses\[0\]/,
    ],
    [
      'no address list',
      () => put(A, withContext({ accessControlIpAddresses: { ipv4Addresses: [], ipv6Addresses: [] } })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /accessControlIpAddresses/,
    ],
    [
      '3-letter country',
      () =>
        put(
          A,
          withContext({ accessControlLocationRegion: { region: { $case: 'countryCode', value: { codes: ['DEU'] } } } }),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /countryCode\[0\]/,
    ],
    [
      'latitude 91',
      () =>
        put(
          A,
          withContext({
            accessControlLocationRegion: {
              region: { $case: 'circRegion', value: { latitude: 91, longitude: 0, radius: 1 } },
            },
          }),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /circRegion/,
    ],
    [
      'region without choice',
      () => put(A, withContext({ accessControlLocationRegion: {} })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /accessControlLocationRegion/,
    ],
    [
      'operations 0',
      () =>
        put(
          A,
          pb.AccessControlPolicy.fromPartial({
            ...simplePolicy('acp-stable', 'x'),
            privileges: { accessControlRule: [{ accessControlOriginators: ['x'] }] },
          }),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /accessControlOperations/,
    ],
    [
      'no originators',
      () =>
        put(
          A,
          pb.AccessControlPolicy.fromPartial({
            ...simplePolicy('acp-stable', 'x'),
            privileges: { accessControlRule: [{ accessControlOperations: 2 }] },
          }),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /accessControlOriginators/,
    ],
    [
      'object details without child types',
      () =>
        put(
          A,
          pb.AccessControlPolicy.fromPartial({
            ...simplePolicy('acp-stable', 'x'),
            privileges: {
              accessControlRule: [
                {
                  accessControlOriginators: ['x'],
                  accessControlOperations: 1,
                  accessControlObjectDetails: [{ resourceType: 2 }],
                },
              ],
            },
          }),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /childResourceType/,
    ],
    [
      'empty selfPrivileges',
      () => put(A, simplePolicy('acp-stable', 'x', [])),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
      /selfPrivileges/,
    ],
    [
      'policy larger than the store allows (1 MiB)',
      () =>
        put(
          A,
          simplePolicy('acp-stable', 'x', [
            pb.AccessControlRule.fromPartial({
              accessControlOriginators: Array.from(
                { length: 4000 },
                (_, i) => `//sp.example/in-cse/C${'x'.repeat(300)}${i}`,
              ),
              accessControlOperations: 63,
            }),
          ]),
        ),
      grpc.status.INVALID_ARGUMENT,
      'ERR_PAYLOAD_TOO_LARGE',
    ],
    [
      'no policy',
      () => A.putPolicy(pb.PutPolicyRequest.fromPartial({})),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    ['no id', () => put(A, simplePolicy('', 'x')), grpc.status.INVALID_ARGUMENT, 'ERR_INVALID_ARGUMENT', /id/],
    ['id with a space', () => put(A, simplePolicy('acp 1', 'x')), grpc.status.INVALID_ARGUMENT, 'ERR_INVALID_ARGUMENT'],
    [
      'expected revision beyond 2^53',
      () => put(A, simplePolicy('acp-stable', 'x'), 2n ** 60n),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'create-only on an existing id',
      () => put(A, simplePolicy('acp-stable', 'x'), 0n),
      grpc.status.ALREADY_EXISTS,
      'ERR_ALREADY_EXISTS',
    ],
    [
      'check without operation',
      () => C.check(pb.CheckRequest.fromPartial({ targetPolicyIds: ['acp-stable'] })),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'check with latitude 100',
      () => check(C, { targetPolicyIds: ['acp-stable'], context: { location: { latitude: 100, longitude: 0 } } }),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
    [
      'check with 257 policy ids',
      () => check(C, { targetPolicyIds: Array.from({ length: 257 }, (_, i) => `p${i}`) }),
      grpc.status.INVALID_ARGUMENT,
      'ERR_PAYLOAD_TOO_LARGE',
    ],
    ['get with an empty id', () => A.getPolicy({ policyId: '' }), grpc.status.INVALID_ARGUMENT, 'ERR_INVALID_ARGUMENT'],
    [
      'page size -1',
      () => A.listPolicies({ pageSize: -1, pageToken: '' }),
      grpc.status.INVALID_ARGUMENT,
      'ERR_INVALID_ARGUMENT',
    ],
  ]
  for (const [name, call, status, code, message] of cases) {
    await test(name, () => expectError(call(), status, code, message))
  }
  const afterList = await A.listPolicies({ pageSize: 1000, pageToken: '' })
  assert.deepEqual(afterList, before)
  assert.deepEqual((await A.getPolicy({ policyId: 'acp-stable' })).policy, stable)
  assert.equal((await check(C, { originator: 'Cae-1', targetPolicyIds: ['acp-stable'] })).decision, PERMIT)
})

test('a malformed protobuf request is INVALID_ARGUMENT, not INTERNAL', async () => {
  const raw = new grpc.Client(h.targets[0] ?? '', await h.credentials(cse))
  const err = await new Promise<grpc.ServiceError>((ok) =>
    raw.makeUnaryRequest(
      '/m2msec.authz.v1.Authorization/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
      (e) => ok(e as grpc.ServiceError),
    ),
  )
  raw.close()
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT, `${grpc.status[err.code]}: ${err.details}`)
})

test('acceptance: change a policy on one replica and see the decision change on the other (< 1 s)', async (t) => {
  const admin0 = await h.client(admin, 0)
  const cse1 = await h.client(cse, 1)
  const decisionOn1 = async (originator: string) =>
    (await check(cse1, { originator, targetPolicyIds: ['acp-prop'] })).decision

  await put(admin0, simplePolicy('acp-prop', 'Cae-0'))
  const fromPut: number[] = []
  const fromAck: number[] = []
  for (let i = 1; i <= 20; i++) {
    const reader = `Cae-${i}`
    assert.equal(await decisionOn1(reader), DENY)
    const started = performance.now()
    await put(admin0, simplePolicy('acp-prop', reader))
    const acked = performance.now()
    while ((await decisionOn1(reader)) !== PERMIT) {
      assert.ok(performance.now() - started < 1000, `replica 1 still denies ${reader} after 1 s`)
    }
    const seen = performance.now()
    fromPut.push(seen - started)
    fromAck.push(seen - acked)
    assert.equal(await decisionOn1(`Cae-${i - 1}`), DENY, 'the old reader lost its access at the same time')
  }
  // Deleting on replica 1 takes effect on replica 0.
  const cse0 = await h.client(cse, 0)
  await (await h.client(admin, 1)).deletePolicy({ policyId: 'acp-prop' })
  const delStarted = performance.now()
  while ((await check(cse0, { originator: 'Cae-20', targetPolicyIds: ['acp-prop'] })).decision !== DENY) {
    assert.ok(performance.now() - delStarted < 1000, 'replica 0 still permits after the delete on replica 1')
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b)
    return `median ${s[Math.floor(s.length / 2)]?.toFixed(1)} ms, max ${s.at(-1)?.toFixed(1)} ms`
  }
  t.diagnostic(
    `propagation over ${fromPut.length} changes, PutPolicy start -> other replica decides: ${stats(fromPut)}`,
  )
  t.diagnostic(`propagation, PutPolicy returned -> other replica decides: ${stats(fromAck)}`)
  assert.ok(Math.max(...fromPut) < 1000)
})

test('denials reach the hash-chained AUDIT stream; sampled-out permits do not', async () => {
  const nc = await connectNats({ servers: h.nats.url, name: 'authz-audit-test' })
  try {
    await put(A, simplePolicy('acp-audit', 'Cae-ok'))
    const count = async () => {
      const v = await verifyAuditChain(nc)
      assert.ok(v.ok, v.firstBad?.reason)
      return v.records
    }
    const before = await count()
    await check(C, { originator: 'Cae-nope', targetPolicyIds: ['acp-audit'] })
    await check(C, { originator: 'Cae-nope', targetPolicyIds: ['acp-audit'] })
    assert.equal(await count(), before + 2)
    // allowSampleRate is 0.01: not every permit is audited (all 20 sampled has probability 1e-40).
    for (let i = 0; i < 20; i++) await check(C, { originator: 'Cae-ok', targetPolicyIds: ['acp-audit'] })
    assert.ok((await count()) - before - 2 < 20)
  } finally {
    await nc.close()
  }
})
