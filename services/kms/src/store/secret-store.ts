/**
 * SecretStore on JetStream KV (bucket `kms-secrets`, entry `<tenant>.<owner>.<name>`). Values
 * are already sealed by the KMS storage key: the bucket never holds a secret in the clear.
 */
import type { KvRepository } from '@m2msec/bus'
import { kvKey, parseKvKey } from '@m2msec/bus'
import type { SecretStore, StoredSecret } from '../domain/ports.ts'

export function createSecretStore(repo: KvRepository<StoredSecret>): SecretStore {
  return {
    async get(tenant, owner, name) {
      const found = await repo.get(kvKey(tenant, owner, name))
      return found?.value
    },
    async put(secret) {
      const k = kvKey(secret.tenant, secret.owner, secret.name)
      await repo.modify(k, () => secret)
    },
    async delete(tenant, owner, name) {
      const k = kvKey(tenant, owner, name)
      const found = await repo.get(k)
      if (found === undefined) return false
      await repo.delete(k, found.revision)
      return true
    },
    async list(tenant, owner, page) {
      const res = await repo.list(`${kvKey(tenant, owner)}.`, {
        limit: page.limit,
        ...(page.after === undefined ? {} : { after: kvKey(tenant, owner, page.after) }),
      })
      const items = res.items.map((i) => i.value)
      const last = res.items.at(-1)
      return res.next === undefined || last === undefined
        ? { items }
        : { items, next: parseKvKey(last.key).at(-1) ?? '' }
    },
  }
}
