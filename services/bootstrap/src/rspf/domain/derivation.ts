/**
 * Which key the MEF derives from Ke for an Enrolment Target and SUID, and the exact HMAC
 * input (TS-0003 §10.3.2, §10.3.3, §10.3.7). The KMS computes HMAC-SHA-256(Ke, input) into a
 * new key handle (DeriveKey `hmac_sha256`), so Ke never leaves it; the Enrolee computes the
 * same HMAC locally with `@m2msec/crypto` (`deriveKm`, `deriveKpsa`,
 * `deriveUsageConstrainedKey`). Pure: no I/O.
 */
import { createHash } from 'node:crypto'
import {
  concatBytes,
  KM_DERIVATION_LABEL,
  KPSA_DERIVATION_LABEL,
  USAGE_CONSTRAINED_KEY_LABEL,
  utf8Nfkc,
} from '@m2msec/crypto'
import { invalidArgument } from '@m2msec/errors'
import { absoluteIdToFqdn, assertFqdn, type RspfSuid } from './ids.ts'

/**
 * An Enrolment Target: a MAF named by its FQDN (= MAF-ID), or a CSE / AE named by its
 * Absolute CSE-ID / AE-ID (`//<SP-ID>/<CSE-ID>[/<AE-ID>]`).
 */
export type EnrolmentTarget =
  { readonly kind: 'maf'; readonly fqdn: string } | { readonly kind: 'cse' | 'ae'; readonly absoluteId: string }

/** The name an enrolee's configuration uses for a target: the MAF FQDN or the Absolute ID. */
export function targetName(target: EnrolmentTarget): string {
  return target.kind === 'maf' ? target.fqdn : target.absoluteId
}

/**
 * The Enrolment-Target-ID of §10.3.7 (an FQDN): the MAF's FQDN, or the FQDN form of the
 * Absolute CSE-ID / AE-ID. It is also the NAF FQDN of GBA-based RSPF (Annex A).
 *
 * @example
 * ```ts
 * targetFqdn({ kind: 'cse', absoluteId: '//sp.example.com/in-cse' }) // 'in-cse.sp.example.com'
 * ```
 */
export function targetFqdn(target: EnrolmentTarget): string {
  if (target.kind === 'maf') {
    assertFqdn(target.fqdn, 'target.fqdn')
    return target.fqdn
  }
  return absoluteIdToFqdn(target.absoluteId)
}

/** What the MEF derives for one (target, SUID). */
export interface Derivation {
  /** `km` (§10.3.2), `kpsa` (§10.3.3) or `usage-constrained` (§10.3.7). */
  readonly kind: 'km' | 'kpsa' | 'usage-constrained'
  /** The HMAC-SHA-256 input (label || ids); the key is HMAC-SHA-256(Ke, data). */
  readonly data: Uint8Array
}

const ascii = (s: string) => new TextEncoder().encode(s)

/**
 * The derivation for a target and SUID:
 * - SUID 21 (key for a MAF): Km = HMAC(Ke, "oneM2M Enrolment Key to Master Credential
 *   derivation" || MAF-ID); the target must be a MAF.
 * - SUID 22 (key for a SAEF): Kpsa = HMAC(Ke, "oneM2M Enrolment Key to Provisioned Secure
 *   Connection Key derivation" || CSE-ID/AE-ID of the target); target CSE or AE.
 * - SUID 23, 24, 25 (ESPrim, ESData): HMAC(Ke, "oneM2M Enrolment Key to Usage-Constrained
 *   Symmetric Key derivation" || SUID || Enrolment-Target-ID), SUID as two ASCII digits.
 * Ids are UTF-8 of their NFKC form.
 *
 * @example
 * ```ts
 * const { kind, data } = derivationFor({ kind: 'maf', fqdn: 'maf.example.com' }, 21)
 * // kind 'km'; HMAC-SHA-256(ke, data) equals deriveKm(ke, 'maf.example.com')
 * ```
 */
export function derivationFor(target: EnrolmentTarget, suid: RspfSuid): Derivation {
  if (suid === 21) {
    if (target.kind !== 'maf') throw invalidArgument('SUID 21 keys are for a MAF only', { field: 'suid' })
    return { kind: 'km', data: concatBytes(ascii(KM_DERIVATION_LABEL), utf8Nfkc(targetFqdn(target))) }
  }
  if (suid === 22) {
    if (target.kind === 'maf') throw invalidArgument('SUID 22 keys are for a CSE or AE', { field: 'suid' })
    targetFqdn(target) // validates the Absolute ID
    return { kind: 'kpsa', data: concatBytes(ascii(KPSA_DERIVATION_LABEL), utf8Nfkc(target.absoluteId)) }
  }
  return {
    kind: 'usage-constrained',
    data: concatBytes(ascii(USAGE_CONSTRAINED_KEY_LABEL), ascii(String(suid)), utf8Nfkc(targetFqdn(target))),
  }
}

/**
 * KMS key id of the Ke handle of an enrolment (unique per RelativeKeID within a tenant).
 *
 * @example
 * ```ts
 * keKeyId('00112233445566778899aabbccddeeff') // 'rspf-ke-00112233445566778899aabbccddeeff'
 * ```
 */
export function keKeyId(relativeHex: string): string {
  return `rspf-ke-${relativeHex}`
}

/**
 * KMS key id of a key derived from Ke for (SUID, target): deterministic, so a second
 * fetchCredentials re-wraps the same handle instead of deriving again.
 */
export function derivedKeyId(relativeHex: string, suid: RspfSuid, target: EnrolmentTarget): string {
  const t = createHash('sha256')
    .update(`${target.kind}:${targetName(target)}`)
    .digest('hex')
    .slice(0, 16)
  return `rspf-${suid}-${relativeHex}-${t}`
}
