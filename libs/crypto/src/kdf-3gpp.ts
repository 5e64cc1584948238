/**
 * The 3GPP generic key derivation function (TS 33.220 Annex B) and the GBA pieces built on
 * it: Ks = CK || IK, NAF_Id, Ks_(ext/int)_NAF, TMPI and B-TID.
 *
 * S = FC || P0 || L0 || P1 || L1 || … with Li the 2-octet big-endian length of Pi;
 * derived key = HMAC-SHA-256(Key, S). Strings are UTF-8 of their NFKC form (B.2.1.2).
 */
import { createHmac } from 'node:crypto'
import { invalidArgument } from '@m2msec/errors'
import { assertBytes, assertLength, bytesToBase64, concatBytes, toBytes, utf8Nfkc } from './bytes.ts'

/** FC value for NAF-specific key derivation and TMPI (TS 33.220 B.3, B.4). */
export const GBA_FC = 0x01

/** P0 strings of TS 33.220 B.3: "gba-me" for Ks_NAF / Ks_ext_NAF, "gba-u" for Ks_int_NAF. */
export type GbaVariant = 'gba-me' | 'gba-u'

/**
 * Ua security protocol identifiers (TS 33.220 Annex H.3), 5 octets each.
 * The oneM2M entries are NOT from any spec: TS-0003 V3.18.0 names no Ua identifier, so they
 * apply the TS 33.222 shared-key TLS rule (01 00 01 || cipher suite) to the cipher suites
 * oneM2M mandates. Treat them as a project decision.
 */
export const UA_PROTOCOL_ID = Object.freeze({
  /** 01 00 00 00 00: TS 33.221 (subscriber certificates). */
  subscriberCertificates: Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x00),
  /** 01 00 00 00 01: TS 33.246 MBMS. */
  mbms: Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x01),
  /** 01 00 00 00 02: HTTP Digest authentication per TS 24.109. */
  httpDigest: Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x02),
  /** 01 00 00 00 03: HTTP-based MBMS (TS 26.237). */
  httpMbms: Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x03),
  /** 01 00 00 00 04: SIP-based MBMS (TS 26.237). */
  sipMbms: Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x04),
  /** 01 00 00 00 05: Generic Push Layer (TS 33.224). */
  genericPushLayer: Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x05),
  /** 01 00 00 00 06: IMS UE–KMS (TS 33.328). */
  imsUeKms: Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x06),
  /** 01 00 00 00 07: shared-key TLS 1.3 (TS 33.222 §5.4.0.2). */
  tls13SharedKey: Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x07),
  /** 01 00 00 01 00: TMPI generation (TS 33.220 B.4). */
  tmpi: Uint8Array.of(0x01, 0x00, 0x00, 0x01, 0x00),
  /** 01 00 01 00 ae: TLS_PSK_WITH_AES_128_CBC_SHA256 (oneM2M mandatory TLS suite). Project choice, see above. */
  oneM2mTlsPskAes128CbcSha256: Uint8Array.of(0x01, 0x00, 0x01, 0x00, 0xae),
  /** 01 00 01 c0 a8: TLS_PSK_WITH_AES_128_CCM_8 (oneM2M mandatory DTLS suite). Project choice, see above. */
  oneM2mDtlsPskAes128Ccm8: Uint8Array.of(0x01, 0x00, 0x01, 0xc0, 0xa8),
})

/**
 * Ua id for shared-key TLS per TS 33.222 §5.3/§5.4: 01 00 01 || 2-octet cipher-suite code.
 *
 * @example
 * ```ts
 * uaTlsPskProtocolId(0x008c) // 01 00 01 00 8c (TLS_PSK_WITH_AES_128_CBC_SHA)
 * ```
 */
export function uaTlsPskProtocolId(cipherSuite: number): Uint8Array {
  if (!Number.isInteger(cipherSuite) || cipherSuite < 0 || cipherSuite > 0xffff) {
    throw invalidArgument('cipherSuite must be an integer in 0..0xffff', { field: 'cipherSuite' })
  }
  return Uint8Array.of(0x01, 0x00, 0x01, cipherSuite >> 8, cipherSuite & 0xff)
}

/**
 * Builds S = FC || P0 || L0 || … || Pn || Ln (TS 33.220 B.2.2). `fc` is the single-octet
 * form (0x00..0xFE); 0xFF starts the two-octet extension, which is not needed here and is
 * rejected. Each parameter must be at most 65535 octets.
 *
 * @example
 * ```ts
 * const s = kdf3gppInput(0x01, [utf8Nfkc('gba-me'), rand, utf8Nfkc(impi), nafIdBytes])
 * ```
 */
export function kdf3gppInput(fc: number, params: readonly Uint8Array[]): Uint8Array {
  if (!Number.isInteger(fc) || fc < 0 || fc > 0xfe) {
    throw invalidArgument('fc must be an integer in 0..0xfe', { field: 'fc' })
  }
  const parts: Uint8Array[] = [Uint8Array.of(fc)]
  params.forEach((p, i) => {
    assertBytes(p, `params[${i}]`)
    if (p.length > 0xffff) {
      throw invalidArgument(`params[${i}] must be at most 65535 bytes`, { field: `params[${i}]` })
    }
    parts.push(p, Uint8Array.of(p.length >> 8, p.length & 0xff))
  })
  return concatBytes(...parts)
}

/**
 * The generic KDF: HMAC-SHA-256(key, s), 32 bytes (TS 33.220 B.2).
 *
 * @example
 * ```ts
 * const ksNaf = kdf3gpp(ks, gbaKsNafInput(rand, impi, nafId('naf.example.com', UA_PROTOCOL_ID.httpDigest), 'gba-me'))
 * ```
 */
export function kdf3gpp(key: Uint8Array, s: Uint8Array): Uint8Array {
  assertBytes(key, 'key')
  assertBytes(s, 's')
  if (key.length === 0) throw invalidArgument('key must not be empty', { field: 'key' })
  return toBytes(createHmac('sha256', key).update(s).digest())
}

/** Ks = CK || IK (32 bytes), the GBA master key (TS 33.220 §4.5.2). */
export function gbaKs(ck: Uint8Array, ik: Uint8Array): Uint8Array {
  assertLength(ck, 16, 'ck')
  assertLength(ik, 16, 'ik')
  return concatBytes(ck, ik)
}

/**
 * NAF_Id = UTF-8(NFKC(NAF FQDN)) || Ua security protocol identifier (5 octets)
 * (TS 33.220 §4.5.2, Annex H).
 *
 * @example
 * ```ts
 * nafId('naf.example.com', UA_PROTOCOL_ID.httpDigest) // 20 bytes
 * ```
 */
export function nafId(nafFqdn: string, uaProtocolId: Uint8Array): Uint8Array {
  assertLength(uaProtocolId, 5, 'uaProtocolId')
  const fqdn = utf8Nfkc(nafFqdn)
  if (fqdn.length === 0) throw invalidArgument('nafFqdn must not be empty', { field: 'nafFqdn' })
  return concatBytes(fqdn, uaProtocolId)
}

/**
 * S for Ks_NAF / Ks_ext_NAF ('gba-me') or Ks_int_NAF ('gba-u') (TS 33.220 B.3):
 * FC = 0x01, P0 = variant, P1 = RAND, P2 = IMPI (UTF-8, NFKC), P3 = NAF_Id.
 *
 * @example
 * ```ts
 * const s = gbaKsNafInput(rand, '001010123456789@ims.mnc001.mcc001.3gppnetwork.org', id, 'gba-me')
 * ```
 */
export function gbaKsNafInput(rand: Uint8Array, impi: string, nafIdBytes: Uint8Array, variant: GbaVariant): Uint8Array {
  assertLength(rand, 16, 'rand')
  assertBytes(nafIdBytes, 'nafId')
  if (variant !== 'gba-me' && variant !== 'gba-u') {
    throw invalidArgument("variant must be 'gba-me' or 'gba-u'", { field: 'variant' })
  }
  const impiBytes = utf8Nfkc(impi)
  if (impiBytes.length === 0) throw invalidArgument('impi must not be empty', { field: 'impi' })
  return kdf3gppInput(GBA_FC, [utf8Nfkc(variant), rand, impiBytes, nafIdBytes])
}

/**
 * Ks_NAF (= Ks_ext_NAF) for 'gba-me', Ks_int_NAF for 'gba-u': KDF(Ks, S) (TS 33.220 B.3).
 *
 * @example
 * ```ts
 * const km = deriveKsNaf(gbaKs(ck, ik), rand, impi, nafId(mafFqdn, ua), 'gba-me')
 * ```
 */
export function deriveKsNaf(
  ks: Uint8Array,
  rand: Uint8Array,
  impi: string,
  nafIdBytes: Uint8Array,
  variant: GbaVariant,
): Uint8Array {
  assertLength(ks, 32, 'ks')
  return kdf3gpp(ks, gbaKsNafInput(rand, impi, nafIdBytes, variant))
}

/** Domain appended to every TMPI (TS 33.220 B.4). */
export const TMPI_DOMAIN = 'tmpi.bsf.3gppnetwork.org'

/**
 * TMPI = base64(first 24 octets of KDF(Ks, "gba-me", RAND, IMPI, BSF_Id)) "@" TMPI_DOMAIN,
 * where BSF_Id = BSF host || 01 00 00 01 00 (TS 33.220 B.4).
 *
 * @example
 * ```ts
 * tmpi(ks, rand, impi, 'bsf.mnc001.mcc001.pub.3gppnetwork.org') // '…@tmpi.bsf.3gppnetwork.org'
 * ```
 */
export function tmpi(ks: Uint8Array, rand: Uint8Array, impi: string, bsfHost: string): string {
  assertLength(ks, 32, 'ks')
  const out = kdf3gpp(ks, gbaKsNafInput(rand, impi, nafId(bsfHost, UA_PROTOCOL_ID.tmpi), 'gba-me'))
  return `${bytesToBase64(out.subarray(0, 24))}@${TMPI_DOMAIN}`
}

/**
 * B-TID = base64(RAND) "@" BSF server domain name (TS 33.220 §4.5.2, NAI form). The domain
 * is the BSF's configured server name, not the Digest realm.
 *
 * @example
 * ```ts
 * btid(rand, 'bsf.mnc001.mcc001.pub.3gppnetwork.org') // 'I1U8vpY3qJ0hiuZNrke/NQ==@bsf…'
 * ```
 */
export function btid(rand: Uint8Array, bsfHost: string): string {
  assertLength(rand, 16, 'rand')
  if (typeof bsfHost !== 'string' || bsfHost.length === 0 || bsfHost.includes('@')) {
    throw invalidArgument('bsfHost must be a non-empty host name', { field: 'bsfHost' })
  }
  return `${bytesToBase64(rand)}@${bsfHost}`
}
