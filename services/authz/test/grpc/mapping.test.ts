import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parsePolicy } from '@m2msec/acp'
import * as pb from '@m2msec/proto/authz/v1'
import { checkFromProto, peerIpAddress, policyFromProto, policyToProto } from '../../src/grpc/mapping.ts'

test('peerIpAddress reads the address of every grpc-js peer form', () => {
  assert.equal(peerIpAddress('127.0.0.1:53412'), '127.0.0.1')
  assert.equal(peerIpAddress('::1:53412'), '::1')
  assert.equal(peerIpAddress('::ffff:10.1.2.3:8080'), '::ffff:10.1.2.3')
  assert.equal(peerIpAddress('ipv4:10.1.2.3:5000'), '10.1.2.3')
  assert.equal(peerIpAddress('ipv6:[fd00::1]:5000'), 'fd00::1')
  assert.equal(peerIpAddress('/run/authz.sock'), undefined)
  assert.equal(peerIpAddress('unknown'), undefined)
})

test('a policy survives proto -> acp -> proto unchanged; empty lists mean absent', () => {
  const wire = pb.AccessControlPolicy.fromPartial({
    id: 'acp-1',
    privileges: {
      accessControlRule: [
        {
          accessControlOriginators: ['all'],
          accessControlOperations: 63,
          accessControlContexts: [
            { accessControlWindow: ['* * * * * * *'] },
            { accessControlIpAddresses: { ipv4Addresses: [], ipv6Addresses: ['fd00::/8'] } },
            {
              accessControlLocationRegion: {
                region: { $case: 'circRegion', value: { latitude: -1, longitude: 2, radius: 3 } },
              },
            },
          ],
          accessControlObjectDetails: [{ resourceType: 0, childResourceType: [1] }],
        },
      ],
    },
    selfPrivileges: { accessControlRule: [{ accessControlOriginators: ['o'], accessControlOperations: 4 }] },
  })
  const policy = parsePolicy(policyFromProto(wire))
  assert.deepEqual(policy.privileges.accessControlRule[0]?.accessControlContexts?.[1], {
    accessControlIpAddresses: { ipv6Addresses: ['fd00::/8'] },
  })
  assert.equal(policy.privileges.accessControlRule[0]?.accessControlObjectDetails?.[0]?.resourceType, 0)
  assert.equal(policy.selfPrivileges.accessControlRule[0]?.accessControlContexts, undefined)
  const back = policyToProto({
    value: { tenant: 't', policy, createdAt: 'x', updatedAt: 'x', createdBy: 'a', updatedBy: 'a' },
    revision: 9,
  })
  assert.deepEqual(back.privileges, wire.privileges)
  assert.deepEqual(back.selfPrivileges, wire.selfPrivileges)
  assert.equal(back.revision, 9n)
})

test('checkFromProto: empty strings and unset messages are absent; the operation is required', () => {
  const input = checkFromProto(
    pb.CheckRequest.fromPartial({
      operation: pb.Operation.OPERATION_DISCOVERY,
      targetPolicyIds: ['a'],
      context: { location: { latitude: 1, longitude: 2 }, countryCode: 'DE' },
      host: { spId: 'sp.example' },
    }),
  )
  assert.deepEqual(input, {
    operation: 'discovery',
    targetPolicyIds: ['a'],
    roleIds: [],
    groupIds: [],
    authenticated: false,
    context: { location: { lat: 1, lon: 2, countryCode: 'DE' } },
    host: { spId: 'sp.example' },
  })
  assert.throws(() => checkFromProto(pb.CheckRequest.fromPartial({})), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => checkFromProto(undefined), { code: 'ERR_INVALID_ARGUMENT' })
})
