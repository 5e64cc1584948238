/**
 * The configured secure environments as the domain's `SecureEnvironments` port.
 */
import { M2msecError } from '@m2msec/errors'
import type { SecureEnvironments } from '../domain/ports.ts'
import type { SeConfig } from './config.ts'
import { createSecureEnvironments as createAll } from './registry.ts'

export async function createSecureEnvironments(
  configs: readonly SeConfig[],
  defaultName?: string,
): Promise<SecureEnvironments & { close(): Promise<void> }> {
  const list = await createAll(configs)
  const byName = new Map(list.map((se) => [se.name, se]))
  const first = list[0]
  if (first === undefined) throw new M2msecError('ERR_CONFIG_INVALID', 'no secure environment configured')
  return {
    defaultName: defaultName ?? first.name,
    get(name) {
      const se = byName.get(name)
      if (se === undefined) {
        throw new M2msecError('ERR_SE_NOT_FOUND', 'no secure environment with this name', { secureEnvironment: name })
      }
      return se
    },
    list: () => list,
    async close() {
      await Promise.allSettled(list.map((se) => se.close()))
    },
  }
}
