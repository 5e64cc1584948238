/**
 * Logical key hierarchy: secrecy properties and envelope counts, checked on the rekey plans
 * with a model of what each (current or former) member can learn from them. The JWE layer
 * is exercised in member-keyring.test.ts.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  createFlatGroup,
  createLkhTree,
  formatKid,
  memberKeyId,
  parseKid,
  restoreLkhTree,
  type KeyRef,
  type LkhTree,
  type RekeyPlan,
} from '../src/index.ts'
import { seededInt, seededRandom } from './helpers.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** What every entity ever in the group knows: kid -> key (hex). Members derive their own member keys. */
class Knowledge {
  readonly known = new Map<string, Map<string, string>>()

  of(member: string): Map<string, string> {
    let mine = this.known.get(member)
    if (mine === undefined) {
      mine = new Map()
      this.known.set(member, mine)
    }
    return mine
  }

  /** One bottom-up pass per entity: the plan's order must be enough. */
  apply(plan: RekeyPlan, everyone: Iterable<string>, keyOf?: (ref: KeyRef) => Uint8Array): void {
    const fresh = new Map(plan.newKeys.map((k) => [formatKid(k.ref), hex(k.key)]))
    for (const m of everyone) {
      const mine = this.of(m)
      for (const e of plan.envelopes) {
        if (e.wrappingKey.id !== memberKeyId(m) && !mine.has(formatKid(e.wrappingKey))) continue
        const kid = formatKid(e.wrapped)
        const value = fresh.get(kid) ?? (keyOf === undefined ? undefined : hex(keyOf(e.wrapped)))
        assert.ok(value !== undefined, `plan must carry ${kid}`)
        mine.set(kid, value)
      }
    }
  }
}

function allKeyedKids(tree: LkhTree): string[] {
  return tree.toState().state.nodes.map(([l, p, v]) => `node:${l}.${p}#${v}`)
}

/** Checks the invariants after one plan; returns nothing, asserts everything. */
function checkPlan(tree: LkhTree, plan: RekeyPlan, know: Knowledge, joinedAt: Map<string, number>): void {
  const members = new Set(tree.members())
  assert.equal(plan.epoch, tree.epoch)
  for (const e of plan.envelopes) {
    assert.equal(e.wrapped.version, plan.epoch, 'envelopes carry only keys of this epoch')
    assert.equal(e.recipient.kind === 'member', e.wrappingKey.id.startsWith('member:'))
    if (e.recipient.kind === 'member') {
      assert.ok(members.has(e.recipient.member), 'no envelope to a non-member')
      assert.equal(e.wrappingKey.version, plan.epoch)
    }
  }
  const gk = tree.groupKey()
  if (members.size === 0) {
    assert.equal(gk, undefined)
    assert.equal(plan.groupKey, undefined)
    return
  }
  assert.ok(gk !== undefined && plan.groupKey !== undefined)
  assert.deepEqual(plan.groupKey, gk.ref)
  assert.equal(gk.ref.version, plan.epoch, 'the group key changes on every change')
  const current = new Set(allKeyedKids(tree))
  for (const m of members) {
    const mine = know.of(m)
    assert.equal(mine.get(formatKid(gk.ref)), hex(gk.key), `${m} derives the new group key`)
    for (const ref of tree.pathOf(m)) assert.ok(mine.has(formatKid(ref)), `${m} holds its whole path`)
    // Backward secrecy: nothing a member knows predates its join.
    const since = joinedAt.get(m)!
    for (const kid of mine.keys()) assert.ok(parseKid(kid).version >= since, `${m} knows ${kid} from before it joined`)
  }
  for (const [m, mine] of know.known) {
    if (members.has(m)) continue
    // Forward secrecy: a former member holds no key that is still in use.
    for (const kid of mine.keys()) assert.ok(!current.has(kid), `former member ${m} still holds ${kid}`)
  }
}

function randomRun(arity: number, seed: number, steps: number): { maxRatio: number } {
  const tree = createLkhTree({ groupId: 'g', arity, random: seededRandom(`run-${seed}`) })
  const pick = seededInt(seed)
  const know = new Knowledge()
  const joinedAt = new Map<string, number>()
  const everyone = new Set<string>()
  let next = 0
  let peak = 0
  let maxRatio = 0
  for (let step = 0; step < steps; step++) {
    const members = tree.members()
    const r = pick(10)
    let plan: RekeyPlan
    if (members.length < 2 || r < 4) {
      const id = `m${next++}`
      everyone.add(id)
      plan = tree.join(id)
      joinedAt.set(id, plan.epoch)
    } else if (r < 8) {
      plan = tree.leave(members[pick(members.length)]!)
    } else {
      const leaves = [...new Set(Array.from({ length: 1 + pick(4) }, () => members[pick(members.length)]!))]
      const joins = Array.from({ length: pick(3) }, () => `m${next++}`)
      for (const j of joins) everyone.add(j)
      plan = tree.batch({ joins, leaves })
      for (const j of joins) joinedAt.set(j, plan.epoch)
    }
    peak = Math.max(peak, tree.size)
    know.apply(plan, everyone)
    checkPlan(tree, plan, know, joinedAt)
    if (plan.joined.length + plan.left.length !== 1) continue
    assert.ok(plan.envelopes.length <= arity * tree.height, 'at most arity envelopes per rekeyed node')
    if (arity === 2 && peak >= 2) {
      const ratio = plan.envelopes.length / (2 * Math.log2(peak) + 2)
      assert.ok(ratio <= 1, `${plan.envelopes.length} envelopes with peak ${peak}`)
      maxRatio = Math.max(maxRatio, ratio)
    }
  }
  return { maxRatio }
}

describe('LKH secrecy properties over random join / leave / batch sequences', () => {
  test('binary tree, 400 changes', () => {
    randomRun(2, 1, 400)
  })
  test('ternary tree, 250 changes', () => {
    randomRun(3, 2, 250)
  })
  test('arity 4, 250 changes', () => {
    randomRun(4, 3, 250)
  })
  test('flat group, 120 changes', () => {
    const tree = createFlatGroup({ groupId: 'g', random: seededRandom('flat') })
    const pick = seededInt(9)
    const know = new Knowledge()
    const joinedAt = new Map<string, number>()
    const everyone = new Set<string>()
    for (let step = 0, next = 0; step < 120; step++) {
      const members = tree.members()
      let plan: RekeyPlan
      if (members.length < 2 || pick(2) === 0) {
        const id = `m${next++}`
        everyone.add(id)
        plan = tree.join(id)
        joinedAt.set(id, plan.epoch)
      } else {
        plan = tree.leave(members[pick(members.length)]!)
      }
      know.apply(plan, everyone)
      checkPlan(tree, plan, know, joinedAt)
    }
  })
})

describe('LKH envelope counts', () => {
  test('dense binary trees: every join and every leave within 2·log2(n) + 2 (n = 2..130)', () => {
    const tree = createLkhTree({ groupId: 'g', random: seededRandom('dense') })
    tree.join('m0')
    let fresh = 0
    for (let n = 2; n <= 130; n++) {
      const joined = tree.join(`m${n - 1}`)
      assert.ok(joined.envelopes.length <= 2 * Math.log2(n) + 2, `join to ${n}: ${joined.envelopes.length}`)
      for (const m of tree.members()) {
        const left = tree.leave(m)
        assert.ok(left.envelopes.length <= 2 * Math.log2(n) + 2, `leave from ${n}: ${left.envelopes.length}`)
        const back = tree.join(`r${fresh++}`) // fills the hole: the tree stays dense
        assert.ok(back.envelopes.length <= 2 * Math.log2(n) + 2)
      }
    }
  })

  test('flat baseline: n envelopes per join, n − 1 per leave', () => {
    const flat = createFlatGroup({ groupId: 'g', random: seededRandom('flat-count') })
    for (let n = 1; n <= 50; n++) assert.equal(flat.join(`m${n}`).envelopes.length, n)
    assert.equal(flat.leave('m7').envelopes.length, 49)
    assert.equal(flat.height, 1)
  })

  test('a batch of 11 leaves costs one rekey, below 11 single leaves', () => {
    const ids = Array.from({ length: 256 }, (_, i) => `m${i}`)
    const a = createLkhTree({ groupId: 'g', random: seededRandom('batch-a') })
    const b = createLkhTree({ groupId: 'g', random: seededRandom('batch-b') })
    a.batch({ joins: ids })
    b.batch({ joins: ids })
    const leaving = ids.filter((_, i) => i % 25 === 3)
    const batch = a.batch({ leaves: leaving })
    const singles = leaving.map((m) => b.leave(m).envelopes.length).reduce((x, y) => x + y, 0)
    assert.equal(batch.epoch, 2)
    assert.equal(batch.left.length, 11)
    assert.ok(batch.envelopes.length < singles, `${batch.envelopes.length} vs ${singles}`)
    const know = new Knowledge()
    know.apply(batch, ids)
    const current = new Set(allKeyedKids(a))
    for (const m of leaving) for (const kid of know.of(m).keys()) assert.ok(!current.has(kid))
  })

  test('the first distribution reaches every member; a 2-member tree grows by one level on the 3rd join', () => {
    const tree = createLkhTree({ groupId: 'g', random: seededRandom('grow') })
    tree.batch({ joins: ['a', 'b'] })
    const before = tree.toState().state
    assert.equal(before.height, 1)
    const rootKey = tree.groupKey()!
    const plan = tree.join('c')
    assert.equal(tree.height, 2)
    // The old root stays keyed (same key, now node 1.0) and wraps the new root for a and b.
    assert.deepEqual(tree.keyOf({ id: 'node:1.0', version: rootKey.ref.version }), rootKey.key)
    assert.deepEqual(
      plan.envelopes.map((e) => `${formatKid(e.wrapped)}<${formatKid(e.wrappingKey)}`),
      ['node:2.0#2<node:1.0#1', 'node:2.0#2<member:c#2'],
    )
  })
})

describe('LKH state, resync and errors', () => {
  test('toState → JSON → restoreLkhTree continues with identical plans', () => {
    const ids = Array.from({ length: 37 }, (_, i) => `//sp.example/cse1/Cm${i}`)
    const a = createLkhTree({ groupId: 'tenant/g', random: seededRandom('state') })
    a.batch({ joins: ids })
    a.leave(ids[5]!)
    a.leave(ids[20]!)
    const { state, secrets } = a.toState()
    const b = restoreLkhTree(JSON.parse(JSON.stringify(state)), JSON.parse(JSON.stringify(secrets)), {
      random: seededRandom('after'),
    })
    const a2 = restoreLkhTree(state, secrets, { random: seededRandom('after') })
    assert.deepEqual(b.toState(), a2.toState())
    assert.equal(b.epoch, 3)
    assert.equal(b.size, 35)
    const p1 = a2.join('new')
    const p2 = b.join('new')
    assert.deepEqual(p1, p2)
    assert.deepEqual(b.leave(ids[0]!).envelopes, a2.leave(ids[0]!).envelopes)
  })

  test('restoreLkhTree rejects inconsistent state with ERR_INVALID_ARGUMENT', () => {
    const tree = createLkhTree({ groupId: 'g', random: seededRandom('bad') })
    tree.batch({ joins: ['a', 'b', 'c', 'd', 'e'] })
    const { state, secrets } = tree.toState()
    const random = seededRandom('x')
    const cases: [string, () => unknown][] = [
      ['duplicate member', () => restoreLkhTree({ ...state, slots: ['a', 'a', 'c', 'd', 'e'] }, secrets, { random })],
      ['missing node', () => restoreLkhTree({ ...state, nodes: state.nodes.slice(1) }, secrets, { random })],
      ['epoch mismatch', () => restoreLkhTree(state, { ...secrets, epoch: 9 }, { random })],
      ['other group', () => restoreLkhTree(state, { ...secrets, groupId: 'h' }, { random })],
      [
        'short key',
        () =>
          restoreLkhTree(
            state,
            { ...secrets, keys: secrets.keys.map((k) => [k[0], k[1], k[2], 'AAAA'] as const) },
            { random },
          ),
      ],
      ['height too small', () => restoreLkhTree({ ...state, height: 2 }, secrets, { random })],
      ['shape', () => restoreLkhTree({ ...state, slots: ['a', null, 'c', 'd', 'e'] }, secrets, { random })],
      ['arity', () => restoreLkhTree({ ...state, arity: 1 }, secrets, { random })],
      ['version', () => restoreLkhTree({ ...state, v: 2 as 1 }, secrets, { random })],
    ]
    for (const [name, run] of cases) assert.throws(run, { code: 'ERR_INVALID_ARGUMENT' }, name)
  })

  test('resync hands a member that missed epochs its whole current path', () => {
    const tree = createLkhTree({ groupId: 'g', random: seededRandom('resync') })
    const ids = Array.from({ length: 20 }, (_, i) => `m${i}`)
    tree.batch({ joins: ids })
    for (let i = 0; i < 5; i++) tree.leave(ids[i * 3]!)
    const plan = tree.resync('m10')
    assert.equal(plan.epoch, tree.epoch)
    assert.equal(plan.newKeys.length, 0)
    const know = new Knowledge()
    know.apply(plan, ['m10', 'm11'], (r) => tree.keyOf(r))
    assert.equal(know.of('m10').get(formatKid(tree.groupKey()!.ref)), hex(tree.groupKey()!.key))
    assert.equal(know.of('m11').size, 0, 'a resync is for one member only')
  })

  test('a group can empty out and start again', () => {
    const tree = createLkhTree({ groupId: 'g', random: seededRandom('empty') })
    tree.batch({ joins: ['a', 'b', 'c'] })
    const plan = tree.batch({ leaves: ['a', 'b', 'c'] })
    assert.equal(plan.groupKey, undefined)
    assert.equal(plan.envelopes.length, 0)
    assert.equal(tree.groupKey(), undefined)
    assert.equal(tree.toState().state.nodes.length, 0)
    const again = tree.join('d')
    assert.equal(again.envelopes.length, 1)
    assert.equal(again.envelopes[0]!.wrappingKey.id, 'member:d')
  })

  test('bad changes fail with a code and change nothing', () => {
    const tree = createLkhTree({ groupId: 'g', random: seededRandom('errors') })
    tree.batch({ joins: ['a', 'b', 'c'] })
    const before = JSON.stringify(tree.toState())
    assert.throws(() => tree.join('a'), { code: 'ERR_ALREADY_EXISTS' })
    assert.throws(() => tree.leave('zz'), { code: 'ERR_NOT_FOUND' })
    assert.throws(() => tree.batch({}), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => tree.batch({ joins: ['x', 'x'] }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => tree.batch({ joins: ['a'], leaves: ['a'] }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => tree.batch({ joins: ['ok', ''] }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => tree.batch({ joins: ['y'], leaves: ['nope'] }), { code: 'ERR_NOT_FOUND' })
    assert.equal(JSON.stringify(tree.toState()), before)
    assert.throws(() => tree.keyOf({ id: 'node:1.0', version: 0 }), { code: 'ERR_KEY_VERSION_NOT_FOUND' })
    assert.throws(() => tree.keyOf({ id: 'member:a', version: 1 }), { code: 'ERR_KEY_NOT_FOUND' })
    assert.throws(() => tree.pathOf('zz'), { code: 'ERR_NOT_FOUND' })
    assert.throws(() => createLkhTree({ groupId: 'g', arity: 1, random: seededRandom('') }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    assert.throws(() => createLkhTree({ groupId: '', random: seededRandom('') }), { code: 'ERR_INVALID_ARGUMENT' })
  })

  test('a random source returning the wrong length is an internal error', () => {
    const tree = createLkhTree({ groupId: 'g', random: () => new Uint8Array(3) })
    assert.throws(() => tree.join('a'), { code: 'ERR_INTERNAL' })
  })
})
