/**
 * GBA key material after a successful Ub run, and the NAF-specific key both sides derive
 * from it (TS 33.220 §4.5.2, Annex B): Ks_NAF = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id).
 */
import { deriveKsNaf, nafId, type GbaVariant } from '@m2msec/crypto'

/** Key material of a completed bootstrap, the same on the UE and in the BSF. */
export interface GbaKeyMaterial {
  impi: string
  rand: Uint8Array
  /** Ks = CK || IK (32 bytes). */
  ks: Uint8Array
}

/**
 * Ks_(ext)_NAF (`gba-me`, default) or Ks_int_NAF (`gba-u`) for one NAF, from the bootstrap's
 * Ks, RAND and IMPI with NAF_Id = FQDN || Ua security protocol id.
 *
 * @example
 * ```ts
 * const ksNaf = deriveSessionKsNaf(session, 'naf.example.com', UA_PROTOCOL_ID.httpDigest)
 * ```
 */
export function deriveSessionKsNaf(
  material: GbaKeyMaterial,
  nafFqdn: string,
  uaProtocolId: Uint8Array,
  variant: GbaVariant = 'gba-me',
): Uint8Array {
  return deriveKsNaf(material.ks, material.rand, material.impi, nafId(nafFqdn, uaProtocolId), variant)
}
