/**
 * Reads the TLS-PSK `psk_identity` from a client's plaintext handshake records, before the
 * TLS engine sees them, so the PSK can be fetched from the KMS asynchronously: node:tls asks
 * for the key in a synchronous callback.
 *
 * - TLS 1.2 (RFC 4279 §2): the identity is the first field of the ClientKeyExchange message
 *   (`opaque psk_identity<0..2^16-1>`), sent in the client's second flight.
 * - TLS 1.3 (RFC 8446 §4.2.11): the first identity of the ClientHello `pre_shared_key`
 *   extension (type 41).
 *
 * Records are parsed only until the first non-handshake record (ChangeCipherSpec, alert,
 * application data): everything after that is encrypted or irrelevant.
 */

const RECORD_HEADER = 5
const CONTENT_HANDSHAKE = 22
const HS_CLIENT_HELLO = 1
const HS_CLIENT_KEY_EXCHANGE = 16
const EXT_PRE_SHARED_KEY = 41
/** Plaintext records are at most 2^14 bytes (+ header); anything larger is not TLS. */
const MAX_RECORD = 16_384 + 2048

/** What {@link PskIdentityScanner.scan} found in the complete records seen so far. */
export type ScanResult =
  /** Need more bytes. `forward` = complete records that can go to the TLS engine now. */
  | { readonly kind: 'more'; readonly forward: Buffer }
  /** `identity` was found; `forward` precedes the record that carried it, `held` is the rest. */
  | { readonly kind: 'identity'; readonly identity: string; readonly forward: Buffer; readonly held: Buffer }
  /** No identity will follow in plaintext (or the input is not TLS): pass everything on. */
  | { readonly kind: 'none'; readonly forward: Buffer }

/** Incremental scanner over the client → server byte stream of one connection. */
export class PskIdentityScanner {
  #pending: Buffer = Buffer.alloc(0)
  #handshake: Buffer = Buffer.alloc(0)

  /** Adds `chunk` and reports what can be forwarded. After `identity` or `none`, stop calling. */
  scan(chunk: Buffer): ScanResult {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    let offset = 0
    for (;;) {
      const rest = this.#pending.subarray(offset)
      if (rest.length < RECORD_HEADER) break
      const type = rest[0]
      const length = rest.readUInt16BE(3)
      // Not a TLS record (unknown content type, version major not 3, oversized): give up.
      if (type === undefined || type < 20 || type > 24 || rest[1] !== 3 || length > MAX_RECORD) return this.#none()
      if (rest.length < RECORD_HEADER + length) break
      if (type !== CONTENT_HANDSHAKE) return this.#none()
      this.#handshake = Buffer.concat([this.#handshake, rest.subarray(RECORD_HEADER, RECORD_HEADER + length)])
      const identity = this.#identityInHandshake()
      if (identity !== undefined) {
        const forward = Buffer.from(this.#pending.subarray(0, offset))
        const held = Buffer.from(this.#pending.subarray(offset))
        this.#pending = Buffer.alloc(0)
        return { kind: 'identity', identity, forward, held }
      }
      offset += RECORD_HEADER + length
    }
    const forward = Buffer.from(this.#pending.subarray(0, offset))
    this.#pending = Buffer.from(this.#pending.subarray(offset))
    return { kind: 'more', forward }
  }

  /** Gives up scanning: everything buffered goes to the TLS engine as it is. */
  #none(): ScanResult {
    const forward = this.#pending
    this.#pending = Buffer.alloc(0)
    return { kind: 'none', forward }
  }

  /** Consumes complete handshake messages; returns the identity once one carries it. */
  #identityInHandshake(): string | undefined {
    while (this.#handshake.length >= 4) {
      const type = this.#handshake[0]
      const length = this.#handshake.readUIntBE(1, 3)
      if (this.#handshake.length < 4 + length) return undefined
      const body = this.#handshake.subarray(4, 4 + length)
      this.#handshake = this.#handshake.subarray(4 + length)
      const identity =
        type === HS_CLIENT_HELLO
          ? clientHelloPskIdentity(body)
          : type === HS_CLIENT_KEY_EXCHANGE
            ? clientKeyExchangePskIdentity(body)
            : undefined
      if (identity !== undefined) return identity
    }
    return undefined
  }
}

/** `opaque psk_identity<0..2^16-1>` at the start of a TLS 1.2 PSK ClientKeyExchange. */
export function clientKeyExchangePskIdentity(body: Buffer): string | undefined {
  if (body.length < 2) return undefined
  const length = body.readUInt16BE(0)
  if (length === 0 || body.length < 2 + length) return undefined
  return body.subarray(2, 2 + length).toString('utf8')
}

/** First identity of the TLS 1.3 `pre_shared_key` extension of a ClientHello, if any. */
export function clientHelloPskIdentity(body: Buffer): string | undefined {
  try {
    let p = 2 + 32 // legacy_version, random
    p += 1 + body.readUInt8(p) // legacy_session_id
    p += 2 + body.readUInt16BE(p) // cipher_suites
    p += 1 + body.readUInt8(p) // legacy_compression_methods
    const end = p + 2 + body.readUInt16BE(p)
    p += 2
    while (p + 4 <= end) {
      const type = body.readUInt16BE(p)
      const length = body.readUInt16BE(p + 2)
      const data = body.subarray(p + 4, p + 4 + length)
      if (type === EXT_PRE_SHARED_KEY && data.length >= 4) {
        const idLength = data.readUInt16BE(2)
        if (idLength === 0 || data.length < 4 + idLength) return undefined
        return data.subarray(4, 4 + idLength).toString('utf8')
      }
      p += 4 + length
    }
  } catch {
    // A truncated ClientHello (RangeError): the TLS engine will reject it itself.
  }
  return undefined
}
