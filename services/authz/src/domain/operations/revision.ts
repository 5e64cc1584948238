/** Compare-and-set helpers shared by PutPolicy and DeletePolicy. */
import { invalidArgument } from '@m2msec/errors'

/** Attempts of an unconditional write that keeps losing races to other writers. */
export const MAX_WRITE_ATTEMPTS = 5

/** Throws ERR_INVALID_ARGUMENT unless `expected` is absent or a non-negative safe integer. */
export function checkExpectedRevision(expected: number | undefined): void {
  if (expected !== undefined && (!Number.isSafeInteger(expected) || expected < 0)) {
    throw invalidArgument('expected_revision must be a non-negative integer', { field: 'expected_revision' })
  }
}
