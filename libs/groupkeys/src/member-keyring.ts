/**
 * The member side of key distribution: holds the node keys on the member's path and opens
 * the envelopes relayed to it, bottom-up, until it has the new group key.
 */
import { isM2msecError } from '@m2msec/errors'
import { assertId } from './encoding.ts'
import { openEnvelope, readEnvelopeHeader, type EnvelopeHeader } from './envelope.ts'
import { formatKid, memberKeyId, parseKid } from './key-ids.ts'

/** Options of {@link createMemberKeyRing}. */
export interface MemberKeyRingOptions {
  readonly groupId: string
  readonly memberId: string
  /** This member's wrap key for an epoch: `deriveMemberWrapKey(ownCredential, groupId, epoch)`. */
  readonly wrapKeyFor: (epoch: number) => Uint8Array
}

/** The group key a member holds. */
export interface HeldGroupKey {
  readonly epoch: number
  /** `node:<level>.0#<epoch>`: the root key that is the group key. */
  readonly kid: string
  readonly key: Uint8Array
}

/** Outcome of {@link MemberKeyRing.accept}. */
export interface AcceptResult {
  /** Envelopes opened (each gave one key). */
  readonly opened: number
  /** Envelopes addressed to a key this member holds that did not open (tampered or forged). */
  readonly rejected: number
}

/** Keys of one member of one group. */
export interface MemberKeyRing {
  /** Opens every envelope this member can (any order; unrelated ones are ignored). */
  accept(envelopes: readonly string[]): Promise<AcceptResult>
  /** The newest group key opened so far. */
  groupKey(): HeldGroupKey | undefined
  /** True when the ring holds exactly this `<id>#<version>`. */
  has(kid: string): boolean
  /** The `kid`s of every node key held (newest version per node). */
  kids(): string[]
}

/**
 * Creates a member's key ring.
 *
 * @example
 * ```ts
 * const ring = createMemberKeyRing({ groupId, memberId: 'm7',
 *   wrapKeyFor: (e) => deriveMemberWrapKey(credential, groupId, e) })
 * await ring.accept(envelopesFromGateway)
 * const gk = ring.groupKey() // { epoch, key } for opening broadcasts
 * ```
 */
export function createMemberKeyRing(options: MemberKeyRingOptions): MemberKeyRing {
  assertId(options.groupId, 'groupId')
  assertId(options.memberId, 'memberId')
  const ownId = memberKeyId(options.memberId)
  /** Node id -> newest version held and its bytes. */
  const held = new Map<string, { version: number; key: Uint8Array }>()
  let group: HeldGroupKey | undefined

  const wrappingKeyFor = (kid: string): Uint8Array | undefined => {
    const ref = parseKid(kid)
    if (ref.id === ownId) return options.wrapKeyFor(ref.version)
    const h = held.get(ref.id)
    return h !== undefined && h.version === ref.version ? h.key : undefined
  }

  const store = (header: EnvelopeHeader, key: Uint8Array): void => {
    const ref = parseKid(header.wkid)
    const current = held.get(ref.id)
    if (current === undefined || current.version < ref.version) held.set(ref.id, { version: ref.version, key })
    if (header.gk === true && ref.version === header.epoch && (group === undefined || group.epoch < header.epoch)) {
      group = { epoch: header.epoch, kid: header.wkid, key }
    }
  }

  return {
    async accept(envelopes) {
      const pending: { jwe: string; header: EnvelopeHeader }[] = []
      for (const jwe of envelopes) {
        try {
          const header = readEnvelopeHeader(jwe)
          if (header.gid === options.groupId) pending.push({ jwe, header })
        } catch {
          // Not an envelope of this protocol: the relay may carry other traffic.
        }
      }
      let opened = 0
      let rejected = 0
      for (let progress = true; progress && pending.length > 0;) {
        progress = false
        for (let i = 0; i < pending.length;) {
          const { jwe, header } = pending[i]!
          const kek = wrappingKeyFor(header.kid)
          if (kek === undefined) {
            i++
            continue
          }
          pending.splice(i, 1)
          try {
            const { header: authentic, key } = await openEnvelope(jwe, kek)
            store(authentic, key)
            opened++
            progress = true
          } catch (err) {
            if (!isM2msecError(err) || err.code !== 'ERR_CIPHERTEXT_INVALID') throw err
            rejected++
          }
        }
      }
      return { opened, rejected }
    },
    groupKey: () => group,
    has(kid) {
      const ref = parseKid(kid)
      return held.get(ref.id)?.version === ref.version
    },
    kids: () => [...held].map(([id, h]) => formatKid({ id, version: h.version })),
  }
}
