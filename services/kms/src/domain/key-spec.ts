/**
 * Validation and construction shared by every operation that creates a key
 * (CreateKey, ImportKey, UnwrapKey, DeriveKey).
 */
import { M2msecError } from '@m2msec/errors'
import type { CreatedKey, KeyAlgorithm, SecureEnvironment, SeOperation } from '../se/api.ts'
import { KEY_ALGORITHMS } from '../se/api.ts'
import { validateKeyId } from './access.ts'
import { LIMITS, checkSize } from './limits.ts'
import type { Caller, KeyOperation, KeyRecord, UsageRule } from './model.ts'
import { KEY_OPERATIONS, OPERATIONS_BY_ALGORITHM } from './model.ts'
import type { KmsDeps } from './ports.ts'
import { base32Id } from './ids.ts'

/** What a caller asks for when a key is created. */
export interface NewKeySpec {
  readonly keyId?: string
  readonly algorithm: KeyAlgorithm
  readonly purpose?: string
  readonly secureEnvironment?: string
  readonly exportable?: boolean
  readonly usagePolicy?: readonly UsageRule[]
  readonly labels?: Readonly<Record<string, string>>
}

export function validateAlgorithm(algorithm: string): asserts algorithm is KeyAlgorithm {
  if (!(KEY_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'unknown key algorithm', { field: 'algorithm' })
  }
}

/** Checks shape and size; the default policy grants the creator every operation of the algorithm. */
export function resolveUsagePolicy(
  rules: readonly UsageRule[] | undefined,
  algorithm: KeyAlgorithm,
  caller: Caller,
): readonly UsageRule[] {
  if (rules === undefined || rules.length === 0) {
    return [{ principals: [caller.id], operations: OPERATIONS_BY_ALGORITHM[algorithm] }]
  }
  if (rules.length > LIMITS.usageRules) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `at most ${LIMITS.usageRules} usage rules`, { field: 'usage_policy' })
  }
  for (const rule of rules) {
    if (rule.principals.length === 0 || rule.principals.length > LIMITS.principalsPerRule) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', `a usage rule names 1-${LIMITS.principalsPerRule} principals`, {
        field: 'usage_policy.principals',
      })
    }
    for (const p of rule.principals) {
      if (p.length === 0 || p.length > 256) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'a principal entry is 1-256 characters', {
          field: 'usage_policy.principals',
        })
      }
    }
    if (rule.operations.length === 0) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'a usage rule grants at least one operation', {
        field: 'usage_policy.operations',
      })
    }
    for (const op of rule.operations) {
      if (!(KEY_OPERATIONS as readonly string[]).includes(op)) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'unknown key operation', { field: 'usage_policy.operations' })
      }
      if (!OPERATIONS_BY_ALGORITHM[algorithm].includes(op as KeyOperation)) {
        throw new M2msecError('ERR_INVALID_ARGUMENT', `operation ${op} does not apply to ${algorithm} keys`, {
          field: 'usage_policy.operations',
        })
      }
    }
  }
  return rules
}

export function validateLabels(labels: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> {
  const entries = Object.entries(labels ?? {})
  if (entries.length > LIMITS.labels) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `at most ${LIMITS.labels} labels`, { field: 'labels' })
  }
  for (const [k, v] of entries) {
    if (k.length === 0) throw new M2msecError('ERR_INVALID_ARGUMENT', 'label names are not empty', { field: 'labels' })
    checkSize('labels', k + v, LIMITS.labelBytes)
  }
  return Object.fromEntries(entries)
}

/** Checks that `se` offers `algorithm` and `operation`; throws ERR_SE_NOT_SUPPORTED otherwise. */
export function requireSeSupport(se: SecureEnvironment, algorithm: KeyAlgorithm, operation: SeOperation): void {
  if (!se.capabilities.algorithms.includes(algorithm) || !se.capabilities.operations.includes(operation)) {
    throw new M2msecError(
      'ERR_SE_NOT_SUPPORTED',
      `secure environment ${se.name} does not support ${operation} of ${algorithm}`,
      {
        secureEnvironment: se.name,
        algorithm,
        operation,
      },
    )
  }
}

/** Validates a spec and returns the fields every new key needs. */
export function prepareNewKey(deps: KmsDeps, caller: Caller, spec: NewKeySpec) {
  validateAlgorithm(spec.algorithm)
  const keyId = spec.keyId === undefined || spec.keyId === '' ? base32Id(deps.random) : spec.keyId
  validateKeyId(keyId)
  checkSize('purpose', spec.purpose ?? '', LIMITS.purposeBytes)
  const se = deps.ses.get(
    spec.secureEnvironment === undefined || spec.secureEnvironment === ''
      ? deps.ses.defaultName
      : spec.secureEnvironment,
  )
  return {
    keyId,
    se,
    usagePolicy: resolveUsagePolicy(spec.usagePolicy, spec.algorithm, caller),
    labels: validateLabels(spec.labels),
  }
}

/**
 * Stores a freshly created SE key as version 1 of a new key record. If the id is taken the
 * SE material is destroyed again, so a failed create leaves nothing behind.
 */
export async function storeNewKey(
  deps: KmsDeps,
  caller: Caller,
  spec: NewKeySpec,
  prepared: ReturnType<typeof prepareNewKey>,
  created: CreatedKey,
): Promise<KeyRecord> {
  const now = deps.clock.now().toISOString()
  const record: KeyRecord = {
    tenant: caller.tenant,
    id: prepared.keyId,
    algorithm: spec.algorithm,
    purpose: spec.purpose ?? '',
    state: 'ENABLED',
    secureEnvironment: prepared.se.name,
    exportable: spec.exportable === true,
    primaryVersion: 1,
    versions: [
      {
        version: 1,
        ref: created.ref,
        createdAt: now,
        ...(created.publicKey === undefined
          ? {}
          : { publicKeySpki: Buffer.from(created.publicKey).toString('base64') }),
      },
    ],
    usagePolicy: prepared.usagePolicy,
    labels: prepared.labels,
    createdAt: now,
    updatedAt: now,
    createdBy: caller.id,
  }
  try {
    await deps.keys.create(record)
  } catch (err) {
    await prepared.se.destroyKey({ ref: created.ref, algorithm: spec.algorithm }).catch(() => undefined)
    throw err
  }
  publishInBackground(deps, {
    type: 'key.created',
    tenant: caller.tenant,
    keyId: record.id,
    algorithm: record.algorithm,
  })
  return record
}

/** Events are best effort after the write: a failure is reported, never thrown. */
export function publishInBackground(deps: KmsDeps, event: Parameters<KmsDeps['events']['publish']>[0]): void {
  deps.events.publish(event).catch((err: unknown) => deps.onBackgroundError?.(err))
}
