/**
 * @m2msec/groupkeys: the pure core of the groups service (TR-0012 group credentials).
 *
 * - lkh.ts: logical key hierarchy, rekey plans for join / leave / batch, flat baseline
 * - envelope.ts: JWE A256KW envelopes, member wrap-key derivation, plan sealing
 * - member-keyring.ts: the member side of key distribution
 * - aggregate-auth.ts: group authentication through the agent, bisection, session keys
 * - broadcast.ts + replay-window.ts: signed and encrypted group commands, anti-replay
 * - key-ids.ts, encoding.ts: key names, byte encodings and labels of the protocol
 *
 * No I/O; clock and randomness are injected. Protocol: docs/groups-protocol.md.
 */
export * from './encoding.ts'
export * from './key-ids.ts'
export * from './envelope.ts'
export * from './lkh.ts'
export * from './member-keyring.ts'
export * from './aggregate-auth.ts'
export * from './replay-window.ts'
export * from './broadcast.ts'
