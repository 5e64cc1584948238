/**
 * m2msec.events.v1: bus event payloads (generated from proto/m2msec/events/v1/events.proto).
 * Encode with `KeyRotated.encode(KeyRotated.fromPartial({...})).finish()`, decode with
 * `KeyRotated.decode(bytes)`.
 */
export * from '../gen/m2msec/events/v1/events.ts'
