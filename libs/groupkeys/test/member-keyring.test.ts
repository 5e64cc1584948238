/**
 * Key distribution end to end at the JWE level: the KMS side (tree + sealRekeyPlan), a
 * gateway that relays every envelope to everyone, and member key rings.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  createLkhTree,
  createMemberKeyRing,
  deriveMemberWrapKey,
  parseKid,
  sealRekeyPlan,
  type LkhTree,
  type MemberKeyRing,
  type RekeyPlan,
} from '../src/index.ts'
import { credentialOf, seededRandom } from './helpers.ts'

const GID = 'tenant-a/meters'
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function ringFor(memberId: string, groupId = GID): MemberKeyRing {
  return createMemberKeyRing({
    groupId,
    memberId,
    wrapKeyFor: (e) => deriveMemberWrapKey(credentialOf(memberId), groupId, e),
  })
}

function seal(tree: LkhTree, plan: RekeyPlan): string[] {
  return sealRekeyPlan(plan, {
    keyOf: (r) => tree.keyOf(r),
    memberWrapKey: (m, e) => deriveMemberWrapKey(credentialOf(m), GID, e),
    random: seededRandom(`iv-${plan.epoch}-${plan.envelopes.length}`),
  }).map((s) => s.jwe)
}

describe('member key rings', () => {
  test('join / leave sequence: members follow, leavers and the gateway fall behind, joiners see no past', async () => {
    const tree = createLkhTree({ groupId: GID, random: seededRandom('e2e') })
    const rings = new Map<string, MemberKeyRing>()
    const joinedAt = new Map<string, number>()
    const history: string[] = []
    const gateway = ringFor('gateway-1') // not a member: has no credential-derived key in any envelope
    const deliver = async (plan: RekeyPlan): Promise<void> => {
      const jwes = seal(tree, plan)
      history.push(...jwes)
      for (const r of rings.values()) await r.accept(jwes)
      assert.deepEqual(await gateway.accept(jwes), { opened: 0, rejected: 0 })
    }
    const initial = Array.from({ length: 12 }, (_, i) => `m${i}`)
    for (const m of initial) rings.set(m, ringFor(m))
    const first = tree.batch({ joins: initial })
    for (const m of initial) joinedAt.set(m, first.epoch)
    await deliver(first)

    const steps: ['join' | 'leave', string][] = [
      ['leave', 'm3'],
      ['join', 'n1'],
      ['leave', 'm7'],
      ['leave', 'm0'],
      ['join', 'n2'],
      ['join', 'n3'],
      ['leave', 'n1'],
    ]
    const left = new Set<string>()
    for (const [op, m] of steps) {
      if (op === 'join') rings.set(m, ringFor(m))
      const plan = op === 'join' ? tree.join(m) : tree.leave(m)
      if (op === 'join') joinedAt.set(m, plan.epoch)
      else left.add(m)
      await deliver(plan)
      const gk = tree.groupKey()!
      for (const [id, ring] of rings) {
        const held = ring.groupKey()
        if (left.has(id)) {
          assert.ok(held === undefined || held.epoch < plan.epoch, `${id} left but holds the new group key`)
          assert.notEqual(held && hex(held.key), hex(gk.key))
        } else {
          assert.equal(held?.epoch, plan.epoch, `${id} follows`)
          assert.equal(hex(held.key), hex(gk.key))
        }
      }
    }
    assert.equal(gateway.kids().length, 0)
    assert.equal(gateway.groupKey(), undefined)

    // A joiner given every envelope ever relayed still learns nothing older than its join.
    for (const id of ['n2', 'n3']) {
      const late = ringFor(id)
      await late.accept(history)
      assert.ok(late.kids().length > 0)
      for (const kid of late.kids()) assert.ok(parseKid(kid).version >= joinedAt.get(id)!, `${id} learned ${kid}`)
    }
    // A leaver given every envelope ever relayed never reaches the current group key.
    const former = ringFor('m3')
    await former.accept(history)
    assert.ok(former.groupKey()!.epoch < tree.epoch)
  })

  test('envelopes in any order, of other groups, and tampered ones', async () => {
    const tree = createLkhTree({ groupId: GID, random: seededRandom('order') })
    tree.batch({ joins: Array.from({ length: 9 }, (_, i) => `m${i}`) })
    const plan = tree.leave('m4')
    const jwes = seal(tree, plan)
    const ring = ringFor('m5')
    await ring.accept(seal(tree, tree.resync('m5')).reverse())
    const other = ringFor('m5', 'tenant-b/other')
    assert.deepEqual(await other.accept(jwes), { opened: 0, rejected: 0 })

    // Tamper with the envelope addressed to m5's own member key, deliver bottom-up reversed.
    const mine = jwes.findIndex((j) =>
      JSON.parse(Buffer.from(j.split('.')[0]!, 'base64url').toString()).kid.startsWith('member:m5#'),
    )
    assert.ok(mine >= 0, 'm4 leaving puts m5 directly under a rekeyed node')
    const tampered = [...jwes]
    const parts = tampered[mine]!.split('.')
    const tag = Buffer.from(parts[4]!, 'base64url')
    tag[0]! ^= 1
    parts[4] = tag.toString('base64url')
    tampered[mine] = parts.join('.')
    const fresh = ringFor('m5')
    const r = await fresh.accept([...tampered].reverse())
    assert.equal(r.rejected, 1)
    assert.equal(fresh.groupKey(), undefined)
    const result = await ring.accept([...jwes].reverse())
    assert.ok(result.opened >= 1)
    assert.equal(hex(ring.groupKey()!.key), hex(tree.groupKey()!.key))
  })

  test('a member that missed epochs catches up with a resync', async () => {
    const tree = createLkhTree({ groupId: GID, random: seededRandom('catchup') })
    tree.batch({ joins: Array.from({ length: 30 }, (_, i) => `m${i}`) })
    const sleeper = ringFor('m17')
    await sleeper.accept(seal(tree, tree.resync('m17')))
    const before = sleeper.groupKey()!.epoch
    for (const m of ['m1', 'm2', 'm16', 'm29']) tree.leave(m)
    assert.equal(sleeper.groupKey()!.epoch, before)
    await sleeper.accept(seal(tree, tree.resync('m17')))
    assert.equal(sleeper.groupKey()!.epoch, tree.epoch)
    assert.equal(hex(sleeper.groupKey()!.key), hex(tree.groupKey()!.key))
    for (const ref of tree.pathOf('m17')) assert.ok(sleeper.has(`${ref.id}#${ref.version}`))
  })
})
