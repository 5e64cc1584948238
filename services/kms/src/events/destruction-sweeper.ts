import type { KvRepository } from '@m2msec/bus'
import { parseKvKey } from '@m2msec/bus'
import type { Logger } from '@m2msec/runtime'
import type { KeyRecord } from '../domain/model.ts'
import type { KmsOperations } from '../domain/operations/index.ts'

/**
 * Periodically destroys keys whose scheduled destruction is due. Every replica runs it; the
 * revision check makes concurrent sweeps safe (one wins, the others see DESTROYED). Returns
 * the stop function.
 */
export function startDestructionSweeper(
  repo: KvRepository<KeyRecord>,
  ops: KmsOperations,
  intervalMs: number,
  log: Logger,
): () => void {
  let running = false
  const sweep = async () => {
    if (running) return
    running = true
    try {
      let after: string | undefined
      do {
        const page = await repo.list('', { limit: 500, ...(after === undefined ? {} : { after }) })
        for (const item of page.items) {
          if (item.value.state !== 'DESTRUCTION_SCHEDULED') continue
          const [tenant, id] = parseKvKey(item.key)
          if (tenant === undefined || id === undefined) continue
          try {
            if (await ops.destroyDueKey(tenant, id)) log.info({ tenant, keyId: id }, 'key destroyed')
          } catch (err) {
            log.warn({ err, tenant, keyId: id }, 'scheduled destruction failed; will retry')
          }
        }
        after = page.next
      } while (after !== undefined)
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
