/**
 * The groups use cases bound to their ports: `createGroupsOperations(deps)` so the gRPC layer
 * (and tests) call `ops.addMembers(caller, req)`.
 */
import type { Caller } from './model.ts'
import type { GroupsDeps } from './ports.ts'
import { issueChallenge, submitAggregate, submitSubsetAnswer } from './authentication.ts'
import { sendBroadcast } from './broadcast.ts'
import {
  addMembers,
  createGroup,
  deleteGroup,
  getEnvelopes,
  getGroup,
  getRekeyEnvelopes,
  joinGroup,
  leaveGroup,
  listGroups,
  listMembers,
  removeMembers,
} from './membership.ts'

type Bound<F> = F extends (deps: GroupsDeps, caller: Caller, ...rest: infer A) => infer R
  ? (caller: Caller, ...rest: A) => R
  : never

function bind<F extends (deps: GroupsDeps, caller: Caller, ...rest: never[]) => unknown>(
  deps: GroupsDeps,
  f: F,
): Bound<F> {
  return ((caller: Caller, ...rest: never[]) => f(deps, caller, ...rest)) as Bound<F>
}

/**
 * @example
 * ```ts
 * const ops = createGroupsOperations(deps)
 * const { group, rekey } = await ops.addMembers(admin, { groupId: 'meters', members: [{ memberId: 'm1' }] })
 * ```
 */
export function createGroupsOperations(deps: GroupsDeps) {
  return {
    createGroup: bind(deps, createGroup),
    getGroup: bind(deps, getGroup),
    listGroups: bind(deps, listGroups),
    listMembers: bind(deps, listMembers),
    deleteGroup: bind(deps, deleteGroup),
    addMembers: bind(deps, addMembers),
    removeMembers: bind(deps, removeMembers),
    joinGroup: bind(deps, joinGroup),
    leaveGroup: bind(deps, leaveGroup),
    getRekeyEnvelopes: bind(deps, getRekeyEnvelopes),
    getEnvelopes: bind(deps, getEnvelopes),
    issueChallenge: bind(deps, issueChallenge),
    submitAggregate: bind(deps, submitAggregate),
    submitSubsetAnswer: bind(deps, submitSubsetAnswer),
    sendBroadcast: bind(deps, sendBroadcast),
  }
}

/** The bound operations. */
export type GroupsOperations = ReturnType<typeof createGroupsOperations>
