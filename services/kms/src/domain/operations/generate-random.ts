import { M2msecError } from '@m2msec/errors'
import { audited } from '../audit.ts'
import { LIMITS } from '../limits.ts'
import type { Caller } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** GenerateRandom: 1..1024 bytes from the platform CSPRNG. */
export async function generateRandom(deps: KmsDeps, caller: Caller, length: number): Promise<Uint8Array> {
  return audited(deps, caller, { action: 'kms.GenerateRandom', resource: 'random', details: { length } }, async () => {
    if (!Number.isInteger(length) || length < 1 || length > LIMITS.randomBytes) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', `length must be 1-${LIMITS.randomBytes}`, { field: 'length' })
    }
    return deps.random.bytes(length)
  })
}
