/** Input limits of the authz API (documented in authz.proto); oversized input changes nothing. */
import { M2msecError } from '@m2msec/errors'

export const LIMITS = {
  /** Characters of a policy id. */
  policyIdLength: 256,
  /** Characters of an originator, target resource id, role id or group id. */
  idLength: 2048,
  /** Entries of target_policy_ids, role_ids and group_ids in one Check. */
  listEntries: 256,
  batchItems: 1000,
  pageSize: 1000,
  defaultPageSize: 100,
} as const

/** Policy ids: no whitespace or control characters (they are compared exactly). */
const POLICY_ID = /^[^\s\p{Cc}]+$/u

/**
 * Throws ERR_INVALID_ARGUMENT unless `id` is a valid policy id. `index` names a list entry
 * (`field[index]`); the name is built only for the error, since Check runs this per listed id.
 */
export function validatePolicyId(id: string, field = 'policy_id', index?: number): void {
  if (id.length === 0 || id.length > LIMITS.policyIdLength || !POLICY_ID.test(id)) {
    const name = index === undefined ? field : `${field}[${index}]`
    throw new M2msecError(
      'ERR_INVALID_ARGUMENT',
      `${name}: a policy id has 1-${LIMITS.policyIdLength} characters, no whitespace or control characters`,
      { field: name },
    )
  }
}

/** Throws ERR_PAYLOAD_TOO_LARGE when a list has more than `max` entries. */
export function checkCount(field: string, n: number, max: number): void {
  if (n > max) throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `${field}: at most ${max} entries`, { field, max })
}

/** Clamps a requested page size; 0 means the default. */
export function pageSize(requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'page_size must be a non-negative integer', { field: 'page_size' })
  }
  return requested === 0 ? LIMITS.defaultPageSize : Math.min(requested, LIMITS.pageSize)
}
