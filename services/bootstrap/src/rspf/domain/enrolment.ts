/**
 * Enrolees, enrolments and the fetchCredentials authorization rule (TS-0003 §8.3.2.1
 * "Use by Enrolment Target"). Pure: no I/O; the clock is passed in.
 */
import { M2msecError } from '@m2msec/errors'
import type { EnrolmentTarget } from './derivation.ts'
import { targetName } from './derivation.ts'
import type { RspfSuid } from './ids.ts'

/** How an Enrolee authenticates in the MEF Handshake. */
export type EnroleeCredential =
  /** Pre-provisioned symmetric key Kpm, TLS psk_identity = KpmID (§8.3.2.1). */
  | { readonly kind: 'psk'; readonly kpmId: string }
  /** Certificate (§8.3.2.2): one subjectAltName entry that must appear in the client cert, e.g. `URI:…` or `DNS:…`. */
  | { readonly kind: 'certificate'; readonly subjectAltName: string }

/** An Enrolee as the administrating stakeholder configured it ("Bootstrap Instruction Configuration"). */
export interface Enrolee {
  /** Tenant whose KMS keys and enrolments the Enrolee's keys belong to. */
  readonly tenant: string
  /** The Enrolee's CSE-ID or AE-ID, returned to Enrolment Targets. */
  readonly enroleeId: string
  readonly credential: EnroleeCredential
  /** Which targets may fetch which usage-constrained keys (SUIDs). */
  readonly targets: readonly { readonly target: string; readonly suids: readonly RspfSuid[] }[]
  /** Enrolment Expiry (§10.7): lifetime of Ke, seconds. */
  readonly lifetimeSec: number
}

/** A configured Enrolment Target and how it is recognised when it calls fetchCredentials. */
export interface TargetRegistration {
  readonly target: EnrolmentTarget
  /** The authenticated principal (tenant and id) that acts as this target. */
  readonly principal: { readonly tenant: string; readonly id: string }
  /** EC P-256 public JWK (JSON text) the credential is wrapped for (JWE ECDH-ES+A256KW). */
  readonly publicJwk: string
}

/** A successful MEF Handshake: Ke lives in the KMS as `keKeyId`. */
export interface EnrolmentRecord {
  readonly tenant: string
  readonly keId: string
  readonly relativeHex: string
  readonly keKeyId: string
  readonly enroleeId: string
  /** Credential-ID (§10.4) of the credential used in the handshake, e.g. `10-<KpmID>`. */
  readonly credentialId: string
  readonly createdAt: string
  readonly expiresAt: string
}

/**
 * Credential-ID (§10.4) of an Enrolee credential: `10-<KpmID>` for a pre-provisioned MEF key,
 * `31-<subjectAltName value>` for a certificate (31 = device certificate; the SAN type prefix
 * is dropped).
 */
export function credentialIdOf(credential: EnroleeCredential): string {
  if (credential.kind === 'psk') return `10-${credential.kpmId}`
  return `31-${credential.subjectAltName.replace(/^[A-Za-z ]+:/, '')}`
}

/** Ke's expiry for a handshake at `now`. */
export function enrolmentExpiry(enrolee: Enrolee, now: Date): Date {
  return new Date(now.getTime() + enrolee.lifetimeSec * 1000)
}

/**
 * Checks that `target` may fetch the `suid` key of `enrolment` at `now`. The enrolment must
 * be the target's tenant's (another tenant's KeID is ERR_NOT_FOUND, like an unknown one), not
 * expired (ERR_NOT_FOUND: the key is gone for good), and the Enrolee's configuration must list
 * the target with this SUID (ERR_PERMISSION_DENIED).
 */
export function authorizeFetch(args: {
  readonly enrolment: EnrolmentRecord | undefined
  readonly enrolee: Enrolee | undefined
  readonly target: TargetRegistration
  readonly suid: RspfSuid
  readonly now: Date
}): { enrolment: EnrolmentRecord; enrolee: Enrolee } {
  const { enrolment, enrolee, target, suid, now } = args
  if (enrolment === undefined || enrolment.tenant !== target.principal.tenant || enrolee === undefined) {
    throw new M2msecError('ERR_NOT_FOUND', 'no enrolment with this KeID')
  }
  if (Date.parse(enrolment.expiresAt) <= now.getTime()) {
    throw new M2msecError('ERR_NOT_FOUND', 'the enrolment expired')
  }
  const name = targetName(target.target)
  const grant = enrolee.targets.find((t) => t.target === name)
  if (grant === undefined || !grant.suids.includes(suid)) {
    throw new M2msecError('ERR_PERMISSION_DENIED', 'this target may not fetch this credential', { suid })
  }
  return { enrolment, enrolee }
}
