/**
 * In-memory stores, a scripted fake KMS and event capture for the groups domain unit tests.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { createGroupsOperations } from '../../src/domain/index.ts'
import type { AuthSession, Caller, GroupRecord } from '../../src/domain/model.ts'
import type { GroupEvent, GroupKms, GroupsDeps, Versioned } from '../../src/domain/ports.ts'

export const admin: Caller = { tenant: 'acme', id: 'ops', roles: ['admin'] }
export const gw: Caller = { tenant: 'acme', id: 'gw-1', roles: [] }
export const m1: Caller = { tenant: 'acme', id: 'm1', roles: [] }
export const stranger: Caller = { tenant: 'acme', id: 'x', roles: [] }
export const evil: Caller = { tenant: 'evil', id: 'ops', roles: ['admin'] }

/** Asserts that `p` rejects with an M2msecError of `code`. */
export async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isM2msecError(err), String(err))
    assert.equal(err.code, code)
    return true
  })
}

function versionedMap<T>(keyOf: (v: T) => string) {
  const m = new Map<string, Versioned<T>>()
  let rev = 0
  return {
    m,
    get: async (k: string) => m.get(k),
    create: async (v: T) => {
      if (m.has(keyOf(v))) throw new M2msecError('ERR_ALREADY_EXISTS', 'exists')
      m.set(keyOf(v), { value: structuredClone(v), revision: ++rev })
      return rev
    },
    update: async (v: T, r: number) => {
      if (m.get(keyOf(v))?.revision !== r) throw new M2msecError('ERR_REVISION_CONFLICT', 'conflict')
      m.set(keyOf(v), { value: structuredClone(v), revision: ++rev })
      return rev
    },
  }
}

/** Operations on fresh fakes; `conflictOnce` makes the first KMS change fail with a revision conflict. */
export function setup(opts: { conflictOnce?: boolean } = {}) {
  const groups = versionedMap<GroupRecord>((g) => `${g.tenant}/${g.id}`)
  const sessions = versionedMap<AuthSession>((s) => `${s.tenant}/${s.groupId}/${s.challenge.challengeId}`)
  const rekeys = new Map<string, unknown>()
  const events: GroupEvent[] = []
  let epoch = 0
  let conflict = opts.conflictOnce === true
  const authCalls: unknown[] = []
  const kms: GroupKms = {
    createTree: async () => undefined,
    deleteTree: async () => undefined,
    async applyChange(_t, _g, expected, joins, leaves) {
      if (conflict) {
        conflict = false
        throw new M2msecError('ERR_REVISION_CONFLICT', 'moved')
      }
      assert.equal(expected, epoch)
      epoch++
      const envelopes = [...joins.map((j) => j.memberId), ...leaves].map((id) => ({
        jwe: `jwe-${id}-${epoch}`,
        wrappingKid: `member:${id}#${epoch}`,
        wrappedKid: `node:1.0#${epoch}`,
        groupKey: true,
      }))
      return { epoch, envelopes }
    },
    memberEnvelopes: async () => ({ epoch, envelopes: [] }),
    async authenticate(_t, req) {
      authCalls.push(req)
      if (req.subsetAnswers.length === 0 && req.answer.members.length > 1)
        return { kind: 'query', round: 1, ranges: [[0, 1]] }
      return {
        kind: 'verdict',
        rejected: [0],
        proof: new Uint8Array(32),
        confirmations: [],
        rounds: req.subsetAnswers.length,
      }
    },
    createSenderKey: async () => ({ keyId: 'sender-1', publicJwk: '{}' }),
    retireSenderKey: async () => undefined,
    sign: async () => new Uint8Array(64),
    sealBroadcast: async (_t, _g, jws) => ({ jwe: `sealed:${jws.length}`, epoch }),
  }
  const deps: GroupsDeps = {
    groups: {
      get: (t, g) => groups.get(`${t}/${g}`),
      create: groups.create,
      update: groups.update,
      delete: async (t, g) => void groups.m.delete(`${t}/${g}`),
      list: async (t) => ({ items: [...groups.m.values()].map((v) => v.value).filter((g) => g.tenant === t) }),
    },
    rekeys: {
      put: async (t, g, e, c, list) => void rekeys.set(`${t}/${g}/${e}/${c}`, list),
      get: async (t, g, e, c) => rekeys.get(`${t}/${g}/${e}/${c}`) as never,
      deleteEpoch: async (t, g, e, chunks) => {
        for (let c = 0; c < chunks; c++) rekeys.delete(`${t}/${g}/${e}/${c}`)
      },
    },
    sessions: {
      get: (t, g, id) => sessions.get(`${t}/${g}/${id}`),
      create: sessions.create,
      update: sessions.update,
    },
    kms,
    events: { publish: async (e) => void events.push(e) },
    clock: { now: () => new Date() },
    random: { bytes: (n) => new Uint8Array(randomBytes(n)) },
    settings: { maxMembers: 5, challengeTtlMs: 60_000, fanout: 2, keptRekeys: 2 },
  }
  return { ops: createGroupsOperations(deps), events, rekeys, authCalls }
}

/** A member spec with a fake credential key id. */
export const spec = (id: string) => ({ memberId: id, credentialKeyId: `cred-${id}` })
