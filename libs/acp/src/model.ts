/**
 * oneM2M access-control data types, mirroring TS-0004 §6.3.5.26–28 (m2m:setOfAcrs,
 * m2m:accessControlRule, m2m:locationRegion) and TS-0001 §9.6.2 (<accessControlPolicy>).
 *
 * Field names are the TS-0004 long element names; `parse.ts` also accepts the oneM2M
 * short names (`pv`, `acr`, `acor`, ...) that a CSE or a token's `tkps` claim carries.
 */

/** accessControlOperations bits, TS-0004 table 6.3.4.2.29-1. */
export const OPERATION_BITS = {
  create: 1,
  retrieve: 2,
  update: 4,
  delete: 8,
  notify: 16,
  /** A RETRIEVE with filterUsage = discovery; it has its own bit and does not need RETRIEVE. */
  discovery: 32,
} as const

/** A requested operation as the access decision sees it (TS-0003 §7.1.2 "Operation"). */
export type Operation = keyof typeof OPERATION_BITS

/** Every operation bit set (C+R+U+D+N+Discovery). */
export const ALL_OPERATIONS = 63

/** `m2m:locationRegion`: an xs:choice of a country-code list or one circle. */
export type LocationRegion =
  | { readonly countryCode: readonly string[] }
  /** [latitude ±90°, longitude ±180°, radius in metres]. */
  | { readonly circRegion: readonly [number, number, number] }

/** accessControlContexts/accessControlIpAddresses: CIDR blocks (a bare address is a /32 or /128). */
export interface AccessControlIpAddresses {
  readonly ipv4Addresses?: readonly string[]
  readonly ipv6Addresses?: readonly string[]
}

/** One element of accessControlContexts; an absent element admits any request value. */
export interface AccessControlContext {
  /** m2m:scheduleEntry strings: 7-field extended crontab, matched in UTC. */
  readonly accessControlWindow?: readonly string[]
  readonly accessControlIpAddresses?: AccessControlIpAddresses
  readonly accessControlLocationRegion?: LocationRegion
}

/** One element of accessControlObjectDetails (TS-0003 table 7.1.3-4); CREATE only. */
export interface AccessControlObjectDetails {
  /** Resource type of the targeted (parent) resource. */
  readonly resourceType?: number
  /** mgmtDefinition or containerDefinition, as a string. */
  readonly specializationType?: string
  /** Resource types that may be created as children. */
  readonly childResourceType: readonly number[]
}

/** `m2m:accessControlRule`. */
export interface AccessControlRule {
  /** SP domains (`//sp.example`), CSE-IDs, AE-IDs (with `*`), group ids, role ids, or `all`. */
  readonly accessControlOriginators: readonly string[]
  /** Bit mask of OPERATION_BITS, 1..63. */
  readonly accessControlOperations: number
  readonly accessControlContexts?: readonly AccessControlContext[]
  /** Absent means false (TS-0003 §7.1.3). */
  readonly accessControlAuthenticationFlag?: boolean
  readonly accessControlObjectDetails?: readonly AccessControlObjectDetails[]
}

/** `m2m:setOfAcrs`. */
export interface SetOfAcrs {
  readonly accessControlRule: readonly AccessControlRule[]
}

/**
 * An `<accessControlPolicy>` as the decision engine needs it.
 *
 * @example
 * ```ts
 * const acp: AccessControlPolicy = {
 *   id: 'acp-1',
 *   privileges: { accessControlRule: [{ accessControlOriginators: ['all'], accessControlOperations: 2 }] },
 *   selfPrivileges: { accessControlRule: [{ accessControlOriginators: ['/cse-admin'], accessControlOperations: 63 }] },
 * }
 * ```
 */
export interface AccessControlPolicy {
  /** The policy's resource id, as listed in a resource's accessControlPolicyIDs. */
  readonly id: string
  readonly privileges: SetOfAcrs
  /** Must contain at least one rule ([TS4] §7.4.2.2.3). */
  readonly selfPrivileges: SetOfAcrs
}
