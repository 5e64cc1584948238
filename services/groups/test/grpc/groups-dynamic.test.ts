/**
 * Dynamic membership over gRPC on the real platform (nats-server, KMS process): a vehicle
 * allowed by the join policy joins with its mTLS identity and leaves again, each a real KMS
 * rekey; the gateway adds and removes; a static group refuses JoinGroup with PERMISSION_DENIED.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import * as grpc from '@grpc/grpc-js'
import { GroupsClient, GroupsService, Membership } from '@m2msec/proto/groups/v1'
import { promiseClient, type PromiseClient } from '@m2msec/runtime'
import { startGroupsPlatform, type Credential, type GroupsPlatform } from '../../../../test/e2e/groups-platform.ts'

describe('dynamic groups over gRPC', () => {
  let p: GroupsPlatform
  let creds: Map<string, Credential>
  const clients: grpc.Client[] = []

  before(async () => {
    p = await startGroupsPlatform()
    creds = await p.registerCredentials(['rsu-1', 'car-1', 'car-2', 'm1'])
  })
  after(async () => {
    clients.forEach((c) => c.close())
    await p?.stop()
  })

  const keyOf = (id: string) => creds.get(id)!.keyId

  async function clientFor(principal: string): Promise<PromiseClient<typeof GroupsService>> {
    const cert = await p.pki.issueClientCert({ tenant: 'acme', principal, roles: [] })
    const client = new GroupsClient(
      `localhost:${p.groups.address.port}`,
      grpc.credentials.createSsl(Buffer.from(p.pki.caCertPem), Buffer.from(cert.keyPem), Buffer.from(cert.certPem)),
    )
    clients.push(client)
    return promiseClient(GroupsService, client)
  }

  async function expectCode(call: Promise<unknown>, status: grpc.status): Promise<void> {
    await assert.rejects(call, (err: grpc.ServiceError) => {
      assert.equal(err.code, status)
      return true
    })
  }

  test('join, leave, agent add/remove; static refuses', async () => {
    const created = await p.admin.createGroup(
      {
        groupId: 'rsu-range',
        description: 'vehicles near rsu-1',
        agent: { memberId: 'rsu-1', credentialKeyId: keyOf('rsu-1') },
        members: [],
        rekeyPolicy: 0,
        arity: 2,
        membership: Membership.MEMBERSHIP_DYNAMIC,
        joinPolicy: { allow: ['car-*'] },
      },
      p.adminCall(),
    )
    assert.equal(created.group?.membership, Membership.MEMBERSHIP_DYNAMIC)
    assert.deepEqual(created.group?.joinPolicy?.allow, ['car-*'])

    const car1 = await clientFor('car-1')
    const joined = await car1.joinGroup({ groupId: 'rsu-range', credentialKeyId: keyOf('car-1') })
    assert.equal(joined.rekey?.epoch, 1)
    assert.deepEqual(joined.rekey?.joined, ['car-1'])
    assert.equal((await car1.getEnvelopes({ groupId: 'rsu-range', memberId: '' })).epoch, 1)

    const m1 = await clientFor('m1')
    await expectCode(
      m1.joinGroup({ groupId: 'rsu-range', credentialKeyId: keyOf('m1') }),
      grpc.status.PERMISSION_DENIED,
    )

    const rsu = await clientFor('rsu-1')
    const added = await rsu.addMembers({
      groupId: 'rsu-range',
      members: [{ memberId: 'car-2', credentialKeyId: keyOf('car-2') }],
    })
    assert.equal(added.group?.memberCount, 2)
    const removed = await rsu.removeMembers({ groupId: 'rsu-range', memberIds: ['car-2'] })
    assert.equal(removed.rekey?.epoch, 3)

    const left = await car1.leaveGroup({ groupId: 'rsu-range' })
    assert.deepEqual(left.rekey?.left, ['car-1'])
    assert.equal(left.group?.memberCount, 0)
    await expectCode(car1.getGroup({ groupId: 'rsu-range' }), grpc.status.NOT_FOUND)

    await p.admin.createGroup(
      {
        groupId: 'fixed',
        description: '',
        agent: { memberId: 'rsu-1', credentialKeyId: keyOf('rsu-1') },
        members: [{ memberId: 'm1', credentialKeyId: keyOf('m1') }],
        rekeyPolicy: 0,
        arity: 2,
        membership: Membership.MEMBERSHIP_UNSPECIFIED,
      },
      p.adminCall(),
    )
    await expectCode(
      car1.joinGroup({ groupId: 'fixed', credentialKeyId: keyOf('car-1') }),
      grpc.status.PERMISSION_DENIED,
    )
    await expectCode(m1.leaveGroup({ groupId: 'fixed' }), grpc.status.PERMISSION_DENIED)
    await expectCode(rsu.removeMembers({ groupId: 'fixed', memberIds: ['m1'] }), grpc.status.PERMISSION_DENIED)
  })
})
