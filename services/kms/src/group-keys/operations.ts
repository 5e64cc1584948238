/**
 * The KMS group key operations (proto m2msec.kms.v1.GroupKeys, docs/groups-protocol.md): the
 * logical key hierarchy of `@m2msec/groupkeys` runs here, inside the KMS, over node keys that
 * are generated here and stored sealed; member wrap and authentication keys are derived in
 * the secure environment of each member's credential. Callers receive JWE envelopes, subset
 * queries, verdicts and confirmation tags: never a group key, node key or session key.
 *
 * Every operation needs the tenant admin role (platform services such as the groups service
 * act as admins of the tenant they name) and is audited like every KMS operation. Operations
 * on one group are serialized in this replica; replicas are kept apart by the head record's
 * revision (see `store.ts`), so a change either commits whole or fails with
 * ERR_REVISION_CONFLICT.
 */
import { CompactEncrypt, decodeProtectedHeader } from 'jose'
import { bytesToBase64Url } from '@m2msec/crypto'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import {
  buildVerdict,
  COMMAND_TYPE,
  encodeFields,
  formatKid,
  groupSessionKeyDerivation,
  memberOfKeyId,
  restoreLkhTree,
  sealRekeyPlan,
  verifyAggregate,
  type AggregateResponse,
  type GroupChallenge,
  type LkhTree,
  type RandomSource,
  type RekeyPlan,
  type SealedEnvelope,
  type SubsetQuery,
} from '@m2msec/groupkeys'
import { requireAdmin } from '../domain/access.ts'
import { audited } from '../domain/audit.ts'
import { base32Id } from '../domain/ids.ts'
import type { Caller } from '../domain/model.ts'
import type { KmsDeps } from '../domain/ports.ts'
import { derivedKeys, openCredential, SESSION_CONFIRM_LABEL, type CredentialHandle } from './member-keys.ts'
import { nodeSealer, type NodeSealer } from './sealing.ts'
import type { GroupTreeStore, Journal, NodeEntry, SlotEntry, SnapshotChunk, TreeHead } from './store.ts'

/** Limits of the GroupKeys API. */
export const GROUP_LIMITS = {
  /** Joins plus leaves of one change: keeps one journal record well below 1 MB. */
  changeItems: 2000,
  maxArity: 1024,
  /** Members of one aggregate answer. */
  aggregateMembers: 100_000,
  jwsBytes: 48 * 1024,
  /** Trees whose state this replica keeps in memory. */
  cachedTrees: 64,
  /** Challenges whose member MACs this replica remembers between bisection rounds. */
  cachedChallenges: 256,
} as const

/** When the journals since the last snapshot are folded into a new one (see `store.ts`). */
export interface CompactionPolicy {
  /** Compact once the chain holds this many journals (bounds the reads of a cold load). */
  readonly maxJournals: number
  /**
   * ...or once the journals outweigh this share of the snapshot (bounds the amortized cost:
   * a snapshot of S bytes is rewritten after about S * share bytes of journals)...
   */
  readonly snapshotShare: number
  /** ...but never for less than this many journal bytes. */
  readonly minBytes: number
}

/** Default compaction: a 100k-member tree (about 20 MB of snapshot) is rewritten every 1,024 changes. */
export const DEFAULT_COMPACTION: CompactionPolicy = { maxJournals: 1024, snapshotShare: 0.25, minBytes: 256 * 1024 }

/** Snapshot chunks stay below this size (the KV value limit is 1 MB). */
const CHUNK_BYTES = 256 * 1024

const GROUP_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}$/
const NODE_ID = /^node:(\d+)\.(\d+)$/

/** Public description of a tree. */
export interface GroupTreeInfo {
  readonly groupId: string
  readonly arity: number
  readonly height: number
  readonly epoch: number
  readonly memberCount: number
  /** `node:<h>.0#<epoch>`, or '' while the group is empty. */
  readonly groupKeyKid: string
  readonly createdAt: string
}

/** One envelope as returned to callers. */
export interface EnvelopeOut {
  readonly jwe: string
  readonly wrappingKid: string
  readonly wrappedKid: string
  readonly groupKey: boolean
}

/** A member (or agent) and its credential key. */
export interface MemberCredentialIn {
  readonly memberId: string
  readonly credentialKeyId: string
}

/** AuthenticateGroup input (one call per round; the transcript grows by one answer per round). */
export interface AuthenticateInput {
  readonly groupId: string
  readonly agent: MemberCredentialIn
  readonly challenge: GroupChallenge
  readonly next?: GroupChallenge
  readonly answer: {
    readonly agentId: string
    readonly members: readonly { readonly memberId: string; readonly nonce: Uint8Array }[]
    readonly aggregate: Uint8Array
    readonly proof: Uint8Array
  }
  readonly subsetAnswers: readonly {
    readonly round: number
    readonly values: readonly Uint8Array[]
    readonly proof: Uint8Array
  }[]
  readonly fanout?: number
}

/** AuthenticateGroup output. */
export type AuthenticateOutput =
  | { readonly kind: 'query'; readonly round: number; readonly ranges: readonly (readonly [number, number])[] }
  | {
      readonly kind: 'verdict'
      readonly rejected: readonly number[]
      readonly proof: Uint8Array
      readonly confirmations: readonly { readonly memberId: string; readonly tag: Uint8Array }[]
      readonly rounds: number
      readonly macComputations: number
    }

/** A tree as this replica holds it: the unsealed tree plus what a snapshot needs. */
interface Loaded {
  readonly head: TreeHead
  readonly revision: number
  readonly tree: LkhTree
  /** memberId -> credential key id. */
  readonly creds: Map<string, string>
  /** Member per slot (null: free), `slotsUsed` long. */
  readonly slots: (string | null)[]
  /** `<level>.<position>` -> [version, sealed key]: the stored form, kept for snapshots. */
  readonly sealed: Map<string, readonly [number, string]>
  /** Journal ids since the snapshot, oldest first (removed after a compaction). */
  readonly journalIds: string[]
}

/** Thrown inside verifyAggregate when the transcript has no answer for the next query. */
class NeedsAnotherRound extends Error {
  constructor(readonly query: SubsetQuery) {
    super('subset query pending')
  }
}

function invalid(message: string, field: string): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', message, { field })
}

function treeNotFound(): M2msecError {
  return new M2msecError('ERR_NOT_FOUND', 'group tree not found')
}

function validateGroupId(groupId: string): void {
  if (typeof groupId !== 'string' || !GROUP_ID_PATTERN.test(groupId)) {
    throw invalid(
      'group id must be 1-256 characters of A-Z a-z 0-9 . _ : / - starting with a letter or digit',
      'group_id',
    )
  }
}

function parseNode(id: string): [number, number] {
  const m = NODE_ID.exec(id)
  if (m === null) throw new M2msecError('ERR_INTERNAL', 'not a node key id')
  return [Number(m[1]), Number(m[2])]
}

/** Approximate JSON size of slot and node entries (UTF-8 worst case for ids). */
function entriesBytes(slots: readonly SlotEntry[], nodes: readonly NodeEntry[]): number {
  let bytes = 64
  for (const [, m, c] of slots) bytes += 24 + 3 * (m?.length ?? 0) + (c?.length ?? 0)
  for (const n of nodes) bytes += 32 + n[3].length
  return bytes
}

/** Applies one journal to the stored form of a tree (slots and sealed nodes). */
function applyJournal(
  slots: (string | null)[],
  creds: Map<string, string>,
  sealed: Map<string, readonly [number, string]>,
  j: Pick<Journal, 'slots' | 'nodes' | 'dropped'>,
): void {
  for (const [slot, member, cred] of j.slots) {
    const previous = slots[slot]
    if (previous != null) creds.delete(previous)
    while (slots.length <= slot) slots.push(null)
    slots[slot] = member
    if (member !== null && cred !== null) creds.set(member, cred)
  }
  for (const [l, p, version, sealedKey] of j.nodes) sealed.set(`${l}.${p}`, [version, sealedKey])
  for (const [l, p] of j.dropped) sealed.delete(`${l}.${p}`)
}

/** Splits the stored form of a tree into snapshot chunks of about {@link CHUNK_BYTES}. */
function snapshotChunks(loaded: Loaded): { chunks: SnapshotChunk[]; bytes: number } {
  const epoch = loaded.head.epoch
  const chunks: SnapshotChunk[] = []
  let slots: SlotEntry[] = []
  let nodes: NodeEntry[] = []
  let size = 0
  let total = 0
  const flush = (): void => {
    if (slots.length + nodes.length > 0) chunks.push({ epoch, slots, nodes })
    total += size
    slots = []
    nodes = []
    size = 0
  }
  loaded.slots.forEach((member, slot) => {
    if (member === null) return
    const entry: SlotEntry = [slot, member, loaded.creds.get(member) ?? null]
    slots.push(entry)
    size += entriesBytes([entry], [])
    if (size >= CHUNK_BYTES) flush()
  })
  for (const [id, [version, sealedKey]] of loaded.sealed) {
    const [l, p] = id.split('.').map(Number) as [number, number]
    const entry: NodeEntry = [l, p, version, sealedKey]
    nodes.push(entry)
    size += entriesBytes([], [entry])
    if (size >= CHUNK_BYTES) flush()
  }
  flush()
  return { chunks, bytes: total }
}

function infoOf(head: TreeHead): GroupTreeInfo {
  return {
    groupId: head.groupId,
    arity: head.arity,
    height: head.height,
    epoch: head.epoch,
    memberCount: head.memberCount,
    // Every change rekeys the root, so the group key's version is the epoch.
    groupKeyKid: head.memberCount > 0 ? `node:${head.height}.0#${head.epoch}` : '',
    createdAt: head.createdAt,
  }
}

function toOut(sealed: readonly SealedEnvelope[]): EnvelopeOut[] {
  return sealed.map((s) => ({
    jwe: s.jwe,
    wrappingKid: formatKid(s.spec.wrappingKey),
    wrappedKid: formatKid(s.spec.wrapped),
    groupKey: s.spec.groupKey,
  }))
}

/**
 * CSPRNG bytes drawn from `source` in blocks of `block` bytes. A rekey asks for about three
 * small values per envelope (CEK, IV, node keys): one draw per block instead of one per value
 * (each draw is a system call; per value they cost about 0.7 ms of a 100k leave). Bytes handed
 * out are wiped from the pool; larger requests go to `source` directly.
 */
function pooledRandom(source: KmsDeps['random'], block = 4096): RandomSource {
  let pool: Uint8Array = new Uint8Array(0)
  let offset = 0
  return (n) => {
    if (n > block / 4) return source.bytes(n)
    if (offset + n > pool.length) {
      pool.fill(0)
      pool = source.bytes(block)
      offset = 0
    }
    const out = new Uint8Array(pool.subarray(offset, offset + n)) // a copy (Buffer.slice would be a view)
    pool.fill(0, offset, offset + n)
    offset += n
    return out
  }
}

/** Runs `fn` over `items` with at most `width` in flight. */
async function mapLimited<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(fn))))
  return out
}

/**
 * Binds the group key operations to the KMS ports and a tree store.
 *
 * @example
 * ```ts
 * const groups = createGroupKeyOperations({ kms: deps, store: await openGroupTreeStore(nc, { replicas: 1 }) })
 * await groups.createTree(caller, { groupId: 'meters', arity: 2 })
 * const { envelopes } = await groups.applyChange(caller, { groupId: 'meters', expectedEpoch: 0, joins, leaves: [] })
 * ```
 */
export function createGroupKeyOperations(deps: {
  readonly kms: KmsDeps
  readonly store: GroupTreeStore
  /** Default {@link DEFAULT_COMPACTION}. */
  readonly compaction?: CompactionPolicy
}) {
  const { kms, store } = deps
  const compaction = deps.compaction ?? DEFAULT_COMPACTION
  const random = pooledRandom(kms.random)
  const now = () => kms.clock.now().getTime()
  const cache = new Map<string, Loaded>()
  const locks = new Map<string, Promise<unknown>>()
  const macCache = new Map<string, { expiresAt: number; macs: Map<string, Uint8Array> }>()

  const keyOf = (tenant: string, groupId: string) => `${tenant}\0${groupId}`

  /** Runs `fn` after every earlier operation on the same group in this replica. */
  function serialized<T>(k: string, fn: () => Promise<T>): Promise<T> {
    const previous = locks.get(k) ?? Promise.resolve()
    const run = previous.catch(() => undefined).then(fn)
    locks.set(k, run)
    void run
      .catch(() => undefined)
      .finally(() => {
        if (locks.get(k) === run) locks.delete(k)
      })
    return run
  }

  function remember(k: string, loaded: Loaded): void {
    cache.delete(k)
    cache.set(k, loaded)
    while (cache.size > GROUP_LIMITS.cachedTrees) {
      const oldest = cache.keys().next().value
      if (oldest === undefined) break
      cache.delete(oldest)
    }
  }

  /** Reads the records a head names; undefined when one is gone (a compaction removed it). */
  async function readRecords(
    tenant: string,
    groupId: string,
    h: TreeHead,
  ): Promise<{ chunks: SnapshotChunk[]; journals: Journal[]; journalIds: string[] } | undefined> {
    const snapshot = h.snapshot === null ? [] : await store.getSnapshot(tenant, groupId, h.snapshot)
    if (snapshot === undefined) return undefined
    // The chain is read newest first, one record at a time (each names its predecessor).
    const journals: Journal[] = []
    const journalIds: string[] = []
    let id = h.journal?.last ?? null
    for (let i = 0; i < (h.journal?.count ?? 0); i++) {
      if (id === null) throw new M2msecError('ERR_INTERNAL', 'group tree journal chain is shorter than its head says')
      const j = await store.getJournal(tenant, groupId, id)
      if (j === undefined) return undefined
      journals.push(j)
      journalIds.push(id)
      id = j.prev
    }
    return { chunks: snapshot, journals: journals.reverse(), journalIds: journalIds.reverse() }
  }

  /**
   * The current tree: the cached one when the head has not moved, otherwise the snapshot plus
   * the journals since, with every node key unsealed once (O(n) SE calls, few KV reads).
   */
  async function load(tenant: string, groupId: string, sealer: NodeSealer): Promise<Loaded> {
    const k = keyOf(tenant, groupId)
    for (let attempt = 0; attempt < 8; attempt++) {
      const head = await store.getHead(tenant, groupId)
      if (head === undefined) throw treeNotFound()
      const cached = cache.get(k)
      if (cached !== undefined && cached.revision === head.revision) return cached
      const h = head.value
      if (h.v !== 2) throw new M2msecError('ERR_INTERNAL', 'group tree is stored in an unknown layout')
      const records = await readRecords(tenant, groupId, h)
      if (records === undefined) continue
      const slots: (string | null)[] = []
      const creds = new Map<string, string>()
      const sealed = new Map<string, readonly [number, string]>()
      for (const c of records.chunks) applyJournal(slots, creds, sealed, { ...c, dropped: [] })
      for (const [i, j] of records.journals.entries()) {
        if (j.epoch !== (h.snapshot?.epoch ?? 0) + i + 1) {
          throw new M2msecError('ERR_INTERNAL', 'group tree journal chain is out of order')
        }
        applyJournal(slots, creds, sealed, j)
      }
      while (slots.length < h.slotsUsed) slots.push(null)
      const nodes: [number, number, number][] = []
      const keys: [number, number, number, string][] = []
      for (const [id, [version, sealedKey]] of sealed) {
        const [l, p] = id.split('.').map(Number) as [number, number]
        nodes.push([l, p, version])
        const bytes = await sealer.open(groupId, l, p, version, sealedKey)
        keys.push([l, p, version, bytesToBase64Url(bytes)])
        bytes.fill(0)
      }
      const tree = restoreLkhTree(
        { v: 1, groupId, arity: h.arity, height: h.height, epoch: h.epoch, slots, nodes },
        { v: 1, groupId, epoch: h.epoch, keys },
        { random },
      )
      if (tree.size !== h.memberCount)
        throw new M2msecError('ERR_INTERNAL', 'group tree records disagree with its head')
      const loaded: Loaded = {
        head: h,
        revision: head.revision,
        tree,
        creds,
        slots,
        sealed,
        journalIds: records.journalIds,
      }
      remember(k, loaded)
      return loaded
    }
    throw new M2msecError('ERR_REVISION_CONFLICT', 'the group tree kept changing while it was read')
  }

  function compactionDue(h: TreeHead): boolean {
    const j = h.journal
    if (j === null) return false
    const share = (h.snapshot?.bytes ?? 0) * compaction.snapshotShare
    return j.count >= compaction.maxJournals || j.bytes >= Math.max(compaction.minBytes, share)
  }

  /**
   * Folds the journals into a new snapshot (runs after a change, in the group's queue). A head
   * that moved meanwhile (another replica) wins: the new snapshot is removed again.
   */
  async function compact(tenant: string, groupId: string): Promise<void> {
    const k = keyOf(tenant, groupId)
    const loaded = cache.get(k)
    if (loaded === undefined || !compactionDue(loaded.head)) return
    const head = await store.getHead(tenant, groupId)
    if (head === undefined || head.revision !== loaded.revision) return
    const { chunks, bytes } = snapshotChunks(loaded)
    const snapshot = { id: base32Id(kms.random), epoch: loaded.head.epoch, chunks: chunks.length, bytes }
    await store.putSnapshot(tenant, groupId, snapshot.id, chunks)
    const next: TreeHead = { ...loaded.head, snapshot, journal: null }
    let revision: number
    try {
      revision = await store.updateHead(tenant, groupId, next, loaded.revision)
    } catch (err) {
      await store.deleteRecords(tenant, groupId, { journals: [], snapshot }).catch(() => undefined)
      throw err
    }
    remember(k, { ...loaded, head: next, revision, journalIds: [] })
    const old = loaded.head.snapshot
    await store.deleteRecords(tenant, groupId, {
      journals: loaded.journalIds,
      ...(old === null ? {} : { snapshot: old }),
    })
  }

  /** Opens credential keys once per operation. */
  function credentialOpener(caller: Caller) {
    const opened = new Map<string, Promise<CredentialHandle>>()
    return (keyId: string): Promise<CredentialHandle> => {
      let p = opened.get(keyId)
      if (p === undefined) {
        p = openCredential(kms, caller, keyId)
        opened.set(keyId, p)
      }
      return p
    }
  }

  function membersMacs(tenant: string, groupId: string, challenge: GroupChallenge): Map<string, Uint8Array> {
    const t = now()
    for (const [key, entry] of macCache) if (entry.expiresAt <= t) macCache.delete(key)
    const k = `${tenant}\0${groupId}\0${challenge.challengeId}`
    let entry = macCache.get(k)
    if (entry === undefined) {
      entry = { expiresAt: challenge.expiresAt, macs: new Map() }
      macCache.set(k, entry)
      while (macCache.size > GROUP_LIMITS.cachedChallenges) {
        const oldest = macCache.keys().next().value
        if (oldest === undefined) break
        macCache.delete(oldest)
      }
    }
    return entry.macs
  }

  return {
    /** CreateGroupTree: an empty tree (epoch 0). */
    createTree(caller: Caller, req: { groupId: string; arity: number }): Promise<GroupTreeInfo> {
      return audited(
        kms,
        caller,
        { action: 'kms.GroupKeys.CreateGroupTree', resource: `group/${req.groupId}` },
        async () => {
          requireAdmin(caller, 'CreateGroupTree')
          validateGroupId(req.groupId)
          const arity = req.arity === 0 ? 2 : req.arity
          if (!Number.isInteger(arity) || arity < 2 || arity > GROUP_LIMITS.maxArity) {
            throw invalid(`arity must be 2-${GROUP_LIMITS.maxArity}`, 'arity')
          }
          // Creates the sealing key now, so the first change does not race for it.
          await nodeSealer(kms, caller.tenant)
          const head: TreeHead = {
            v: 2,
            groupId: req.groupId,
            arity,
            height: 1,
            epoch: 0,
            slotsUsed: 0,
            memberCount: 0,
            createdAt: kms.clock.now().toISOString(),
            snapshot: null,
            journal: null,
          }
          await store.createHead(caller.tenant, req.groupId, head)
          return infoOf(head)
        },
        { mutating: true },
      )
    },

    /** GetGroupTree. */
    getTree(caller: Caller, groupId: string): Promise<GroupTreeInfo> {
      return audited(kms, caller, { action: 'kms.GroupKeys.GetGroupTree', resource: `group/${groupId}` }, async () => {
        requireAdmin(caller, 'GetGroupTree')
        validateGroupId(groupId)
        const head = await store.getHead(caller.tenant, groupId)
        if (head === undefined) throw treeNotFound()
        return infoOf(head.value)
      })
    },

    /** DeleteGroupTree: every record, the head last. */
    deleteTree(caller: Caller, groupId: string): Promise<void> {
      return audited(
        kms,
        caller,
        { action: 'kms.GroupKeys.DeleteGroupTree', resource: `group/${groupId}` },
        async () => {
          requireAdmin(caller, 'DeleteGroupTree')
          validateGroupId(groupId)
          const k = keyOf(caller.tenant, groupId)
          await serialized(k, async () => {
            if ((await store.getHead(caller.tenant, groupId)) === undefined) throw treeNotFound()
            cache.delete(k)
            await store.deleteTree(caller.tenant, groupId)
          })
        },
        { mutating: true },
      )
    },

    /** ApplyMembershipChange: leaves then joins, one epoch, envelopes bottom-up. */
    applyChange(
      caller: Caller,
      req: { groupId: string; expectedEpoch: number; joins: readonly MemberCredentialIn[]; leaves: readonly string[] },
    ): Promise<{ tree: GroupTreeInfo; envelopes: EnvelopeOut[] }> {
      return audited(
        kms,
        caller,
        {
          action: 'kms.GroupKeys.ApplyMembershipChange',
          resource: `group/${req.groupId}`,
          details: { joins: req.joins.length, leaves: req.leaves.length, expectedEpoch: req.expectedEpoch },
        },
        async () => {
          requireAdmin(caller, 'ApplyMembershipChange')
          validateGroupId(req.groupId)
          if (req.joins.length + req.leaves.length > GROUP_LIMITS.changeItems) {
            throw new M2msecError(
              'ERR_PAYLOAD_TOO_LARGE',
              `at most ${GROUP_LIMITS.changeItems} joins and leaves per change`,
              {
                field: 'joins',
              },
            )
          }
          const { tenant } = caller
          const groupId = req.groupId
          const k = keyOf(tenant, groupId)
          return serialized(k, async () => {
            const sealer = await nodeSealer(kms, tenant)
            const loaded = await load(tenant, groupId, sealer)
            if (loaded.tree.epoch !== req.expectedEpoch) {
              throw new M2msecError('ERR_REVISION_CONFLICT', 'the group tree is at another epoch', {
                epoch: loaded.tree.epoch,
              })
            }
            const open = credentialOpener(caller)
            // Every joiner's credential must be usable before anything changes.
            await mapLimited(req.joins, 64, (j) => open(j.credentialKeyId))
            const { tree, creds } = loaded
            let plan: RekeyPlan
            try {
              plan = tree.batch({ joins: req.joins.map((j) => j.memberId), leaves: req.leaves })
            } catch (err) {
              // batch validates before it mutates: only an internal failure leaves a half-changed tree.
              if (!isM2msecError(err) || err.code === 'ERR_INTERNAL') cache.delete(k)
              throw err
            }
            // The cached tree is changed now: only a committed change puts it back.
            cache.delete(k)
            const derived = derivedKeys()
            try {
              for (const m of req.leaves) creds.delete(m)
              for (const j of req.joins) creds.set(j.memberId, j.credentialKeyId)

              const wrapTargets = new Map<string, number>()
              for (const spec of plan.envelopes) {
                const m = memberOfKeyId(spec.wrappingKey.id)
                if (m !== undefined) wrapTargets.set(m, spec.wrappingKey.version)
              }
              const wrapKeys = new Map<string, Uint8Array>()
              await mapLimited([...wrapTargets], 64, async ([m, epoch]) => {
                const credKeyId = creds.get(m)
                if (credKeyId === undefined) throw new M2msecError('ERR_INTERNAL', 'member without credential')
                wrapKeys.set(m, await derived.wrapKey(await open(credKeyId), groupId, epoch))
              })
              const sealed = sealRekeyPlan(plan, {
                keyOf: (ref) => tree.keyOf(ref),
                memberWrapKey: (m) => {
                  const kw = wrapKeys.get(m)
                  if (kw === undefined) throw new M2msecError('ERR_INTERNAL', 'member wrap key missing')
                  return kw
                },
                random,
              })
              for (const kw of wrapKeys.values()) kw.fill(0)

              const nodes = await mapLimited(plan.newKeys, 64, async (nk) => {
                const [l, p] = parseNode(nk.ref.id)
                return [l, p, nk.ref.version, await sealer.seal(groupId, l, p, nk.ref.version, nk.key)] as const
              })
              const lastBySlot = new Map<number, string | null>()
              for (const c of plan.slotChanges) lastBySlot.set(c.slot, c.member)
              let slotsUsed = loaded.head.slotsUsed
              for (const s of lastBySlot.keys()) slotsUsed = Math.max(slotsUsed, s + 1)
              const journalId = base32Id(kms.random)
              const journal: Journal = {
                epoch: plan.epoch,
                prev: loaded.head.journal?.last ?? null,
                slots: [...lastBySlot].map(([s, m]) => [s, m, m === null ? null : (creds.get(m) ?? null)] as const),
                nodes,
                dropped: plan.droppedKeys.map((r) => parseNode(r.id)),
              }
              const journalBytes = entriesBytes(journal.slots, journal.nodes) + 16 * journal.dropped.length
              await store.putJournal(tenant, groupId, journalId, journal)
              const committed: TreeHead = {
                ...loaded.head,
                epoch: plan.epoch,
                height: tree.height,
                slotsUsed,
                memberCount: tree.size,
                journal: {
                  last: journalId,
                  count: (loaded.head.journal?.count ?? 0) + 1,
                  bytes: (loaded.head.journal?.bytes ?? 0) + journalBytes,
                },
              }
              let revision: number
              try {
                revision = await store.updateHead(tenant, groupId, committed, loaded.revision)
              } catch (err) {
                await store.deleteRecords(tenant, groupId, { journals: [journalId] }).catch(() => undefined)
                throw err
              }
              // Committed: the head names the journal.
              // creds already holds this change (the joiners' credentials were needed to seal).
              applyJournal(loaded.slots, new Map(), loaded.sealed, journal)
              loaded.journalIds.push(journalId)
              remember(k, { ...loaded, head: committed, revision })
              if (compactionDue(committed)) {
                void serialized(k, () => compact(tenant, groupId)).catch((err: unknown) => kms.onBackgroundError?.(err))
              }
              return { tree: infoOf(committed), envelopes: toOut(sealed) }
            } finally {
              await derived.release()
            }
          })
        },
        { mutating: true },
      )
    },

    /** GetMemberEnvelopes: the member's current path, the lowest under KW(member, epoch). */
    memberEnvelopes(
      caller: Caller,
      req: { groupId: string; memberId: string },
    ): Promise<{ epoch: number; envelopes: EnvelopeOut[] }> {
      return audited(
        kms,
        caller,
        {
          action: 'kms.GroupKeys.GetMemberEnvelopes',
          resource: `group/${req.groupId}`,
          details: { member: req.memberId },
        },
        async () => {
          requireAdmin(caller, 'GetMemberEnvelopes')
          validateGroupId(req.groupId)
          const { tenant } = caller
          return serialized(keyOf(tenant, req.groupId), async () => {
            const loaded = await load(tenant, req.groupId, await nodeSealer(kms, tenant))
            const credKeyId = loaded.creds.get(req.memberId)
            if (credKeyId === undefined) throw new M2msecError('ERR_NOT_FOUND', 'member is not in the group')
            const plan = loaded.tree.resync(req.memberId)
            const derived = derivedKeys()
            try {
              const kw = await derived.wrapKey(await openCredential(kms, caller, credKeyId), req.groupId, plan.epoch)
              const sealed = sealRekeyPlan(plan, {
                keyOf: (ref) => loaded.tree.keyOf(ref),
                memberWrapKey: () => kw,
                random,
              })
              kw.fill(0)
              return { epoch: plan.epoch, envelopes: toOut(sealed) }
            } finally {
              await derived.release()
            }
          })
        },
      )
    },

    /** AuthenticateGroup: one round of the aggregate verification, or the verdict. */
    authenticate(caller: Caller, req: AuthenticateInput): Promise<AuthenticateOutput> {
      return audited(
        kms,
        caller,
        {
          action: 'kms.GroupKeys.AuthenticateGroup',
          resource: `group/${req.groupId}`,
          details: { members: req.answer.members.length, round: req.subsetAnswers.length, agent: req.agent.memberId },
        },
        async () => {
          requireAdmin(caller, 'AuthenticateGroup')
          validateGroupId(req.groupId)
          const groupId = req.groupId
          if (req.challenge.groupId !== groupId || (req.next !== undefined && req.next.groupId !== groupId)) {
            throw invalid('challenge is for another group', 'challenge')
          }
          if (req.answer.agentId !== req.agent.memberId)
            throw invalid('the answer is not from this agent', 'answer.agent_id')
          if (req.answer.members.length > GROUP_LIMITS.aggregateMembers) {
            throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', 'too many members in one aggregate', {
              field: 'answer.members',
            })
          }
          const { tenant } = caller
          // A snapshot of the membership; the MAC work runs outside the group's lock.
          const creds = await serialized(keyOf(tenant, groupId), async () => {
            const loaded = await load(tenant, groupId, await nodeSealer(kms, tenant))
            return new Map(loaded.creds)
          })
          if (creds.has(req.agent.memberId)) throw invalid('the agent cannot be a member of its group', 'agent')
          const open = credentialOpener(caller)
          const agentCred = await open(req.agent.credentialKeyId)
          const derived = derivedKeys()
          const known = membersMacs(tenant, groupId, req.challenge)
          try {
            const authKeyOf = async (entityId: string) => {
              const credKeyId = entityId === req.agent.memberId ? undefined : creds.get(entityId)
              const cred = credKeyId === undefined ? agentCred : await open(credKeyId)
              return derived.authKey(cred, groupId)
            }
            const macFor = async (entityId: string, data: Uint8Array): Promise<Uint8Array> => {
              const key = `${entityId}\0${Buffer.from(data).toString('base64')}`
              const hit = known.get(key)
              if (hit !== undefined) return hit
              const mac = await derived.mac(await authKeyOf(entityId), data)
              known.set(key, mac)
              return mac
            }
            const response: AggregateResponse = {
              challengeId: req.challenge.challengeId,
              groupId,
              agentId: req.answer.agentId,
              members: req.answer.members,
              aggregate: req.answer.aggregate,
              proof: req.answer.proof,
            }
            let used = 0
            let result
            try {
              result = await verifyAggregate(req.challenge, response, {
                macFor,
                querySubsets: async (query) => {
                  const a = req.subsetAnswers[used]
                  if (a === undefined) throw new NeedsAnotherRound(query)
                  used++
                  if (a.round !== query.round) throw invalid('subset answers are out of order', 'subset_answers')
                  return { challengeId: query.challengeId, round: a.round, values: a.values, proof: a.proof }
                },
                now,
                isMember: (id) => creds.has(id),
                ...(req.fanout === undefined || req.fanout === 0 ? {} : { fanout: req.fanout }),
                maxMembers: GROUP_LIMITS.aggregateMembers,
              })
            } catch (err) {
              if (err instanceof NeedsAnotherRound)
                return { kind: 'query', round: err.query.round, ranges: err.query.ranges }
              throw err
            }
            if (used !== req.subsetAnswers.length) throw invalid('more subset answers than queries', 'subset_answers')
            const verdict = await buildVerdict(req.challenge, response, result, macFor, req.next)
            const rejected = new Set(result.rejectedIndexes)
            const accepted = req.answer.members.filter((_, i) => !rejected.has(i))
            const confirmations = await mapLimited(accepted, 64, async (m) => {
              const { salt, info } = groupSessionKeyDerivation(req.challenge, m.memberId, m.nonce)
              const sk = await derived.sessionKey(await authKeyOf(m.memberId), salt, info)
              const tag = await derived.mac(
                sk,
                encodeFields(SESSION_CONFIRM_LABEL, req.challenge.challenge, groupId, m.memberId, m.nonce),
              )
              return { memberId: m.memberId, tag }
            })
            return {
              kind: 'verdict',
              rejected: result.rejectedIndexes,
              proof: verdict.proof,
              confirmations,
              rounds: result.rounds,
              macComputations: result.macComputations + 1 + 2 * confirmations.length,
            }
          } finally {
            await derived.release()
          }
        },
      )
    },

    /** SealBroadcast: JWE dir A256GCM of a signed command under the current group key. */
    sealBroadcast(caller: Caller, req: { groupId: string; jws: string }): Promise<{ jwe: string; epoch: number }> {
      return audited(
        kms,
        caller,
        { action: 'kms.GroupKeys.SealBroadcast', resource: `group/${req.groupId}` },
        async () => {
          requireAdmin(caller, 'SealBroadcast')
          validateGroupId(req.groupId)
          if (typeof req.jws !== 'string' || Buffer.byteLength(req.jws) > GROUP_LIMITS.jwsBytes) {
            throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `jws is larger than ${GROUP_LIMITS.jwsBytes} bytes`, {
              field: 'jws',
            })
          }
          let h: Record<string, unknown>
          try {
            if (req.jws.split('.').length !== 3) throw new Error('not compact')
            h = decodeProtectedHeader(req.jws) as Record<string, unknown>
          } catch {
            throw invalid('jws is not a JWS compact serialization', 'jws')
          }
          const { alg, typ, kid, gid, epoch, seq } = h
          if (
            alg !== 'ES256' ||
            typ !== COMMAND_TYPE ||
            typeof kid !== 'string' ||
            kid.length === 0 ||
            gid !== req.groupId ||
            !Number.isSafeInteger(epoch) ||
            !Number.isSafeInteger(seq) ||
            (seq as number) < 0
          ) {
            throw invalid('jws header is not a group command header for this group', 'jws')
          }
          const { tenant } = caller
          const groupKey = await serialized(keyOf(tenant, req.groupId), async () => {
            const loaded = await load(tenant, req.groupId, await nodeSealer(kms, tenant))
            const gk = loaded.tree.groupKey()
            if (gk === undefined || loaded.tree.epoch !== epoch) {
              throw new M2msecError('ERR_KEY_VERSION_NOT_FOUND', 'no group key for this epoch', {
                epoch: loaded.tree.epoch,
              })
            }
            return new Uint8Array(gk.key)
          })
          try {
            const jwe = await new CompactEncrypt(new TextEncoder().encode(req.jws))
              .setProtectedHeader({
                alg: 'dir',
                enc: 'A256GCM',
                cty: 'JOSE',
                kid: `gk#${epoch}`,
                snd: kid,
                gid,
                epoch,
                seq,
              })
              .encrypt(groupKey)
            return { jwe, epoch: epoch as number }
          } finally {
            groupKey.fill(0)
          }
        },
      )
    },
  }
}

/** The bound group key operations. */
export type GroupKeyOperations = ReturnType<typeof createGroupKeyOperations>
