/**
 * The member side of the key derivations of docs/groups-protocol.md §3 and §6.6, from the
 * member's own credential (the same bytes the platform holds as a KMS HMAC key):
 *
 * - `KM = HKDF(credential, "", fields(LABEL_member-wrap-key, groupId))` and the wrap key of an
 *   epoch `KW = HKDF-Expand(KM, fields(LABEL_member-wrap-key, groupId, epoch), 32)`;
 * - `KA = HKDF(credential, "", fields(LABEL_member-auth-key, groupId))` (answers, session keys);
 * - the confirmation tag of a session key, which the KMS returns with the verdict.
 */
import { createHmac } from 'node:crypto'
import { constantTimeEqual } from '@m2msec/crypto'
import { invalidArgument } from '@m2msec/errors'
import { deriveMemberAuthKey, deriveMemberWrapBaseKey, deriveMemberWrapKey, encodeFields } from '@m2msec/groupkeys'

/** Label of the session-key confirmation tag. */
export const SESSION_CONFIRM_LABEL = 'm2msec/groups/v1/session-confirm'

function checkCredential(credential: Uint8Array): void {
  if (!(credential instanceof Uint8Array) || credential.length < 16) {
    throw invalidArgument('credential must be at least 16 bytes', { field: 'credential' })
  }
}

/**
 * KM: the member's per-group wrap base key (the KMS keeps it as a derived key handle); the
 * library's derivation, so member and KMS cannot drift apart.
 *
 * @example
 * ```ts
 * const km = memberWrapBaseKey(credential, 'meters')
 * ```
 */
export function memberWrapBaseKey(credential: Uint8Array, groupId: string): Uint8Array {
  return deriveMemberWrapBaseKey(credential, groupId)
}

/**
 * KW(member, epoch): the key the member's envelopes of `epoch` are wrapped under (JWE A256KW).
 *
 * @example
 * ```ts
 * const ring = createMemberKeyRing({ groupId, memberId, wrapKeyFor: (e) => memberWrapKey(credential, groupId, e) })
 * ```
 */
export function memberWrapKey(credential: Uint8Array, groupId: string, epoch: number): Uint8Array {
  return deriveMemberWrapKey(credential, groupId, epoch)
}

/** KA: the member's group authentication key (answers to challenges; base of session keys). */
export function memberAuthKey(credential: Uint8Array, groupId: string): Uint8Array {
  checkCredential(credential)
  return deriveMemberAuthKey(credential, groupId)
}

/**
 * The tag that proves the server derived the same session key SK for this authentication:
 * HMAC(SK, fields(LABEL_session-confirm, challenge, groupId, memberId, nonce)).
 */
export function sessionConfirmTag(
  sessionKey: Uint8Array,
  challenge: Uint8Array,
  groupId: string,
  memberId: string,
  nonce: Uint8Array,
): Uint8Array {
  return new Uint8Array(
    createHmac('sha256', sessionKey)
      .update(encodeFields(SESSION_CONFIRM_LABEL, challenge, groupId, memberId, nonce))
      .digest(),
  )
}

/** Constant-time check of a confirmation tag. */
export function checkSessionConfirmTag(expected: Uint8Array, received: Uint8Array): boolean {
  return received instanceof Uint8Array && constantTimeEqual(expected, received)
}
