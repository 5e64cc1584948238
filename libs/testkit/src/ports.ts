/**
 * Port shapes used by the fixed clock and the seeded RNG.
 *
 * The canonical `Clock` and `Random` ports will live in the domain (`domain/ports.ts` of each
 * service). These are kept structurally identical (`{ now(): Date }`, `{ bytes(n): Uint8Array }`)
 * so a testkit clock or RNG can be passed wherever the domain asks for one.
 */

/** A source of the current time. */
export interface Clock {
  now(): Date
}

/** A source of random bytes. */
export interface Random {
  bytes(n: number): Uint8Array
}
