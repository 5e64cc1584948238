import { M2msecError } from '@m2msec/errors'

/** Turns values into bytes and back. `decode` throws on bytes it cannot read. */
export interface Codec<T> {
  encode(value: T): Uint8Array
  decode(bytes: Uint8Array): T
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * UTF-8 JSON. `decode` does not validate the shape: pass a codec that validates (e.g. with
 * zod) where stored data may come from older versions.
 *
 * @example
 * ```ts
 * const repo = await KvRepository.open<Key>(nc, 'kms-keys', { codec: jsonCodec<Key>() })
 * ```
 */
export function jsonCodec<T>(): Codec<T> {
  return {
    encode: (value) => encoder.encode(JSON.stringify(value)),
    decode(bytes) {
      try {
        return JSON.parse(decoder.decode(bytes)) as T
      } catch (err) {
        throw new M2msecError('ERR_INTERNAL', 'stored value is not valid JSON', {}, { cause: err })
      }
    },
  }
}
