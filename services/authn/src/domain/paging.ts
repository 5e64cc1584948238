/** Paging rules shared by the List RPCs: size 0 = 100, at most 1000; opaque page tokens. */
import { M2msecError } from '@m2msec/errors'

/** The effective page size; ERR_INVALID_ARGUMENT when negative. */
export function pageSize(requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'page_size must not be negative', { field: 'page_size' })
  }
  return requested === 0 ? 100 : Math.min(requested, 1000)
}

/** The id a page token continues after (the token is base64url of that id). */
export function afterOf(pageToken: string): { after?: string } {
  if (pageToken === '') return {}
  const after = Buffer.from(pageToken, 'base64url').toString('utf8')
  if (after === '' || Buffer.from(after, 'utf8').toString('base64url') !== pageToken) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'page_token is malformed', { field: 'page_token' })
  }
  return { after }
}

/** The page token that continues after `next`. */
export function tokenOf(next: string | undefined): string | undefined {
  return next === undefined ? undefined : Buffer.from(next, 'utf8').toString('base64url')
}
