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
import type { GroupTreeStore, Journal, Revisioned, TreeHead } from './store.ts'

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

interface Loaded {
  readonly head: TreeHead
  readonly revision: number
  readonly tree: LkhTree
  /** memberId -> credential key id. */
  readonly creds: Map<string, string>
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

function withoutJournal(head: TreeHead): TreeHead {
  const copy: { -readonly [K in keyof TreeHead]?: TreeHead[K] } = { ...head }
  delete copy.journal
  return copy as TreeHead
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
export function createGroupKeyOperations(deps: { readonly kms: KmsDeps; readonly store: GroupTreeStore }) {
  const { kms, store } = deps
  const random: RandomSource = (n) => kms.random.bytes(n)
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

  async function rollForward(tenant: string, groupId: string, head: Revisioned<TreeHead>): Promise<void> {
    const id = head.value.journal
    if (id === undefined) return
    const journal = await store.getJournal(tenant, groupId, id)
    if (journal !== undefined) await store.applyJournal(tenant, groupId, journal)
    try {
      await store.updateHead(tenant, groupId, withoutJournal(head.value), head.revision)
      await store.deleteJournal(tenant, groupId, id)
    } catch (err) {
      // Someone else finished it (or moved on): the caller re-reads the head.
      if (!isM2msecError(err) || err.code !== 'ERR_REVISION_CONFLICT') throw err
    }
  }

  async function load(tenant: string, groupId: string, sealer: NodeSealer): Promise<Loaded> {
    const k = keyOf(tenant, groupId)
    for (let attempt = 0; attempt < 8; attempt++) {
      const head = await store.getHead(tenant, groupId)
      if (head === undefined) throw treeNotFound()
      if (head.value.journal !== undefined) {
        await rollForward(tenant, groupId, head)
        continue
      }
      const cached = cache.get(k)
      if (cached !== undefined && cached.revision === head.revision) return cached
      const records = await store.loadRecords(tenant, groupId)
      const again = await store.getHead(tenant, groupId)
      if (again === undefined) throw treeNotFound()
      if (again.revision !== head.revision) continue
      const h = head.value
      const slots: (string | null)[] = []
      const creds = new Map<string, string>()
      for (let s = 0; s < h.slotsUsed; s++) {
        const r = records.slots.get(s)
        slots.push(r?.member ?? null)
        if (r?.member != null && r.cred !== null) creds.set(r.member, r.cred)
      }
      const nodes: [number, number, number][] = []
      const keys: [number, number, number, string][] = []
      for (const [id, rec] of records.nodes) {
        const [l, p] = id.split('.').map(Number) as [number, number]
        nodes.push([l, p, rec.version])
        const bytes = await sealer.open(groupId, l, p, rec.version, rec.sealed)
        keys.push([l, p, rec.version, bytesToBase64Url(bytes)])
        bytes.fill(0)
      }
      const tree = restoreLkhTree(
        { v: 1, groupId, arity: h.arity, height: h.height, epoch: h.epoch, slots, nodes },
        { v: 1, groupId, epoch: h.epoch, keys },
        { random },
      )
      const loaded: Loaded = { head: h, revision: head.revision, tree, creds }
      remember(k, loaded)
      return loaded
    }
    throw new M2msecError('ERR_REVISION_CONFLICT', 'the group tree kept changing while it was read')
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
            v: 1,
            groupId: req.groupId,
            arity,
            height: 1,
            epoch: 0,
            slotsUsed: 0,
            memberCount: 0,
            createdAt: kms.clock.now().toISOString(),
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
        return infoOf(withoutJournal(head.value))
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
            const derived = derivedKeys()
            // From here the cached tree object is mutated: only a committed change puts it back.
            cache.delete(k)
            try {
              const { tree, creds } = loaded
              const plan = tree.batch({ joins: req.joins.map((j) => j.memberId), leaves: req.leaves })
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
              const journal: Journal = {
                epoch: plan.epoch,
                slots: [...lastBySlot].map(([s, m]) => [s, m, m === null ? null : (creds.get(m) ?? null)] as const),
                nodes,
                dropped: plan.droppedKeys.map((r) => parseNode(r.id)),
              }
              const journalId = base32Id(kms.random)
              await store.putJournal(tenant, groupId, journalId, journal)
              const next: TreeHead = {
                ...loaded.head,
                epoch: plan.epoch,
                height: tree.height,
                slotsUsed,
                memberCount: tree.size,
                journal: journalId,
              }
              let revision: number
              try {
                revision = await store.updateHead(tenant, groupId, next, loaded.revision)
              } catch (err) {
                await store.deleteJournal(tenant, groupId, journalId).catch(() => undefined)
                throw err
              }
              // Committed. Finishing the records can be redone by any reader (roll forward).
              const committed = withoutJournal(next)
              await store.applyJournal(tenant, groupId, journal)
              try {
                revision = await store.updateHead(tenant, groupId, committed, revision)
                await store.deleteJournal(tenant, groupId, journalId)
                remember(k, { head: committed, revision, tree, creds })
              } catch (err) {
                if (!isM2msecError(err) || err.code !== 'ERR_REVISION_CONFLICT') throw err
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
