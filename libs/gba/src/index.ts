/**
 * @m2msec/gba: the pure protocol core of GBA bootstrapping over Ub (3GPP TS 33.220,
 * TS 24.109; HTTP Digest AKA per RFC 2617 / RFC 3310). No I/O: the BSF service and the
 * SDK wrap it.
 *
 * - digest.ts: Digest header parse/format, request-digest and rspauth
 * - ub.ts: BSF side (challenge, verifyResponse, authenticationInfo)
 * - bootstrapping-info.ts: the 200 OK XML body, format and bounded parse
 * - usim.ts: a simulated USIM (K, OPc, Annex C SQN array)
 * - ue.ts: UE side (initial request, answer, rspauth check, session)
 * - keys.ts: Ks_NAF from a session
 */
export * from './digest.ts'
export * from './bootstrapping-info.ts'
export * from './keys.ts'
export * from './ub.ts'
export * from './usim.ts'
export * from './ue.ts'
