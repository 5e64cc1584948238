/**
 * Secure group broadcast (TR-0012 §5.2.3), docs/groups-protocol.md §7: a command is signed
 * by its sender (JWS compact, ES256), then encrypted under the group key of the current
 * epoch (JWE compact, `dir`, A256GCM). Both protected headers carry group id, epoch, sender
 * and sequence number; the signed copy is authoritative, so a member that holds the group
 * key still cannot re-encrypt someone's old command under a new epoch or number. Receivers
 * keep one anti-replay window per sender and accept only the current epoch.
 */
import type { KeyObject, webcrypto } from 'node:crypto'
import { CompactEncrypt, CompactSign, compactDecrypt, compactVerify, decodeProtectedHeader } from 'jose'
import { assertLength } from '@m2msec/crypto'
import { invalidArgument, M2msecError } from '@m2msec/errors'
import { assertCount, assertId } from './encoding.ts'
import { ReplayWindow } from './replay-window.ts'

/** JWS `typ` of a group command, so no other ES256 signature of the sender passes as one. */
export const COMMAND_TYPE = 'm2msec-group-command'

const DEFAULT_MAX_BYTES = 64 * 1024

/** A signing or verification key jose accepts for ES256. */
export type Es256Key = webcrypto.CryptoKey | KeyObject

/** The group key of one epoch. */
export interface GroupKeyEpoch {
  readonly epoch: number
  readonly key: Uint8Array
}

/** Options of {@link createBroadcastSender}. */
export interface BroadcastSenderOptions {
  readonly groupId: string
  readonly senderId: string
  /** The sender's P-256 private key. */
  readonly signingKey: Es256Key
  /** Milliseconds since the epoch (injected clock). */
  readonly now: () => number
  /** First sequence number (default 0). Persist `nextSeq` across restarts. */
  readonly firstSeq?: number
}

/** Seals commands for one group from one sender. */
export interface BroadcastSender {
  /** The sequence number the next {@link BroadcastSender.seal} will use. */
  readonly nextSeq: number
  /** Signs then encrypts `payload` under `groupKey`; uses and advances `nextSeq`. */
  seal(payload: Uint8Array, groupKey: GroupKeyEpoch): Promise<string>
}

/**
 * Creates a sender.
 *
 * @example
 * ```ts
 * const sender = createBroadcastSender({ groupId, senderId: 'app-1', signingKey, now: Date.now })
 * const jwe = await sender.seal(new TextEncoder().encode('{"cmd":"open"}'), { epoch: 12, key: gk })
 * ```
 */
export function createBroadcastSender(options: BroadcastSenderOptions): BroadcastSender {
  assertId(options.groupId, 'groupId')
  assertId(options.senderId, 'senderId')
  let seq = options.firstSeq ?? 0
  assertCount(seq, 'firstSeq')
  return {
    get nextSeq() {
      return seq
    },
    async seal(payload, groupKey) {
      if (!(payload instanceof Uint8Array)) throw invalidArgument('payload must be a Uint8Array', { field: 'payload' })
      assertCount(groupKey.epoch, 'epoch')
      assertLength(groupKey.key, 32, 'groupKey')
      const mySeq = seq++
      const common = { gid: options.groupId, epoch: groupKey.epoch, seq: mySeq }
      const jws = await new CompactSign(payload)
        .setProtectedHeader({
          alg: 'ES256',
          typ: COMMAND_TYPE,
          kid: options.senderId,
          ...common,
          iat: Math.floor(options.now() / 1000),
        })
        .sign(options.signingKey)
      return new CompactEncrypt(new TextEncoder().encode(jws))
        .setProtectedHeader({
          alg: 'dir',
          enc: 'A256GCM',
          cty: 'JOSE',
          kid: `gk#${groupKey.epoch}`,
          snd: options.senderId,
          ...common,
        })
        .encrypt(groupKey.key)
    },
  }
}

/** Options of {@link createBroadcastReceiver}. */
export interface BroadcastReceiverOptions {
  readonly groupId: string
  /** The verification key of a sender allowed to command this group, or undefined. */
  readonly senderKey: (senderId: string) => Es256Key | undefined | Promise<Es256Key | undefined>
  /** Milliseconds since the epoch (injected clock). */
  readonly now: () => number
  /** Anti-replay window per sender (default 64). */
  readonly windowSize?: number
  /** When set, commands whose `iat` is further than this from `now` are refused. */
  readonly maxAgeMs?: number
  /** Largest JWE accepted, in characters (default 64 KiB). */
  readonly maxBytes?: number
}

/** A command that passed every check. */
export interface OpenedBroadcast {
  readonly senderId: string
  readonly seq: number
  readonly epoch: number
  /** `iat` of the signature, in ms. */
  readonly issuedAt: number
  readonly payload: Uint8Array
}

/** The receiving side of one member. */
export interface BroadcastReceiver {
  /** The current epoch, undefined before the first key. */
  readonly epoch: number | undefined
  /** Installs the key of a newer epoch (returns false and changes nothing for an older one). */
  setGroupKey(groupKey: GroupKeyEpoch): boolean
  /**
   * Decrypts, verifies and accepts a command once. Errors: ERR_REPLAY (duplicate, too old,
   * previous epoch, outside `maxAgeMs`), ERR_KEY_VERSION_NOT_FOUND (epoch not held yet),
   * ERR_CIPHERTEXT_INVALID, ERR_SIGNATURE_INVALID, ERR_UNAUTHENTICATED (unknown sender),
   * ERR_INVALID_ARGUMENT / ERR_PAYLOAD_TOO_LARGE (malformed).
   */
  open(jwe: string): Promise<OpenedBroadcast>
}

function readOuterHeader(jwe: string, groupId: string): { epoch: number; snd: string; seq: number } {
  let h: Record<string, unknown>
  try {
    h = decodeProtectedHeader(jwe) as Record<string, unknown>
  } catch (cause) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'broadcast is not a JWE compact serialisation', {}, { cause })
  }
  const { alg, enc, gid, epoch, snd, seq } = h
  if (
    alg !== 'dir' ||
    enc !== 'A256GCM' ||
    typeof snd !== 'string' ||
    snd.length === 0 ||
    !Number.isSafeInteger(epoch) ||
    (epoch as number) < 0 ||
    !Number.isSafeInteger(seq) ||
    (seq as number) < 0
  ) {
    throw invalidArgument('broadcast header is not a group broadcast header', { field: 'header' })
  }
  if (gid !== groupId) throw invalidArgument('broadcast is for another group', { field: 'gid' })
  return { epoch: epoch as number, snd, seq: seq as number }
}

/**
 * Creates a member's receiver.
 *
 * @example
 * ```ts
 * const rx = createBroadcastReceiver({ groupId, senderKey: (id) => keys.get(id), now: Date.now })
 * rx.setGroupKey(ring.groupKey()!)
 * const { payload, senderId } = await rx.open(jwe)
 * ```
 */
export function createBroadcastReceiver(options: BroadcastReceiverOptions): BroadcastReceiver {
  assertId(options.groupId, 'groupId')
  const windowSize = options.windowSize ?? 64
  new ReplayWindow(windowSize) // validates the size before the first message
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
  const windows = new Map<string, ReplayWindow>()
  let current: GroupKeyEpoch | undefined

  const refuse = (reason: string, message: string): M2msecError => new M2msecError('ERR_REPLAY', message, { reason })

  return {
    get epoch() {
      return current?.epoch
    },
    setGroupKey(groupKey) {
      assertCount(groupKey.epoch, 'epoch')
      assertLength(groupKey.key, 32, 'groupKey')
      if (current !== undefined && groupKey.epoch <= current.epoch) return false
      current = { epoch: groupKey.epoch, key: new Uint8Array(groupKey.key) }
      return true
    },
    async open(jwe) {
      if (typeof jwe !== 'string') throw invalidArgument('broadcast must be a string', { field: 'jwe' })
      if (jwe.length > maxBytes) {
        throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `broadcast exceeds ${maxBytes} characters`, { maxBytes })
      }
      const outer = readOuterHeader(jwe, options.groupId)
      const gk = current
      if (gk !== undefined && outer.epoch < gk.epoch) throw refuse('stale-epoch', 'broadcast is from a previous epoch')
      if (gk === undefined || outer.epoch > gk.epoch) {
        throw new M2msecError('ERR_KEY_VERSION_NOT_FOUND', 'no group key for this epoch yet', { epoch: outer.epoch })
      }
      const window = windows.get(outer.snd)
      const early = window?.check(outer.seq) ?? 'ok'
      if (early !== 'ok') throw refuse(early, 'broadcast sequence number was already used or is too old')
      const verifyKey = await options.senderKey(outer.snd)
      if (verifyKey === undefined) {
        throw new M2msecError('ERR_UNAUTHENTICATED', 'sender is not allowed to command this group')
      }
      let jws: string
      try {
        const { plaintext } = await compactDecrypt(jwe, gk.key, {
          keyManagementAlgorithms: ['dir'],
          contentEncryptionAlgorithms: ['A256GCM'],
        })
        jws = new TextDecoder('utf-8', { fatal: true }).decode(plaintext)
      } catch (cause) {
        throw new M2msecError('ERR_CIPHERTEXT_INVALID', 'broadcast does not decrypt under the group key', {}, { cause })
      }
      let inner: { payload: Uint8Array; protectedHeader: Record<string, unknown> }
      try {
        inner = await compactVerify(jws, verifyKey, { algorithms: ['ES256'] })
      } catch (cause) {
        throw new M2msecError('ERR_SIGNATURE_INVALID', 'broadcast signature does not verify', {}, { cause })
      }
      const h = inner.protectedHeader
      if (
        h.typ !== COMMAND_TYPE ||
        h.kid !== outer.snd ||
        h.gid !== options.groupId ||
        h.epoch !== outer.epoch ||
        h.seq !== outer.seq ||
        typeof h.iat !== 'number' ||
        !Number.isFinite(h.iat)
      ) {
        throw new M2msecError('ERR_SIGNATURE_INVALID', 'signed header does not match the envelope')
      }
      const issuedAt = h.iat * 1000
      if (options.maxAgeMs !== undefined && Math.abs(options.now() - issuedAt) > options.maxAgeMs) {
        throw refuse('expired', 'broadcast is outside the accepted time window')
      }
      // Re-check after the awaits: a rekey or a parallel copy may have come in meanwhile.
      if (current?.epoch !== outer.epoch) throw refuse('stale-epoch', 'broadcast is from a previous epoch')
      let w = windows.get(outer.snd)
      if (w === undefined) {
        w = new ReplayWindow(windowSize)
        windows.set(outer.snd, w)
      }
      const late = w.accept(outer.seq)
      if (late !== 'ok') throw refuse(late, 'broadcast sequence number was already used or is too old')
      return {
        senderId: outer.snd,
        seq: outer.seq,
        epoch: outer.epoch,
        issuedAt,
        payload: new Uint8Array(inner.payload),
      }
    },
  }
}
