/**
 * The Pre-Provisioned Symmetric Enrolee Key RSPF listener (TS-0003 §8.3.2.1): TLS-PSK with
 * psk_identity = KpmID and psk = Kpm.
 *
 * Kpm is kept in the KMS secure storage of this service (never in our config or KV). node:tls
 * asks for the PSK synchronously, so an {@link IdentityGate} reads the identity from the
 * client's handshake records first, holds the client's bytes, fetches Kpm with GetSecret, and
 * lets the handshake continue; Kpm is zeroised as soon as the handshake ends (or fails).
 */
import { createHash } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import type { Logger } from '@m2msec/runtime'
import type { RspfDirectory } from '../domain/directory.ts'
import type { Enrolee } from '../domain/enrolment.ts'
import type { RspfKms } from '../domain/ports.ts'
import { IdentityGate } from './identity-gate.ts'

/** Secure-storage name of the Kpm of `kpmId` (the id itself may contain characters names cannot). */
export function kpmSecretName(kpmId: string): string {
  return `rspf.kpm.${createHash('sha256').update(kpmId).digest('hex')}`
}

/** Options of {@link createPskServer}. */
export interface PskServerOptions {
  readonly ciphers: string
  readonly maxVersion: tls.SecureVersion
  readonly handshakeTimeoutMs: number
  readonly directory: RspfDirectory
  readonly kms: RspfKms
  readonly log: Logger
  /** Called with the established socket and its Enrolee (see enrol.ts). */
  readonly onEnrolee: (socket: tls.TLSSocket, enrolee: Enrolee) => void
}

interface Slot {
  identity?: string
  enrolee?: Enrolee
  psk?: Uint8Array
}

/**
 * A net.Server whose connections run the TLS-PSK MEF Handshake.
 *
 * @example
 * ```ts
 * const server = createPskServer({ ciphers, maxVersion: 'TLSv1.3', handshakeTimeoutMs: 10_000, directory, kms, log, onEnrolee })
 * server.listen(7443)
 * ```
 */
export function createPskServer(opts: PskServerOptions): net.Server {
  const secureContext = tls.createSecureContext({
    ciphers: opts.ciphers,
    minVersion: 'TLSv1.2',
    maxVersion: opts.maxVersion,
  })
  const slots = new WeakMap<tls.TLSSocket, Slot>()
  const wipe = (slot: Slot) => {
    slot.psk?.fill(0)
    delete slot.psk
  }

  const pskCallback = (socket: tls.TLSSocket, identity: string): Uint8Array | null => {
    const slot = slots.get(socket)
    // Only the identity the gate prefetched for this very connection is answered.
    if (slot === undefined || slot.identity !== identity || slot.psk === undefined) return null
    return slot.psk
  }

  return net.createServer((raw) => {
    raw.setTimeout(opts.handshakeTimeoutMs, () => raw.destroy())
    const slot: Slot = {}
    const gate = new IdentityGate(raw, async (identity) => {
      slot.identity = identity
      const enrolee = opts.directory.byKpmId(identity)
      if (enrolee === undefined) return
      slot.enrolee = enrolee
      const psk = await opts.kms.getSecret(enrolee.tenant, kpmSecretName(identity))
      if (psk !== undefined) slot.psk = psk
    })
    const socket = new tls.TLSSocket(gate, {
      isServer: true,
      secureContext,
      pskCallback,
    } as tls.TLSSocketOptions)
    slots.set(socket, slot)
    socket.once('secure', () => {
      wipe(slot)
      raw.setTimeout(0)
      if (slot.enrolee === undefined) socket.destroy()
      else opts.onEnrolee(socket, slot.enrolee)
    })
    socket.on('error', (err) => {
      wipe(slot)
      // Failed handshakes (wrong key, unknown identity) are routine; no key or identity bytes are logged.
      opts.log.info({ reason: (err as NodeJS.ErrnoException).code ?? err.message }, 'rspf psk handshake failed')
    })
    socket.on('close', () => wipe(slot))
  })
}
