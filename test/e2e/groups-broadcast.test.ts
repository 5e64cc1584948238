/**
 * TR-0012 scenarios, end to end on real processes (nats-server, the KMS as a child process, the
 * groups service):
 *
 * - vehicles behind a roadside gateway: every join and leave is a rekey with O(log n)
 *   envelopes; a removed vehicle cannot open the next broadcast, a new vehicle cannot open an
 *   old one (backward and forward secrecy), and members that missed a rekey catch up;
 * - fire sensors and doors commanded by broadcast: a command signed by the group's KMS key and
 *   encrypted under the current group key opens on every door once; a replay is refused.
 *
 * The gateway relays everything and can read none of it.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { isM2msecError } from '@m2msec/errors'
import { createMemberKeyRing } from '@m2msec/groupkeys'
import {
  AddMembersRequest,
  CreateGroupRequest,
  RemoveMembersRequest,
  SendBroadcastRequest,
} from '@m2msec/proto/groups/v1'
import {
  createGroupAgent,
  createGroupMember,
  envelopesForMember,
  memberWrapKey,
  senderKeyFromJwk,
  type GroupAgent,
  type GroupMember,
} from '@m2msec/sdk/groups'
import { startGroupsPlatform, type Credential, type GroupsPlatform } from './groups-platform.ts'

async function refusedWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isM2msecError(err), String(err))
    assert.equal(err.code, code)
    return true
  })
}

describe('groups e2e: vehicles behind a roadside gateway, doors commanded by broadcast', () => {
  let platform: GroupsPlatform
  after(() => platform?.stop())
  before(async () => {
    platform = await startGroupsPlatform()
  })

  async function setupGroup(groupId: string, agentId: string, ids: readonly string[], extra: readonly string[] = []) {
    const creds: Map<string, Credential> = await platform.registerCredentials([...ids, ...extra, agentId])
    const res = await platform.admin.createGroup(
      CreateGroupRequest.fromPartial({
        groupId,
        agent: { memberId: agentId, credentialKeyId: creds.get(agentId)!.keyId },
        members: ids.map((id) => ({ memberId: id, credentialKeyId: creds.get(id)!.keyId })),
      }),
      platform.adminCall(),
    )
    const senderKey = await senderKeyFromJwk(res.group!.broadcastSender!.publicJwk)
    const senderId = res.group!.broadcastSender!.senderId
    const member = (id: string): GroupMember =>
      createGroupMember({
        groupId,
        memberId: id,
        credential: creds.get(id)!.bytes,
        senderKey: (s) => (s === senderId ? senderKey : undefined),
      })
    const agent: GroupAgent = createGroupAgent({
      groupId,
      agentId,
      credential: creds.get(agentId)!.bytes,
      api: await platform.apiFor(agentId),
    })
    const members = new Map(ids.map((id) => [id, member(id)]))
    /** The gateway relays the latest rekey to every member it serves. */
    const relay = async (to: Iterable<GroupMember>) => {
      const rekey = await agent.rekeyEnvelopes()
      for (const m of to) await m.accept(envelopesForMember(rekey, m.memberId))
      return rekey
    }
    await relay(members.values())
    return { creds, members, member, agent, relay }
  }

  const send = async (groupId: string, text: string) =>
    (
      await platform.admin.sendBroadcast(
        SendBroadcastRequest.fromPartial({ groupId, payload: Buffer.from(text) }),
        platform.adminCall(),
      )
    ).jwe

  test('join and leave rekey: the removed vehicle cannot read the next command, the new one no old command', async (t) => {
    const G = 'rsu-42-vehicles'
    const ids = Array.from({ length: 64 }, (_, i) => `car-${i}`)
    const { members, member, relay, creds } = await setupGroup(G, 'rsu-42', ids, ['car-new'])
    for (const m of members.values()) assert.equal(m.epoch(), 1)

    const before = await send(G, 'speed limit 80')
    assert.equal(
      new TextDecoder().decode((await members.get('car-5')!.openBroadcast(before)).payload),
      'speed limit 80',
    )

    const left = await platform.admin.removeMembers(
      RemoveMembersRequest.fromPartial({ groupId: G, memberIds: ['car-5'] }),
      platform.adminCall(),
    )
    assert.equal(left.rekey?.epoch, 2)
    assert.ok(left.rekey!.envelopeCount <= 2 * 6, `leave: ${left.rekey!.envelopeCount} envelopes`)
    const gone = members.get('car-5')!
    members.delete('car-5')
    await relay([...members.values(), gone]) // the gateway may even relay to the removed car
    assert.equal(gone.epoch(), 1)
    for (const m of members.values()) assert.equal(m.epoch(), 2)

    const added = await platform.admin.addMembers(
      AddMembersRequest.fromPartial({
        groupId: G,
        members: [{ memberId: 'car-new', credentialKeyId: creds.get('car-new')!.keyId }],
      }),
      platform.adminCall(),
    )
    assert.equal(added.rekey?.epoch, 3)
    assert.ok(added.rekey!.envelopeCount <= 2 * 6, `join: ${added.rekey!.envelopeCount} envelopes`)
    t.diagnostic(`n=64: leave ${left.rekey!.envelopeCount} envelopes, join ${added.rekey!.envelopeCount} envelopes`)
    const newcomer = member('car-new')
    await relay([...members.values(), newcomer])
    assert.equal(newcomer.epoch(), 3)

    const next = await send(G, 'lane 2 closed')
    for (const m of [...members.values(), newcomer]) {
      assert.equal(new TextDecoder().decode((await m.openBroadcast(next)).payload), 'lane 2 closed')
    }
    await refusedWith(gone.openBroadcast(next), 'ERR_KEY_VERSION_NOT_FOUND')
    // The new car holds no key of epoch 1 or 2: the old command is refused and never decrypts.
    await refusedWith(newcomer.openBroadcast(before), 'ERR_REPLAY')
    const ring = createMemberKeyRing({
      groupId: G,
      memberId: 'car-new',
      wrapKeyFor: (e) => memberWrapKey(creds.get('car-new')!.bytes, G, e),
    })
    const all = [...(await platform.admin.getRekeyEnvelopes({ groupId: G, epoch: 1 }, platform.adminCall())).envelopes]
    await ring.accept(all.map((e) => e.jwe))
    assert.equal(ring.groupKey(), undefined)

    // A car that missed both rekeys catches up from the service with its own path.
    const late = member('car-9')
    const api = await platform.apiFor('car-9')
    await late.refresh(api)
    assert.equal(late.epoch(), 3)
    assert.equal(new TextDecoder().decode((await late.openBroadcast(next)).payload), 'lane 2 closed')
  })

  test('doors open on a broadcast command once; a replayed command is refused; the gateway reads nothing', async () => {
    const G = 'building-3-fire'
    const ids = [
      ...Array.from({ length: 6 }, (_, i) => `door-${i}`),
      ...Array.from({ length: 4 }, (_, i) => `smoke-${i}`),
    ]
    const { members, creds, agent } = await setupGroup(G, 'fire-panel-gw', ids)
    const command = await send(G, '{"cmd":"unlock","zone":"east"}')
    for (const m of members.values()) {
      const opened = await m.openBroadcast(command)
      assert.equal(new TextDecoder().decode(opened.payload), '{"cmd":"unlock","zone":"east"}')
      await refusedWith(m.openBroadcast(command), 'ERR_REPLAY')
    }
    const second = await send(G, '{"cmd":"lock"}')
    const door = members.get('door-0')!
    assert.equal((await door.openBroadcast(second)).seq, 1)
    await refusedWith(door.openBroadcast(command), 'ERR_REPLAY')
    // The gateway: its own credential opens no envelope, so it has no group key to decrypt with.
    const gwRing = createMemberKeyRing({
      groupId: G,
      memberId: 'fire-panel-gw',
      wrapKeyFor: (e) => memberWrapKey(creds.get('fire-panel-gw')!.bytes, G, e),
    })
    const rekey = await agent.rekeyEnvelopes()
    assert.deepEqual(await gwRing.accept(rekey.map((e) => e.jwe)), { opened: 0, rejected: 0 })
    const envelopesOfADoor = await agent.envelopesFor('door-3')
    assert.deepEqual(await gwRing.accept(envelopesOfADoor), { opened: 0, rejected: 0 })
  })
})
