/**
 * Group lifecycle and membership: create, read, list, delete, add and remove members, and in
 * dynamic groups join and leave by oneself. Every join and leave, whoever asks for it, goes
 * through `changeMembership`: one rekey in the KMS (a new epoch); the KMS answers with the
 * envelopes, which are kept per epoch for the agent to relay, and a `membership.changed`
 * event naming the caller (`actor`) and the kind of change (`via`) goes on the bus.
 *
 * Order of writes: the KMS tree is the authority on membership and epoch (its change is
 * checked against the epoch this record holds); the envelopes are stored next, the group
 * record last, with a revision-checked update.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import {
  authorizeChange,
  groupNotFound,
  loadGroup,
  pageSize,
  requireAdmin,
  validateGroupId,
  validateJoinPolicy,
  validateMemberId,
  type ChangeKind,
} from './access.ts'
import { LIMITS, type Caller, type Envelope, type GroupRecord, type MembershipMode } from './model.ts'
import type { GroupsDeps, MemberCredential } from './ports.ts'

/** A member to add; without a credential key id it is looked up in authn. */
export interface MemberSpec {
  readonly memberId: string
  readonly credentialKeyId?: string
}

/** What one rekey produced. */
export interface RekeyInfo {
  readonly epoch: number
  readonly joined: readonly string[]
  readonly left: readonly string[]
  readonly envelopeCount: number
}

function invalid(message: string, field: string): M2msecError {
  return new M2msecError('ERR_INVALID_ARGUMENT', message, { field })
}

/** Events are best effort after the write. */
export function publishInBackground(deps: GroupsDeps, event: Parameters<GroupsDeps['events']['publish']>[0]): void {
  deps.events.publish(event).catch((err: unknown) => deps.onBackgroundError?.(err))
}

async function resolveCredentials(
  deps: GroupsDeps,
  tenant: string,
  specs: readonly MemberSpec[],
): Promise<MemberCredential[]> {
  return Promise.all(
    specs.map(async (s) => {
      if (s.credentialKeyId !== undefined && s.credentialKeyId !== '') {
        return { memberId: s.memberId, credentialKeyId: s.credentialKeyId }
      }
      if (deps.directory === undefined) {
        throw new M2msecError('ERR_FAILED_PRECONDITION', 'no credential_key_id given and no authn lookup configured', {
          memberId: s.memberId,
        })
      }
      return { memberId: s.memberId, credentialKeyId: await deps.directory.credentialKeyOf(tenant, s.memberId) }
    }),
  )
}

/** Stores a rekey's envelopes in chunks and returns the record's kept-rekeys list after it. */
async function keepRekey(
  deps: GroupsDeps,
  group: GroupRecord,
  epoch: number,
  envelopes: readonly Envelope[],
): Promise<{ rekeys: GroupRecord['rekeys']; dropped: GroupRecord['rekeys'] }> {
  const chunks = Math.max(1, Math.ceil(envelopes.length / LIMITS.envelopesPerChunk))
  for (let c = 0; c < chunks; c++) {
    await deps.rekeys.put(
      group.tenant,
      group.id,
      epoch,
      c,
      envelopes.slice(c * LIMITS.envelopesPerChunk, (c + 1) * LIMITS.envelopesPerChunk),
    )
  }
  const all = [...group.rekeys, { epoch, chunks, count: envelopes.length }]
  const cut = Math.max(0, all.length - deps.settings.keptRekeys)
  return { rekeys: all.slice(cut), dropped: all.slice(0, cut) }
}

/** Loads a group of the caller's tenant and checks the caller may make a change of `kind`. */
async function loadForChange(
  deps: GroupsDeps,
  caller: Caller,
  groupId: string,
  kind: ChangeKind,
): Promise<{ value: GroupRecord; revision: number }> {
  validateGroupId(groupId)
  const found = await deps.groups.get(caller.tenant, groupId)
  if (found === undefined) throw groupNotFound()
  authorizeChange(caller, found.value, kind)
  return found
}

/**
 * Applies one membership change: KMS rekey, envelopes, group record. Retries when another
 * replica changed the group in between (the KMS refuses a change made against an old epoch).
 * The caller is authorized (`kind`) before any credential lookup and again on every reload.
 */
async function changeMembership(
  deps: GroupsDeps,
  caller: Caller,
  groupId: string,
  joins: readonly MemberSpec[],
  leaves: readonly string[],
  kind: ChangeKind,
): Promise<{ group: GroupRecord; rekey: RekeyInfo }> {
  await loadForChange(deps, caller, groupId, kind)
  if (joins.length + leaves.length === 0) throw invalid('a change needs at least one member', 'members')
  if (joins.length + leaves.length > LIMITS.changeItems) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `at most ${LIMITS.changeItems} members per change`, {
      field: 'members',
    })
  }
  const seen = new Set<string>()
  for (const id of [...joins.map((j) => j.memberId), ...leaves]) {
    validateMemberId(id, 'member_id')
    if (seen.has(id)) throw invalid('a member is listed twice', 'members')
    seen.add(id)
  }
  const credentials = await resolveCredentials(deps, caller.tenant, joins)
  for (let attempt = 0; ; attempt++) {
    const { value: group, revision } = await loadForChange(deps, caller, groupId, kind)
    const members = new Set(group.members)
    for (const j of joins) {
      if (members.has(j.memberId)) {
        throw new M2msecError('ERR_ALREADY_EXISTS', 'member is already in the group', { memberId: j.memberId })
      }
      if (j.memberId === group.agentId) throw invalid('the agent cannot be a member of its group', 'members')
    }
    for (const l of leaves) {
      if (!members.has(l)) throw new M2msecError('ERR_NOT_FOUND', 'member is not in the group', { memberId: l })
    }
    if (members.size + joins.length - leaves.length > deps.settings.maxMembers) {
      throw new M2msecError('ERR_FAILED_PRECONDITION', `a group has at most ${deps.settings.maxMembers} members`)
    }
    let applied
    try {
      applied = await deps.kms.applyChange(caller.tenant, group.id, group.epoch, credentials, leaves)
    } catch (err) {
      if (isM2msecError(err) && err.code === 'ERR_REVISION_CONFLICT' && attempt < 3) continue
      throw err
    }
    const kept = await keepRekey(deps, group, applied.epoch, applied.envelopes)
    const leaving = new Set(leaves)
    const next: GroupRecord = {
      ...group,
      epoch: applied.epoch,
      members: [...group.members.filter((m) => !leaving.has(m)), ...joins.map((j) => j.memberId)],
      rekeys: kept.rekeys,
      updatedAt: deps.clock.now().toISOString(),
    }
    await updateAfterRekey(deps, next, revision)
    for (const d of kept.dropped) {
      await deps.rekeys
        .deleteEpoch(group.tenant, group.id, d.epoch, d.chunks)
        .catch((err: unknown) => deps.onBackgroundError?.(err))
    }
    const rekey: RekeyInfo = {
      epoch: applied.epoch,
      joined: joins.map((j) => j.memberId),
      left: [...leaves],
      envelopeCount: applied.envelopes.length,
    }
    publishInBackground(deps, {
      type: 'membership.changed',
      tenant: group.tenant,
      groupId: group.id,
      ...rekey,
      actor: caller.id,
      via: kind,
    })
    return { group: next, rekey }
  }
}

/**
 * Writes the record after a committed KMS change. A concurrent write of other fields (a
 * broadcast's sequence number) is merged: membership and epoch come from this change.
 */
async function updateAfterRekey(deps: GroupsDeps, next: GroupRecord, revision: number): Promise<void> {
  let rev = revision
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await deps.groups.update(next, rev)
      return
    } catch (err) {
      if (!isM2msecError(err) || err.code !== 'ERR_REVISION_CONFLICT') throw err
      const current = await deps.groups.get(next.tenant, next.id)
      if (current === undefined) throw groupNotFound()
      if (current.value.epoch >= next.epoch) return
      next = { ...next, nextSeq: Math.max(next.nextSeq, current.value.nextSeq) }
      rev = current.revision
    }
  }
  throw new M2msecError('ERR_REVISION_CONFLICT', 'the group record kept changing')
}

/** CreateGroup (admin): record, KMS tree, sender key, and epoch 1 with the initial members. */
export async function createGroup(
  deps: GroupsDeps,
  caller: Caller,
  req: {
    groupId: string
    description: string
    agent: MemberSpec
    members: readonly MemberSpec[]
    arity: number
    /** Default STATIC. */
    membership?: MembershipMode
    /** Join policy patterns (DYNAMIC only); default empty. */
    joinAllow?: readonly string[]
  },
): Promise<{ group: GroupRecord; rekey?: RekeyInfo }> {
  requireAdmin(caller, 'CreateGroup')
  validateGroupId(req.groupId)
  validateMemberId(req.agent.memberId, 'agent.member_id')
  if (Buffer.byteLength(req.description) > LIMITS.descriptionBytes) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', 'description is larger than 256 bytes', { field: 'description' })
  }
  const membership = req.membership ?? 'STATIC'
  const joinAllow = req.joinAllow ?? []
  validateJoinPolicy(joinAllow)
  if (membership === 'STATIC' && joinAllow.length > 0) {
    throw invalid('a static group has no join policy', 'join_policy')
  }
  const arity = req.arity === 0 ? 2 : req.arity
  if (!Number.isInteger(arity) || arity < 2 || arity > 1024) throw invalid('arity must be 2-1024', 'arity')
  if (req.members.length > deps.settings.maxMembers) {
    throw new M2msecError('ERR_FAILED_PRECONDITION', `a group has at most ${deps.settings.maxMembers} members`)
  }
  if (req.members.some((m) => m.memberId === req.agent.memberId)) {
    throw invalid('the agent cannot be a member of its group', 'members')
  }
  const [agent] = await resolveCredentials(deps, caller.tenant, [req.agent])
  if (agent === undefined) throw new M2msecError('ERR_INTERNAL', 'agent credential not resolved')
  if ((await deps.groups.get(caller.tenant, req.groupId)) !== undefined) {
    throw new M2msecError('ERR_ALREADY_EXISTS', 'a group with this id exists', { groupId: req.groupId })
  }
  await deps.kms.createTree(caller.tenant, req.groupId, arity)
  let sender: { keyId: string; publicJwk: string }
  try {
    sender = await deps.kms.createSenderKey(caller.tenant, req.groupId)
  } catch (err) {
    await deps.kms.deleteTree(caller.tenant, req.groupId).catch(() => undefined)
    throw err
  }
  const now = deps.clock.now().toISOString()
  const group: GroupRecord = {
    tenant: caller.tenant,
    id: req.groupId,
    description: req.description,
    agentId: agent.memberId,
    agentCredentialKeyId: agent.credentialKeyId,
    arity,
    rekeyPolicy: 'EVERY_CHANGE',
    membership,
    joinAllow: [...joinAllow],
    epoch: 0,
    members: [],
    senderKeyId: sender.keyId,
    senderPublicJwk: sender.publicJwk,
    nextSeq: 0,
    rekeys: [],
    createdAt: now,
    updatedAt: now,
  }
  try {
    await deps.groups.create(group)
  } catch (err) {
    await deps.kms.deleteTree(caller.tenant, req.groupId).catch(() => undefined)
    await deps.kms.retireSenderKey(caller.tenant, sender.keyId).catch(() => undefined)
    throw err
  }
  publishInBackground(deps, { type: 'group.created', tenant: caller.tenant, groupId: group.id, epoch: 0 })
  if (req.members.length === 0) return { group }
  return changeMembership(deps, caller, group.id, req.members, [], 'manage')
}

/** GetGroup: admin, agent or member. */
export async function getGroup(deps: GroupsDeps, caller: Caller, groupId: string): Promise<GroupRecord> {
  return (await loadGroup(deps, caller, groupId, ['admin', 'agent', 'member'])).value
}

/** ListGroups (admin). */
export async function listGroups(
  deps: GroupsDeps,
  caller: Caller,
  req: { pageSize: number; pageToken: string },
): Promise<{ groups: GroupRecord[]; nextPageToken: string }> {
  requireAdmin(caller, 'ListGroups')
  const page = await deps.groups.list(caller.tenant, {
    limit: pageSize(req.pageSize),
    ...(req.pageToken === '' ? {} : { after: req.pageToken }),
  })
  return { groups: page.items, nextPageToken: page.next ?? '' }
}

/** ListMembers (admin or agent): member ids in join order; the token is an offset. */
export async function listMembers(
  deps: GroupsDeps,
  caller: Caller,
  req: { groupId: string; pageSize: number; pageToken: string },
): Promise<{ memberIds: string[]; nextPageToken: string }> {
  const { value: group } = await loadGroup(deps, caller, req.groupId, ['admin', 'agent'])
  const start = req.pageToken === '' ? 0 : Number(req.pageToken)
  if (!Number.isSafeInteger(start) || start < 0) throw invalid('page_token is not valid', 'page_token')
  const end = start + pageSize(req.pageSize)
  return {
    memberIds: group.members.slice(start, end),
    nextPageToken: end < group.members.length ? String(end) : '',
  }
}

/** DeleteGroup (admin): KMS tree, kept envelopes, sender key, record. */
export async function deleteGroup(deps: GroupsDeps, caller: Caller, groupId: string): Promise<void> {
  const { value: group } = await loadGroup(deps, caller, groupId, ['admin'])
  await deps.kms.deleteTree(caller.tenant, groupId).catch((err: unknown) => {
    if (!isM2msecError(err) || err.code !== 'ERR_NOT_FOUND') throw err
  })
  for (const r of group.rekeys) await deps.rekeys.deleteEpoch(group.tenant, group.id, r.epoch, r.chunks)
  await deps.kms.retireSenderKey(caller.tenant, group.senderKeyId)
  await deps.groups.delete(caller.tenant, groupId)
  publishInBackground(deps, { type: 'group.deleted', tenant: caller.tenant, groupId })
}

/** AddMembers (admin, or the agent of a dynamic group): one rekey. */
export async function addMembers(
  deps: GroupsDeps,
  caller: Caller,
  req: { groupId: string; members: readonly MemberSpec[] },
): Promise<{ group: GroupRecord; rekey: RekeyInfo }> {
  return changeMembership(deps, caller, req.groupId, req.members, [], 'manage')
}

/**
 * RemoveMembers (admin, or the agent of a dynamic group): one rekey none of whose keys the
 * leavers can obtain.
 */
export async function removeMembers(
  deps: GroupsDeps,
  caller: Caller,
  req: { groupId: string; memberIds: readonly string[] },
): Promise<{ group: GroupRecord; rekey: RekeyInfo }> {
  return changeMembership(deps, caller, req.groupId, [], req.memberIds, 'manage')
}

/**
 * JoinGroup: the caller joins a dynamic group whose join policy matches its entity id; the
 * same rekey as AddMembers. Without a credential key id its credential is looked up in authn.
 */
export async function joinGroup(
  deps: GroupsDeps,
  caller: Caller,
  req: { groupId: string; credentialKeyId?: string },
): Promise<{ group: GroupRecord; rekey: RekeyInfo }> {
  const spec: MemberSpec =
    req.credentialKeyId === undefined || req.credentialKeyId === ''
      ? { memberId: caller.id }
      : { memberId: caller.id, credentialKeyId: req.credentialKeyId }
  return changeMembership(deps, caller, req.groupId, [spec], [], 'join')
}

/** LeaveGroup: the caller, a member, leaves a dynamic group; the same rekey as RemoveMembers. */
export async function leaveGroup(
  deps: GroupsDeps,
  caller: Caller,
  req: { groupId: string },
): Promise<{ group: GroupRecord; rekey: RekeyInfo }> {
  return changeMembership(deps, caller, req.groupId, [], [caller.id], 'leave')
}

/** GetRekeyEnvelopes (admin or agent): every envelope of one kept rekey (0 = the latest). */
export async function getRekeyEnvelopes(
  deps: GroupsDeps,
  caller: Caller,
  req: { groupId: string; epoch: number },
): Promise<{ epoch: number; envelopes: Envelope[] }> {
  const { value: group } = await loadGroup(deps, caller, req.groupId, ['admin', 'agent'])
  const wanted = req.epoch === 0 ? group.epoch : req.epoch
  const kept = group.rekeys.find((r) => r.epoch === wanted)
  if (kept === undefined)
    throw new M2msecError('ERR_NOT_FOUND', 'the envelopes of this epoch are not kept', { epoch: wanted })
  const envelopes: Envelope[] = []
  for (let c = 0; c < kept.chunks; c++) {
    const chunk = await deps.rekeys.get(group.tenant, group.id, wanted, c)
    if (chunk === undefined)
      throw new M2msecError('ERR_NOT_FOUND', 'the envelopes of this epoch are not kept', { epoch: wanted })
    envelopes.push(...chunk)
  }
  return { epoch: wanted, envelopes }
}

/** GetEnvelopes: one member's current path (the member itself, the agent or an admin). */
export async function getEnvelopes(
  deps: GroupsDeps,
  caller: Caller,
  req: { groupId: string; memberId: string },
): Promise<{ epoch: number; envelopes: Envelope[] }> {
  const { value: group, role } = await loadGroup(deps, caller, req.groupId, ['admin', 'agent', 'member'])
  const memberId = req.memberId === '' ? caller.id : req.memberId
  if (role === 'member' && memberId !== caller.id) {
    throw new M2msecError('ERR_PERMISSION_DENIED', 'a member reads only its own envelopes')
  }
  if (!group.members.includes(memberId)) throw new M2msecError('ERR_NOT_FOUND', 'member is not in the group')
  return deps.kms.memberEnvelopes(group.tenant, group.id, memberId)
}
