/**
 * Ends the KMS keys of what expired: sessions past their lifetime (Ks and every Ks_NAF
 * handle) and challenges nobody answered (their Ks). The keys are scheduled for destruction
 * in the KMS and the records removed (sessions) or marked retired (challenges, which the
 * bucket TTL removes later). Every replica may sweep; revision checks make it safe.
 */
import { isM2msecError } from '@m2msec/errors'
import type { GbaDeps } from './context.ts'
import { retireKeyInBackground } from './context.ts'

/** One pass over both buckets; returns how many sessions and challenges were retired. */
export async function sweepExpired(deps: GbaDeps): Promise<{ sessions: number; challenges: number }> {
  const now = deps.clock.now().getTime()
  let sessions = 0
  let challenges = 0
  let after: string | undefined
  do {
    const page = await deps.stores.sessions.list('', { limit: 500, ...(after === undefined ? {} : { after }) })
    for (const item of page.items) {
      const s = item.value
      if (Date.parse(s.expiresAt) > now) continue
      try {
        await deps.stores.sessions.delete(item.key, item.revision)
      } catch (err) {
        if (isM2msecError(err) && err.code === 'ERR_REVISION_CONFLICT') continue
        throw err
      }
      for (const keyId of [s.ksKeyId, ...s.nafKeyIds]) retireKeyInBackground(deps, s.tenant, keyId)
      sessions++
    }
    after = page.next
  } while (after !== undefined)
  after = undefined
  do {
    const page = await deps.stores.challenges.list('', { limit: 500, ...(after === undefined ? {} : { after }) })
    for (const item of page.items) {
      const c = item.value
      if (c.used || c.retired === true || c.expiresAt > now) continue
      try {
        await deps.stores.challenges.update(item.key, { ...c, used: true, retired: true }, item.revision)
      } catch (err) {
        if (isM2msecError(err) && err.code === 'ERR_REVISION_CONFLICT') continue
        throw err
      }
      retireKeyInBackground(deps, c.tenant, c.ksKeyId)
      challenges++
    }
    after = page.next
  } while (after !== undefined)
  return { sessions, challenges }
}

/** Runs {@link sweepExpired} every `intervalMs`; returns the stop function. */
export function startGbaSweeper(deps: GbaDeps, intervalMs: number, onError: (err: unknown) => void): () => void {
  let running = false
  const timer = setInterval(() => {
    if (running) return
    running = true
    sweepExpired(deps)
      .catch(onError)
      .finally(() => {
        running = false
      })
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
