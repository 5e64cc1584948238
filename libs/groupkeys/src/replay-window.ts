/**
 * Sliding anti-replay window over sequence numbers (the RFC 4303 §3.4.3 scheme): accepts
 * each number once, and nothing at or below `highest − size`. Messages may arrive out of
 * order within the window.
 */
import { invalidArgument } from '@m2msec/errors'

/** Why a sequence number is refused. */
export type ReplayVerdict = 'ok' | 'replay' | 'too-old'

/** Anti-replay state of one sender. */
export class ReplayWindow {
  readonly size: number
  #highest = -1
  /** seq % size -> the last seq stored there; a slot can only hold seqs > highest − size. */
  readonly #slots: number[]

  /**
   * @example
   * ```ts
   * const w = new ReplayWindow(64)
   * w.check(5) // 'ok'; w.accept(5); w.check(5) // 'replay'
   * ```
   */
  constructor(size = 64) {
    if (!Number.isSafeInteger(size) || size < 1 || size > 65_536) {
      throw invalidArgument('replay window size must be an integer in 1..65536', { field: 'windowSize' })
    }
    this.size = size
    this.#slots = new Array<number>(size).fill(-1)
  }

  /** Highest sequence number accepted so far (−1 before the first). */
  get highest(): number {
    return this.#highest
  }

  /** Would `seq` be accepted? Does not change the window. */
  check(seq: number): ReplayVerdict {
    if (!Number.isSafeInteger(seq) || seq < 0) throw invalidArgument('sequence number must be a non-negative integer')
    if (seq > this.#highest) return 'ok'
    if (seq <= this.#highest - this.size) return 'too-old'
    return this.#slots[seq % this.size] === seq ? 'replay' : 'ok'
  }

  /** Records `seq`; returns what {@link check} said before (nothing is recorded unless 'ok'). */
  accept(seq: number): ReplayVerdict {
    const verdict = this.check(seq)
    if (verdict !== 'ok') return verdict
    this.#slots[seq % this.size] = seq
    if (seq > this.#highest) this.#highest = seq
    return verdict
  }
}
