/**
 * Names of the keys a group uses (docs/groups-protocol.md §3). A key is named by an id and a
 * version; the JOSE `kid` is `<id>#<version>`:
 *
 * - `node:<level>.<position>#<version>`: a key of the logical key hierarchy (level 1 is just
 *   above the members; the root, at the top level, holds the group key). The version is the
 *   epoch in which the node was last rekeyed.
 * - `member:<memberId>#<epoch>`: the key derived from one member's own credential for one
 *   epoch ({@link deriveMemberWrapKey}); only that member and the KMS can compute it.
 */
import { invalidArgument } from '@m2msec/errors'

/** Returns `length` fresh random bytes (node:crypto `randomBytes` in production; seeded in tests). */
export type RandomSource = (length: number) => Uint8Array

/** A versioned key name. */
export interface KeyRef {
  /** `node:<level>.<position>` or `member:<memberId>`. */
  readonly id: string
  /** Node keys: epoch of the last rekey of that node. Member keys: the epoch they wrap for. */
  readonly version: number
}

/** Who can open an envelope: every member below a node, or one member. */
export type Recipient =
  { readonly kind: 'node'; readonly node: string } | { readonly kind: 'member'; readonly member: string }

/** One envelope of a rekey plan, before sealing: which key is wrapped under which. */
export interface EnvelopeSpec {
  /** The key distributed by this envelope. */
  readonly wrapped: KeyRef
  /** The key it is wrapped under (the JWE `kid`). */
  readonly wrappingKey: KeyRef
  readonly recipient: Recipient
  /** True when `wrapped` is the group key of the plan's epoch. */
  readonly groupKey: boolean
}

const NODE_PREFIX = 'node:'
const MEMBER_PREFIX = 'member:'

/**
 * Id of the node key at `level`/`position`.
 *
 * @example
 * ```ts
 * nodeKeyId(3, 5) // 'node:3.5'
 * ```
 */
export function nodeKeyId(level: number, position: number): string {
  return `${NODE_PREFIX}${level}.${position}`
}

/**
 * Id of a member's credential-derived wrap key.
 *
 * @example
 * ```ts
 * memberKeyId('//sp.example/cse1/Cmeter7') // 'member://sp.example/cse1/Cmeter7'
 * ```
 */
export function memberKeyId(memberId: string): string {
  return `${MEMBER_PREFIX}${memberId}`
}

/**
 * JOSE `kid` of a key reference: `<id>#<version>`.
 *
 * @example
 * ```ts
 * formatKid({ id: 'node:1.0', version: 4 }) // 'node:1.0#4'
 * ```
 */
export function formatKid(ref: KeyRef): string {
  return `${ref.id}#${ref.version}`
}

const VERSION_RE = /^(0|[1-9][0-9]{0,15})$/

/**
 * Parses a `kid` written by {@link formatKid}. The version follows the last `#`, so member
 * ids may themselves contain `#`.
 *
 * @example
 * ```ts
 * parseKid('member:m#1#7') // { id: 'member:m#1', version: 7 }
 * ```
 */
export function parseKid(kid: string): KeyRef {
  const at = typeof kid === 'string' ? kid.lastIndexOf('#') : -1
  const version = at > 0 ? kid.slice(at + 1) : ''
  if (!VERSION_RE.test(version) || !Number.isSafeInteger(Number(version))) {
    throw invalidArgument('kid must be <id>#<version>', { field: 'kid' })
  }
  return { id: kid.slice(0, at), version: Number(version) }
}

/** The member id named by a member key id, or undefined for any other id. */
export function memberOfKeyId(id: string): string | undefined {
  return id.startsWith(MEMBER_PREFIX) ? id.slice(MEMBER_PREFIX.length) : undefined
}

/** A key created by a rekey, with its bytes (secret: stays inside the KMS). */
export interface NewKey {
  readonly ref: KeyRef
  readonly key: Uint8Array
}

/**
 * The outcome of one membership change (or of a resync): the new epoch, the keys created,
 * the keys deleted, and the envelopes that give every member exactly the new keys on its
 * path. Envelopes are ordered bottom-up, so a member can open them in one pass.
 */
export interface RekeyPlan {
  readonly groupId: string
  readonly epoch: number
  /** The group key of `epoch`; undefined once the group is empty. */
  readonly groupKey: KeyRef | undefined
  readonly joined: readonly string[]
  readonly left: readonly string[]
  /** Secret: the service passes the plan to {@link sealRekeyPlan} inside the KMS and drops it. */
  readonly newKeys: readonly NewKey[]
  /** Node keys that no longer exist (their node lost its last branch); delete them. */
  readonly droppedKeys: readonly KeyRef[]
  readonly envelopes: readonly EnvelopeSpec[]
  /** Leaf slots written by this change, in order (a slot may appear twice in a batch: last wins). */
  readonly slotChanges: readonly { readonly slot: number; readonly member: string | null }[]
}
