/**
 * `@m2msec/sdk/groups`: the member and agent roles of m2msec group credentials
 * (docs/groups-protocol.md) over the groups gRPC API (m2msec.groups.v1.Groups).
 *
 * - `createGroupMember`: opens relayed envelopes with the member's own credential, answers
 *   challenges, checks its session-key confirmation, opens broadcasts (replays refused).
 * - `createGroupAgent`: relays envelopes, aggregates answers, answers subset queries, checks
 *   the verdict proof.
 * - `groupsApi`: the promise-based calls both make; `keys.ts`: the member-side derivations.
 */
export * from './keys.ts'
export * from './api.ts'
export * from './member.ts'
export * from './agent.ts'
