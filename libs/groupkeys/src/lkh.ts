/**
 * Logical key hierarchy (RFC 2627; Wong, Gouda, Lam, "Secure group communications using key
 * graphs", 1998): members sit at the leaves of a tree of arity k, each member holds the keys
 * of the nodes on its path, and the root key is the group key. A join or leave replaces the
 * keys on one path only, so it costs about k·log_k(n) envelopes instead of n.
 *
 * Layout (docs/groups-protocol.md §5): node (level, position) with leaves at level 0 and
 * parent (level + 1, floor(position / k)). Ids never change when the tree grows: growth
 * adds a level on top, and the old root becomes the first child of the new one. A node has
 * a key ("keyed") when it is the root of a non-empty group or has at least two non-empty
 * children; any other node is transparent and stands for the key of its only non-empty
 * child, so sparse trees cost no more than dense ones. Node key versions are the epoch of
 * their last rekey; the epoch grows by one per change.
 *
 * Pure: no I/O, randomness injected. Key bytes live in this object because in the service it
 * runs inside the KMS secure environment (see README "Trust boundary").
 */
import { bytesToBase64Url, base64UrlToBytes } from '@m2msec/crypto'
import { invalidArgument, M2msecError, notFound } from '@m2msec/errors'
import { assertCount, assertId } from './encoding.ts'
import {
  memberKeyId,
  memberOfKeyId,
  nodeKeyId,
  type EnvelopeSpec,
  type KeyRef,
  type NewKey,
  type RandomSource,
  type RekeyPlan,
} from './key-ids.ts'

/** Binary trees need the fewest envelopes per leave among small arities (≈ 2·log2 n). */
export const DEFAULT_ARITY = 2

/** The arity of a flat group: one level, every member directly under the group key. */
export const FLAT_ARITY = 2 ** 32

const KEY_LENGTH = 32

/** Options of {@link createLkhTree}. */
export interface LkhOptions {
  readonly groupId: string
  /** Children per node, 2..2^32 (default 2). {@link FLAT_ARITY} gives the flat baseline. */
  readonly arity?: number
  /** Source of node keys; must return exactly the requested number of fresh random bytes. */
  readonly random: RandomSource
}

/** One membership change applied as one rekey. */
export interface MembershipChange {
  readonly joins?: readonly string[]
  readonly leaves?: readonly string[]
}

/**
 * Serializable tree structure (JSON-safe, no key bytes): what the service stores in its
 * groups KV bucket. `slots[i]` is the member at leaf i (null when free); `nodes` lists the
 * keyed nodes as [level, position, version].
 */
export interface LkhState {
  readonly v: 1
  readonly groupId: string
  readonly arity: number
  readonly height: number
  readonly epoch: number
  readonly slots: readonly (string | null)[]
  readonly nodes: readonly (readonly [number, number, number])[]
}

/** Serialized node keys: [level, position, version, base64url key]. Secret: the KMS seals it. */
export interface LkhSecrets {
  readonly v: 1
  readonly groupId: string
  readonly epoch: number
  readonly keys: readonly (readonly [number, number, number, string])[]
}

/** A logical key hierarchy for one group. Create with {@link createLkhTree}. */
export interface LkhTree {
  readonly groupId: string
  readonly arity: number
  /** Levels above the leaves (the root is at this level). */
  readonly height: number
  /** Number of changes applied so far; 0 for a tree that never had a member. */
  readonly epoch: number
  /** Current number of members. */
  readonly size: number
  has(memberId: string): boolean
  members(): string[]
  /** The group key of the current epoch, or undefined when the group is empty. */
  groupKey(): NewKey | undefined
  /** Bytes of a node key at its current version; ERR_KEY_VERSION_NOT_FOUND for any other. */
  keyOf(ref: KeyRef): Uint8Array
  /** The node keys a member holds now, bottom-up (the last one is the group key). */
  pathOf(memberId: string): KeyRef[]
  /** Adds one member: a new epoch whose keys the joiner alone cannot use to read the past. */
  join(memberId: string): RekeyPlan
  /** Removes one member: a new epoch none of whose keys the leaver can obtain. */
  leave(memberId: string): RekeyPlan
  /**
   * Leaves then joins, all in one epoch (one rekey for the union of the paths). An invalid
   * change (ERR_INVALID_ARGUMENT, ERR_NOT_FOUND, ERR_ALREADY_EXISTS) leaves the tree unchanged;
   * after ERR_INTERNAL (a broken random source) reload the tree from its stored state.
   */
  batch(change: MembershipChange): RekeyPlan
  /** Envelopes that hand one member its whole current path again (after missed epochs). */
  resync(memberId: string): RekeyPlan
  /** The structure (store as is) and the node keys (seal before storing). */
  toState(): { state: LkhState; secrets: LkhSecrets }
}

/** Min-heap of free leaf slots, so joins fill the leftmost hole and the tree stays dense. */
class SlotHeap {
  readonly #a: number[] = []
  get size(): number {
    return this.#a.length
  }
  push(v: number): void {
    const a = this.#a
    let i = a.push(v) - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (a[parent]! <= v) break
      a[i] = a[parent]!
      i = parent
    }
    a[i] = v
  }
  pop(): number | undefined {
    const a = this.#a
    const top = a[0]
    const last = a.pop()
    if (a.length === 0 || last === undefined) return top
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= a.length) break
      const r = l + 1
      const c = r < a.length && a[r]! < a[l]! ? r : l
      if (a[c]! >= last) break
      a[i] = a[c]!
      i = c
    }
    a[i] = last
    return top
  }
}

const NODE_ID_RE = /^node:([1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,15})$/

class Tree implements LkhTree {
  readonly groupId: string
  readonly arity: number
  readonly #random: RandomSource
  #height = 1
  #capacity: number
  #epoch = 0
  /** Leaf slots; the length is the high-water mark of slots ever used. */
  readonly #slots: (string | undefined)[] = []
  readonly #slotOf = new Map<string, number>()
  readonly #free = new SlotHeap()
  /** Per level ≥ 1: members below each node. */
  readonly #count: number[][] = [[], []]
  /** Per level ≥ 1: key version, 0 for a transparent (unkeyed) node. */
  readonly #version: number[][] = [[], []]
  readonly #key: (Uint8Array | undefined)[][] = [[], []]

  constructor(groupId: string, arity: number, random: RandomSource) {
    this.groupId = groupId
    this.arity = arity
    this.#random = random
    this.#capacity = arity
  }

  get height(): number {
    return this.#height
  }
  get epoch(): number {
    return this.#epoch
  }
  get size(): number {
    return this.#slotOf.size
  }

  has(memberId: string): boolean {
    return this.#slotOf.has(memberId)
  }

  members(): string[] {
    return this.#slots.filter((m): m is string => m !== undefined)
  }

  groupKey(): NewKey | undefined {
    const v = this.#versionAt(this.#height, 0)
    const key = this.#key[this.#height]?.[0]
    if (v === 0 || key === undefined) return undefined
    return { ref: { id: nodeKeyId(this.#height, 0), version: v }, key }
  }

  keyOf(ref: KeyRef): Uint8Array {
    const m = typeof ref?.id === 'string' ? NODE_ID_RE.exec(ref.id) : null
    if (m === null) throw notFound('ERR_KEY_NOT_FOUND', 'not a node key of this tree')
    const level = Number(m[1])
    const position = Number(m[2])
    const key = this.#key[level]?.[position]
    if (key === undefined || level > this.#height || this.#versionAt(level, position) !== ref.version) {
      throw notFound('ERR_KEY_VERSION_NOT_FOUND', 'node key version is not current', {
        keyId: ref.id,
        version: ref.version,
      })
    }
    return key
  }

  pathOf(memberId: string): KeyRef[] {
    const out: KeyRef[] = []
    let p = this.#slotFor(memberId)
    for (let l = 1; l <= this.#height; l++) {
      p = Math.floor(p / this.arity)
      const v = this.#versionAt(l, p)
      if (v > 0) out.push({ id: nodeKeyId(l, p), version: v })
    }
    return out
  }

  join(memberId: string): RekeyPlan {
    return this.batch({ joins: [memberId] })
  }

  leave(memberId: string): RekeyPlan {
    return this.batch({ leaves: [memberId] })
  }

  batch(change: MembershipChange): RekeyPlan {
    const joins = [...(change.joins ?? [])]
    const leaves = [...(change.leaves ?? [])]
    this.#validateChange(joins, leaves)
    const epoch = this.#epoch + 1
    const k = this.arity
    const affected: Set<number>[] = []
    const slotChanges: { slot: number; member: string | null }[] = []
    const touch = (slot: number, delta: number): void => {
      let p = slot
      for (let l = 1; l <= this.#height; l++) {
        p = Math.floor(p / k)
        const counts = this.#count[l]!
        counts[p] = (counts[p] ?? 0) + delta
        ;(affected[l] ??= new Set()).add(p)
      }
    }
    for (const m of leaves) {
      const slot = this.#slotFor(m)
      this.#slots[slot] = undefined
      this.#slotOf.delete(m)
      this.#free.push(slot)
      touch(slot, -1)
      slotChanges.push({ slot, member: null })
    }
    for (const m of joins) {
      const slot = this.#allocate(affected)
      this.#slots[slot] = m
      this.#slotOf.set(m, slot)
      touch(slot, +1)
      slotChanges.push({ slot, member: m })
    }

    const newKeys: NewKey[] = []
    const droppedKeys: KeyRef[] = []
    const rekeyed: (readonly [number, number])[] = []
    for (let l = 1; l <= this.#height; l++) {
      const positions = [...(affected[l] ?? [])].sort((a, b) => a - b)
      for (const p of positions) {
        const old = this.#versionAt(l, p)
        if (this.#keyedByShape(l, p)) {
          const key = this.#random(KEY_LENGTH)
          if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
            // The tree is half-updated now; the caller must reload it from its stored state.
            throw new M2msecError('ERR_INTERNAL', 'random source returned the wrong number of bytes')
          }
          this.#version[l]![p] = epoch
          this.#key[l]![p] = key
          newKeys.push({ ref: { id: nodeKeyId(l, p), version: epoch }, key })
          rekeyed.push([l, p])
        } else if (old > 0) {
          droppedKeys.push({ id: nodeKeyId(l, p), version: old })
          this.#version[l]![p] = 0
          this.#key[l]![p] = undefined
        }
      }
    }
    this.#epoch = epoch

    const envelopes: EnvelopeSpec[] = []
    for (const [l, p] of rekeyed) {
      const wrapped = { id: nodeKeyId(l, p), version: epoch }
      const groupKey = l === this.#height && p === 0
      const [first, end] = this.#children(l, p)
      for (let c = first; c < end; c++) {
        if (this.#membersBelow(l - 1, c) === 0) continue
        const wrappingKey = this.#effectiveRef(l - 1, c, epoch)
        const member = memberOfKeyId(wrappingKey.id)
        const recipient =
          member === undefined ? { kind: 'node' as const, node: wrappingKey.id } : { kind: 'member' as const, member }
        envelopes.push({ wrapped, wrappingKey, recipient, groupKey })
      }
    }
    return {
      groupId: this.groupId,
      epoch,
      groupKey: this.groupKey()?.ref,
      joined: joins,
      left: leaves,
      newKeys,
      droppedKeys,
      envelopes,
      slotChanges,
    }
  }

  resync(memberId: string): RekeyPlan {
    let p = this.#slotFor(memberId)
    let below: KeyRef = { id: memberKeyId(memberId), version: this.#epoch }
    const envelopes: EnvelopeSpec[] = []
    for (let l = 1; l <= this.#height; l++) {
      p = Math.floor(p / this.arity)
      const v = this.#versionAt(l, p)
      if (v === 0) continue
      const wrapped = { id: nodeKeyId(l, p), version: v }
      envelopes.push({
        wrapped,
        wrappingKey: below,
        recipient: { kind: 'member', member: memberId },
        groupKey: l === this.#height,
      })
      below = wrapped
    }
    return {
      groupId: this.groupId,
      epoch: this.#epoch,
      groupKey: this.groupKey()?.ref,
      joined: [],
      left: [],
      newKeys: [],
      droppedKeys: [],
      envelopes,
      slotChanges: [],
    }
  }

  toState(): { state: LkhState; secrets: LkhSecrets } {
    const nodes: [number, number, number][] = []
    const keys: [number, number, number, string][] = []
    for (let l = 1; l <= this.#height; l++) {
      const versions = this.#version[l]!
      for (let p = 0; p < versions.length; p++) {
        const v = versions[p] ?? 0
        const key = this.#key[l]![p]
        if (v === 0 || key === undefined) continue
        nodes.push([l, p, v])
        keys.push([l, p, v, bytesToBase64Url(key)])
      }
    }
    return {
      state: {
        v: 1,
        groupId: this.groupId,
        arity: this.arity,
        height: this.#height,
        epoch: this.#epoch,
        slots: this.#slots.map((m) => m ?? null),
        nodes,
      },
      secrets: { v: 1, groupId: this.groupId, epoch: this.#epoch, keys },
    }
  }

  /** Loads a stored state; every inconsistency is ERR_INVALID_ARGUMENT. */
  load(state: LkhState, secrets: LkhSecrets): void {
    const bad = (what: string): M2msecError => invalidArgument(`stored group state is inconsistent: ${what}`)
    if (!Number.isSafeInteger(state.height) || state.height < 1 || state.height > 64) throw bad('height')
    if (!Array.isArray(state.slots) || !Array.isArray(state.nodes)) throw bad('shape')
    const capacity = this.arity ** state.height
    const below = this.arity ** (state.height - 1)
    if (state.slots.length > capacity || (state.height > 1 && state.slots.length <= below)) throw bad('height')
    assertCount(state.epoch, 'epoch')
    if (secrets.v !== 1 || secrets.groupId !== state.groupId || secrets.epoch !== state.epoch) throw bad('secrets')
    this.#height = state.height
    this.#capacity = capacity
    this.#epoch = state.epoch
    for (let l = 2; l <= this.#height; l++) {
      this.#count[l] = []
      this.#version[l] = []
      this.#key[l] = []
    }
    state.slots.forEach((m, slot) => {
      if (m === null) {
        this.#slots.push(undefined)
        this.#free.push(slot)
        return
      }
      assertId(m, 'slots[]')
      if (this.#slotOf.has(m)) throw bad('duplicate member')
      this.#slots.push(m)
      this.#slotOf.set(m, slot)
      let p = slot
      for (let l = 1; l <= this.#height; l++) {
        p = Math.floor(p / this.arity)
        const counts = this.#count[l]!
        counts[p] = (counts[p] ?? 0) + 1
      }
    })
    const keyed = new Map<string, number>()
    for (const entry of state.nodes) {
      const [l, p, v] = entry
      if (!this.#validNode(l, p) || !Number.isSafeInteger(v) || v < 1 || v > this.#epoch) throw bad('node')
      keyed.set(`${l}.${p}`, v)
      this.#version[l]![p] = v
    }
    if (!Array.isArray(secrets.keys) || secrets.keys.length !== keyed.size) throw bad('secrets')
    for (const [l, p, v, b64] of secrets.keys) {
      if (keyed.get(`${l}.${p}`) !== v || typeof b64 !== 'string') throw bad('secrets')
      const key = base64UrlToBytes(b64)
      if (key.length !== KEY_LENGTH) throw bad('key length')
      this.#key[l]![p] = key
    }
    // Every node must be keyed exactly when its shape says so.
    for (let l = 1; l <= this.#height; l++) {
      const width = this.#levelWidth(l)
      for (let p = 0; p < width; p++) {
        if (this.#keyedByShape(l, p) !== this.#versionAt(l, p) > 0) throw bad(`node ${l}.${p}`)
      }
    }
  }

  #validNode(l: unknown, p: unknown): l is number {
    return (
      Number.isSafeInteger(l) &&
      Number.isSafeInteger(p) &&
      (l as number) >= 1 &&
      (l as number) <= this.#height &&
      (p as number) >= 0 &&
      (p as number) < this.#levelWidth(l as number)
    )
  }

  #validateChange(joins: string[], leaves: string[]): void {
    if (joins.length === 0 && leaves.length === 0) {
      throw invalidArgument('a membership change needs at least one join or leave', { field: 'change' })
    }
    const seen = new Set<string>()
    for (const m of [...joins, ...leaves]) {
      assertId(m, 'memberId')
      if (seen.has(m)) throw invalidArgument('a member appears twice in one change', { field: 'memberId' })
      seen.add(m)
    }
    for (const m of leaves) {
      if (!this.#slotOf.has(m)) throw notFound('ERR_NOT_FOUND', 'member is not in the group', { field: 'leaves' })
    }
    for (const m of joins) {
      if (this.#slotOf.has(m)) {
        throw new M2msecError('ERR_ALREADY_EXISTS', 'member is already in the group', { field: 'joins' })
      }
    }
  }

  #slotFor(memberId: string): number {
    const slot = this.#slotOf.get(memberId)
    if (slot === undefined) throw notFound('ERR_NOT_FOUND', 'member is not in the group')
    return slot
  }

  /** A free leaf slot: the leftmost hole, else the next unused slot, else one level more. */
  #allocate(affected: Set<number>[]): number {
    const hole = this.#free.pop()
    if (hole !== undefined) return hole
    if (this.#slots.length >= this.#capacity) {
      const top = this.#height
      this.#height = top + 1
      this.#capacity = this.arity ** this.#height
      this.#count[top + 1] = [this.#count[top]![0] ?? 0]
      this.#version[top + 1] = []
      this.#key[top + 1] = []
      // Growth happens only when every slot is taken, so the old root has ≥ 2 non-empty
      // children and keeps its key; should that ever not hold, rekey it with the rest.
      if (!this.#keyedByShape(top, 0) && this.#versionAt(top, 0) > 0) (affected[top] ??= new Set()).add(0)
    }
    this.#slots.push(undefined)
    return this.#slots.length - 1
  }

  #versionAt(l: number, p: number): number {
    return this.#version[l]?.[p] ?? 0
  }

  #levelWidth(l: number): number {
    return Math.ceil(this.#slots.length / this.arity ** l)
  }

  #membersBelow(l: number, p: number): number {
    if (l === 0) return this.#slots[p] === undefined ? 0 : 1
    return this.#count[l]?.[p] ?? 0
  }

  /** Child positions [first, end) at level l - 1 that exist. */
  #children(l: number, p: number): [number, number] {
    const first = p * this.arity
    return [first, Math.min(first + this.arity, this.#levelWidth(l - 1))]
  }

  #keyedByShape(l: number, p: number): boolean {
    if (l === this.#height && p === 0) return this.#membersBelow(l, p) > 0
    const [first, end] = this.#children(l, p)
    let nonEmpty = 0
    for (let c = first; c < end && nonEmpty < 2; c++) if (this.#membersBelow(l - 1, c) > 0) nonEmpty++
    return nonEmpty >= 2
  }

  /** The key that stands for node (l, p): its own, or that of its only non-empty descendant. */
  #effectiveRef(l: number, p: number, epoch: number): KeyRef {
    while (l > 0 && this.#versionAt(l, p) === 0) {
      const [first, end] = this.#children(l, p)
      let next = first
      while (next < end && this.#membersBelow(l - 1, next) === 0) next++
      p = next
      l--
    }
    if (l === 0) return { id: memberKeyId(this.#slots[p]!), version: epoch }
    return { id: nodeKeyId(l, p), version: this.#versionAt(l, p) }
  }
}

function checkOptions(options: LkhOptions): number {
  assertId(options.groupId, 'groupId')
  const arity = options.arity ?? DEFAULT_ARITY
  if (!Number.isSafeInteger(arity) || arity < 2 || arity > FLAT_ARITY) {
    throw invalidArgument('arity must be an integer in 2..2^32', { field: 'arity' })
  }
  if (typeof options.random !== 'function') throw invalidArgument('random must be a function', { field: 'random' })
  return arity
}

/**
 * Creates an empty tree. Add the initial members with one `batch({ joins })`, which yields
 * the envelopes of the first distribution.
 *
 * @example
 * ```ts
 * const tree = createLkhTree({ groupId: 'tenant-a/meters', random: randomBytes })
 * const first = tree.batch({ joins: ['m1', 'm2', 'm3'] })
 * const plan = tree.leave('m2') // plan.envelopes: about 2·log2(n)
 * ```
 */
export function createLkhTree(options: LkhOptions): LkhTree {
  const arity = checkOptions(options)
  return new Tree(options.groupId, arity, options.random)
}

/**
 * Creates the flat baseline: a one-level tree, so every rekey wraps the new group key under
 * each member's own key (n envelopes per join, n − 1 per leave).
 *
 * @example
 * ```ts
 * const flat = createFlatGroup({ groupId: 'g', random: randomBytes })
 * ```
 */
export function createFlatGroup(options: Omit<LkhOptions, 'arity'>): LkhTree {
  return createLkhTree({ ...options, arity: FLAT_ARITY })
}

/**
 * Rebuilds a tree from {@link LkhTree.toState} output; ERR_INVALID_ARGUMENT when the two
 * parts do not match or break an invariant (costs O(n)).
 *
 * @example
 * ```ts
 * const { state, secrets } = tree.toState()
 * const again = restoreLkhTree(state, secrets, { random: randomBytes })
 * ```
 */
export function restoreLkhTree(state: LkhState, secrets: LkhSecrets, options: { random: RandomSource }): LkhTree {
  if (typeof state !== 'object' || state === null || state.v !== 1 || typeof secrets !== 'object' || secrets === null) {
    throw invalidArgument('stored group state has an unknown format', { field: 'state' })
  }
  const arity = checkOptions({ groupId: state.groupId, arity: state.arity, random: options.random })
  const tree = new Tree(state.groupId, arity, options.random)
  tree.load(state, secrets)
  return tree
}
