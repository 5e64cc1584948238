import type { SeCapabilities, SeType, ProtectionLevel } from '../../se/api.ts'
import type { KmsDeps } from '../ports.ts'

export interface SecureEnvironmentInfo {
  readonly name: string
  readonly type: SeType
  readonly protectionLevel: ProtectionLevel
  readonly capabilities: SeCapabilities
  readonly isDefault: boolean
}

/** ListSecureEnvironments: what each configured SE offers (any authenticated caller). */
export function listSecureEnvironments(deps: KmsDeps): SecureEnvironmentInfo[] {
  return deps.ses.list().map((se) => ({
    name: se.name,
    type: se.type,
    protectionLevel: se.protectionLevel,
    capabilities: se.capabilities,
    isDefault: se.name === deps.ses.defaultName,
  }))
}
