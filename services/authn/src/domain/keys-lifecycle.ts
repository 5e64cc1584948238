/**
 * The end of KMS keys authn created for a limited time (session keys, MAF keys): they are
 * scheduled for destruction, which makes them unusable at once; the KMS destroys the
 * material after its minimum delay.
 */
import { isM2msecError } from '@m2msec/errors'
import type { AuthnDeps } from './ports.ts'

/** Delay before the KMS destroys the material: above its one-minute minimum, with clock skew room. */
const DESTROY_DELAY_MS = 120_000

/** Schedules destruction of a key; a key that is gone or destroyed already counts as done. */
export async function retireKmsKey(deps: Pick<AuthnDeps, 'kms' | 'clock'>, tenant: string, keyId: string) {
  try {
    await deps.kms.scheduleDestruction(tenant, keyId, new Date(deps.clock.now().getTime() + DESTROY_DELAY_MS))
  } catch (err) {
    if (isM2msecError(err) && (err.code === 'ERR_KEY_NOT_FOUND' || err.code === 'ERR_KEY_DESTROYED')) return
    throw err
  }
}
