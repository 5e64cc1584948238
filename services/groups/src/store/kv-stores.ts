/**
 * JetStream KV adapters of the group ports: `groups` (one record per group), `groups-rekeys`
 * (envelopes per epoch, in chunks), `groups-auth` (authentication sessions, expiring).
 */
import { KvRepository, kvKey, type NatsConnection } from '@m2msec/bus'
import type { AuthSession, Envelope, GroupRecord } from '../domain/model.ts'
import type { GroupStore, RekeyStore, SessionStore } from '../domain/ports.ts'

/** Opens the three buckets. Sessions expire after `sessionTtlMs` (longer than a challenge). */
export async function openGroupStores(
  nc: NatsConnection,
  opts: { replicas: number; sessionTtlMs: number },
): Promise<{ groups: GroupStore; rekeys: RekeyStore; sessions: SessionStore }> {
  const groupRepo = await KvRepository.open<GroupRecord>(nc, 'groups', { replicas: opts.replicas, history: 5 })
  const rekeyRepo = await KvRepository.open<{ envelopes: Envelope[] }>(nc, 'groups-rekeys', { replicas: opts.replicas })
  const sessionRepo = await KvRepository.open<AuthSession>(nc, 'groups-auth', {
    replicas: opts.replicas,
    ttlMs: opts.sessionTtlMs,
  })
  return {
    groups: {
      get: (t, g) => groupRepo.get(kvKey(t, g)),
      create: (group) => groupRepo.create(kvKey(group.tenant, group.id), group),
      update: (group, revision) => groupRepo.update(kvKey(group.tenant, group.id), group, revision),
      delete: (t, g) => groupRepo.delete(kvKey(t, g)),
      async list(t, page) {
        const out = await groupRepo.list(kvKey(t), {
          limit: page.limit,
          ...(page.after === undefined ? {} : { after: kvKey(t, page.after) }),
        })
        const items = out.items.map((i) => i.value)
        const last = items[items.length - 1]
        return out.next === undefined || last === undefined ? { items } : { items, next: last.id }
      },
    },
    rekeys: {
      async put(t, g, epoch, chunk, envelopes) {
        await rekeyRepo.modify(kvKey(t, g, String(epoch), String(chunk)), () => ({ envelopes: [...envelopes] }))
      },
      async get(t, g, epoch, chunk) {
        return (await rekeyRepo.get(kvKey(t, g, String(epoch), String(chunk))))?.value.envelopes
      },
      async deleteEpoch(t, g, epoch, chunks) {
        for (let c = 0; c < chunks; c++) await rekeyRepo.delete(kvKey(t, g, String(epoch), String(c)))
      },
    },
    sessions: {
      get: (t, g, id) => sessionRepo.get(kvKey(t, g, id)),
      create: (s) => sessionRepo.create(kvKey(s.tenant, s.groupId, s.challenge.challengeId), s),
      update: (s, revision) => sessionRepo.update(kvKey(s.tenant, s.groupId, s.challenge.challengeId), s, revision),
    },
  }
}
