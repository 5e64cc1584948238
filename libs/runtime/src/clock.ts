/**
 * Time and randomness as injectable ports, so domain code and tests can be deterministic
 * (`@m2msec/testkit` provides fixed implementations).
 */
import { randomBytes } from 'node:crypto'

/** The current time. */
export interface Clock {
  now(): Date
}

/** Cryptographically secure random bytes. */
export interface Random {
  bytes(n: number): Uint8Array
}

/**
 * The system clock.
 *
 * @example
 * ```ts
 * const ops = createKmsOperations({ clock: systemClock, random: systemRandom, ... })
 * ```
 */
export const systemClock: Clock = Object.freeze({ now: () => new Date() })

/**
 * The operating system's CSPRNG (`crypto.randomBytes`).
 *
 * @example
 * ```ts
 * const nonce = systemRandom.bytes(16)
 * ```
 */
export const systemRandom: Random = Object.freeze({
  bytes: (n: number): Uint8Array => new Uint8Array(randomBytes(n)),
})
