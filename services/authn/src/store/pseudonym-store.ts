/**
 * PseudonymStore on JetStream KV (bucket `authn-pseudonyms`, key `<tenant>.<pseudonym>`, no
 * TTL: a relying party may introspect a pseudonymous token any time it is valid, and the
 * mapping never changes). `remember` creates the entry once; later calls find it there.
 */
import { isM2msecError } from '@m2msec/errors'
import { kvKey, type KvRepository } from '@m2msec/bus'
import type { PseudonymStore } from '../domain/ports.ts'

/** What the bucket holds per pseudonym. */
export interface PseudonymEntry {
  readonly entityId: string
  readonly audience: string
}

/** The PseudonymStore port on the `authn-pseudonyms` bucket. */
export function createPseudonymStore(repo: KvRepository<PseudonymEntry>): PseudonymStore {
  return {
    async remember(tenant, pseudonym, entry) {
      try {
        await repo.create(kvKey(tenant, pseudonym), { entityId: entry.entityId, audience: entry.audience })
      } catch (err) {
        if (!isM2msecError(err) || err.code !== 'ERR_ALREADY_EXISTS') throw err
      }
    },
    async resolve(tenant, pseudonym) {
      return (await repo.get(kvKey(tenant, pseudonym)))?.value
    },
  }
}
