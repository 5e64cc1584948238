import type { Logger } from '@m2msec/runtime'
import type { KmsOperations } from '../domain/operations/index.ts'
import type { CachedKeyStore } from '../store/key-store.ts'

/**
 * Periodically destroys keys whose scheduled destruction is due. Every replica runs it; the
 * revision check makes concurrent sweeps safe (one wins, the others see DESTROYED). It visits
 * only the keys the store knows to be scheduled (kept current by the KV watch), so its cost
 * does not grow with the number of keys. Returns the stop function.
 */
export function startDestructionSweeper(
  keys: Pick<CachedKeyStore, 'scheduledForDestruction'>,
  ops: KmsOperations,
  intervalMs: number,
  log: Logger,
): () => void {
  let running = false
  const sweep = async () => {
    if (running) return
    running = true
    try {
      for (const { tenant, id } of keys.scheduledForDestruction()) {
        try {
          if (await ops.destroyDueKey(tenant, id)) log.info({ tenant, keyId: id }, 'key destroyed')
        } catch (err) {
          log.warn({ err, tenant, keyId: id }, 'scheduled destruction failed; will retry')
        }
      }
    } catch (err) {
      log.warn({ err }, 'destruction sweep failed; will retry')
    } finally {
      running = false
    }
  }
  const timer = setInterval(() => void sweep(), intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
