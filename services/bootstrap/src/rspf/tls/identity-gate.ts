/**
 * A Duplex between a client's TCP socket and a server-side TLSSocket that holds the client's
 * bytes from the record carrying the PSK identity onwards until an asynchronous lookup of that
 * identity has finished. The synchronous node:tls `pskCallback` then finds the key ready.
 */
import { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { PskIdentityScanner } from './psk-identity.ts'

/** Largest client input buffered while scanning or waiting (a handshake flight is far smaller). */
const MAX_BUFFERED = 64 * 1024

/**
 * Wraps `raw`. When the client's PSK identity appears, `lookup(identity)` runs; until it
 * settles, the rest of the client's input is held back. A lookup that rejects destroys the
 * connection.
 *
 * @example
 * ```ts
 * const gate = new IdentityGate(raw, (id) => prefetchKey(id))
 * const tls = new TLSSocket(gate, { isServer: true, pskCallback, ... })
 * ```
 */
export class IdentityGate extends Duplex {
  readonly #raw: Socket
  readonly #scanner = new PskIdentityScanner()
  #mode: 'scan' | 'wait' | 'pass' = 'scan'
  #held: (Buffer | null)[] = []
  #heldBytes = 0

  constructor(raw: Socket, lookup: (identity: string) => Promise<void>) {
    super()
    this.#raw = raw
    raw.on('data', (chunk: Buffer) => this.#onData(chunk, lookup))
    raw.on('end', () => (this.#mode === 'pass' ? this.push(null) : this.#held.push(null)))
    raw.on('error', (err) => this.destroy(err))
    raw.on('close', () => this.destroy())
  }

  #onData(chunk: Buffer, lookup: (identity: string) => Promise<void>): void {
    if (this.#mode === 'pass') {
      this.push(chunk)
      return
    }
    if (this.#mode === 'wait') {
      this.#hold(chunk)
      return
    }
    const result = this.#scanner.scan(chunk)
    if (result.forward.length > 0) this.push(result.forward)
    if (result.kind === 'none') {
      this.#mode = 'pass'
      return
    }
    // 'more': the scanner keeps at most one incomplete record (it gives up on oversized ones).
    if (result.kind === 'more') return
    this.#mode = 'wait'
    this.#hold(result.held)
    lookup(result.identity).then(
      () => this.#release(),
      (err: unknown) => this.destroy(err instanceof Error ? err : new Error('PSK lookup failed')),
    )
  }

  #hold(chunk: Buffer): void {
    this.#held.push(chunk)
    this.#heldBytes += chunk.length
    if (this.#heldBytes > MAX_BUFFERED) this.destroy()
  }

  #release(): void {
    if (this.destroyed) return
    this.#mode = 'pass'
    for (const chunk of this.#held) this.push(chunk)
    this.#held = []
  }

  override _read(): void {
    // Flow control is left to the TLS engine's own buffering: a handshake is a few KiB.
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#raw.write(chunk, callback)
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#raw.end(callback)
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#held = []
    this.#raw.destroy()
    callback(err)
  }
}
