/**
 * oneM2M TS-0003 (V3.18.0) key derivations and identifiers:
 * - keys derived from the Enrolment Key Ke (§10.3.2 Km, §10.3.3 Kpsa, §10.3.7
 *   usage-constrained key), all HMAC-SHA-256(Ke, label || id);
 * - the RFC 5705 exporter labels and the 48-byte split (§10.3.1);
 * - key identifier formats (§10.3.4 KeID, §10.3.5 MAF key identifier, §10.5 KpsaID, §10.6 KmID);
 * - sessionESPrimKey (§10.3.8.2).
 *
 * Identifiers are fed in as UTF-8 of their NFKC form (TS-0003 §10.3); labels are ASCII
 * with no terminator. In GBA-based RSPF, Ke = Ks and KeID = B-TID, and Km/Kpsa = Ks_NAF
 * (see `deriveKsNaf` in kdf-3gpp.ts) with KmID/KpsaID = KeID.
 */
import { createHmac } from 'node:crypto'
import { invalidArgument } from '@m2msec/errors'
import { assertLength, bytesToHex, concatBytes, toBytes, utf8Nfkc } from './bytes.ts'

/** Label for Km (TS-0003 §10.3.2). */
export const KM_DERIVATION_LABEL = 'oneM2M Enrolment Key to Master Credential derivation'

/** Label for Kpsa (TS-0003 §10.3.3). */
export const KPSA_DERIVATION_LABEL = 'oneM2M Enrolment Key to Provisioned Secure Connection Key derivation'

/** Label for the usage-constrained symmetric key (TS-0003 §10.3.7). */
export const USAGE_CONSTRAINED_KEY_LABEL = 'oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation'

/** Label appended to the rand values in sessionESPrimKey (TS-0003 §10.3.8.2). */
export const SESSION_ESPRIM_KEY_LABEL = 'oneM2M HMAC-SHA256 sessionESPrimKey derivation algorithm'

/** RFC 5705 exporter labels of TS-0003 §10.3.1 (no context is passed to the exporter). */
export const ONEM2M_EXPORTER_LABEL = Object.freeze({
  /** Enrolee ↔ MEF: RelativeKeID (16) + Ke (32). */
  bootstrap: 'EXPORTER-oneM2M-Bootstrap',
  /** MAF client ↔ MAF: KcID (16) + Kc (32). */
  connection: 'EXPORTER-oneM2M-Connection',
  /** ESCertKE: pairwiseE2EKeyID (16) + pairwiseE2EKey (32). */
  escertke: 'EXPORTER-oneM2M-ESCertKE',
})

/** Length of every oneM2M exporter output, in bytes. */
export const ONEM2M_EXPORTER_LENGTH = 48

/** Length of Ke, Kc and pairwiseE2EKey as exported (and of Ks = CK || IK in GBA). */
export const ENROLMENT_KEY_LENGTH = 32

function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return toBytes(createHmac('sha256', key).update(data).digest())
}

function idBytes(id: string, field: string): Uint8Array {
  if (typeof id !== 'string' || id.length === 0) {
    throw invalidArgument(`${field} must be a non-empty string`, { field })
  }
  return utf8Nfkc(id)
}

function deriveFromKe(ke: Uint8Array, label: string, ...parts: Uint8Array[]): Uint8Array {
  assertLength(ke, ENROLMENT_KEY_LENGTH, 'ke')
  return hmacSha256(ke, concatBytes(new TextEncoder().encode(label), ...parts))
}

/**
 * Km = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Master Credential derivation" || MAF-ID).
 *
 * @example
 * ```ts
 * const km = deriveKm(ke, 'maf.example.com')
 * ```
 */
export function deriveKm(ke: Uint8Array, mafId: string): Uint8Array {
  return deriveFromKe(ke, KM_DERIVATION_LABEL, idBytes(mafId, 'mafId'))
}

/**
 * Kpsa = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Provisioned Secure Connection Key
 * derivation" || Enrolee-B-ID). The spec calls the id "Enrolee-B-ID" (CSE-ID or AE-ID);
 * this project reads it as the Enrolment Target's id (the entity that shares Kpsa with the
 * Enrolee). Callers pass the id; the function does not interpret it.
 *
 * @example
 * ```ts
 * const kpsa = deriveKpsa(ke, '/in-cse-1')
 * ```
 */
export function deriveKpsa(ke: Uint8Array, enroleeBId: string): Uint8Array {
  return deriveFromKe(ke, KPSA_DERIVATION_LABEL, idBytes(enroleeBId, 'enroleeBId'))
}

/**
 * Usage-constrained key = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Usage-Constrained
 * Symmetric Key derivation" || SUID || Enrolment-Target-ID), returned by the MEF on
 * `/fetchCredentials/<KeID>/<SUID>`.
 *
 * TS-0003 does not say how SUID is encoded. This project encodes it as its decimal ASCII
 * digits (SUID 22 → "22", 2 bytes), the same text form as in the fetchCredentials URI.
 * Enrolment-Target-ID is an FQDN (for a CSE/AE: the FQDN form of its CSE-ID/AE-ID).
 *
 * @example
 * ```ts
 * const key = deriveUsageConstrainedKey(ke, 21, 'maf.example.com')
 * ```
 */
export function deriveUsageConstrainedKey(ke: Uint8Array, suid: number, enrolmentTargetId: string): Uint8Array {
  if (!Number.isInteger(suid) || suid < 10 || suid > 99) {
    throw invalidArgument('suid must be a two-digit integer', { field: 'suid' })
  }
  return deriveFromKe(
    ke,
    USAGE_CONSTRAINED_KEY_LABEL,
    new TextEncoder().encode(String(suid)),
    idBytes(enrolmentTargetId, 'enrolmentTargetId'),
  )
}

/**
 * Splits a 48-byte oneM2M exporter output: the 16 most significant bytes (first 16) are the
 * relative key id, the 32 least significant bytes (last 32) are the key (TS-0003 §10.3.1).
 * "Most significant = first" is this project's reading; no oneM2M test vector confirms it.
 *
 * @example
 * ```ts
 * const out = tlsSocket.exportKeyingMaterial(48, ONEM2M_EXPORTER_LABEL.bootstrap)
 * const { relativeId, key } = splitExporterOutput(out)
 * ```
 */
export function splitExporterOutput(out: Uint8Array): { relativeId: Uint8Array; key: Uint8Array } {
  assertLength(out, ONEM2M_EXPORTER_LENGTH, 'exporter output')
  return { relativeId: out.slice(0, 16), key: out.slice(16, 48) }
}

function assertFqdn(fqdn: string, field: string): void {
  if (typeof fqdn !== 'string' || fqdn.length === 0 || fqdn.includes('@')) {
    throw invalidArgument(`${field} must be a non-empty FQDN without '@'`, { field })
  }
}

/**
 * KeID = hexBinary(RelativeKeID) "@" MEF-FQDN (TS-0003 §10.3.4; the spec's trailing ":"
 * is read as punctuation). Hex is lowercase.
 *
 * @example
 * ```ts
 * keId(relativeKeId, 'mef.example.com') // '00112233…eeff@mef.example.com'
 * ```
 */
export function keId(relativeKeId: Uint8Array, mefFqdn: string): string {
  assertLength(relativeKeId, 16, 'relativeKeId')
  assertFqdn(mefFqdn, 'mefFqdn')
  return `${bytesToHex(relativeKeId)}@${mefFqdn}`
}

/**
 * Key Identifier for MAF-based SAEF = hexBinary(KcID) "@" MAF-FQDN (TS-0003 §10.3.5); it is
 * the TLS psk_identity Entity A sends to Entity B.
 */
export function mafKeyId(kcId: Uint8Array, mafFqdn: string): string {
  assertLength(kcId, 16, 'kcId')
  assertFqdn(mafFqdn, 'mafFqdn')
  return `${bytesToHex(kcId)}@${mafFqdn}`
}

const RELATIVE_KEY_ID_RE = /^[A-Za-z0-9._-]+$/

/**
 * True when `relative` is a valid `sec:relKeyID` (TS-0003 §12.2): letters, digits, ".", "_", "-".
 */
export function isRelativeKeyId(relative: string): boolean {
  return typeof relative === 'string' && RELATIVE_KEY_ID_RE.test(relative)
}

/**
 * KpsaID = Issuer_Relative_KpsaID "@" Issuer-FQDN (TS-0003 §10.5).
 *
 * @example
 * ```ts
 * kpsaId('my-key_name', 'mef.example.com') // 'my-key_name@mef.example.com'
 * ```
 */
export function kpsaId(relative: string, issuerFqdn: string): string {
  if (!isRelativeKeyId(relative)) {
    throw invalidArgument('relative KpsaID must use only letters, digits, ".", "_", "-"', { field: 'relative' })
  }
  assertFqdn(issuerFqdn, 'issuerFqdn')
  return `${relative}@${issuerFqdn}`
}

/**
 * KmID = MAF_RELATIVE_KmID "@" MAF-FQDN (TS-0003 §10.6). The relative part is not case
 * sensitive: compare KmIDs with {@link sameKmId}, not `===`.
 */
export function kmId(relative: string, mafFqdn: string): string {
  if (!isRelativeKeyId(relative)) {
    throw invalidArgument('relative KmID must use only letters, digits, ".", "_", "-"', { field: 'relative' })
  }
  assertFqdn(mafFqdn, 'mafFqdn')
  return `${relative}@${mafFqdn}`
}

/** Compares two KmIDs: the relative part case-insensitively (§10.6), FQDNs case-insensitively (DNS). */
export function sameKmId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase()
}

/**
 * Splits any `relative@fqdn` identifier (KeID, KmID, KpsaID, MAF key id, and B-TID) at the
 * LAST "@": the FQDN never contains one, while a B-TID's relative part is base64.
 *
 * @example
 * ```ts
 * parseKeyId('I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org') // { relative: 'I1U8…', fqdn: 'bsf.example.org' }
 * ```
 */
export function parseKeyId(id: string): { relative: string; fqdn: string } {
  const at = typeof id === 'string' ? id.lastIndexOf('@') : -1
  if (at <= 0 || at === id.length - 1) {
    throw invalidArgument('key identifier must have the form relative@fqdn', { field: 'keyId' })
  }
  return { relative: id.slice(0, at), fqdn: id.slice(at + 1) }
}

/**
 * Ke, RelativeKeID and KeID from the `EXPORTER-oneM2M-Bootstrap` output (PPSK and
 * certificate RSPF, TS-0003 §8.3.2.1, §10.3.1, §10.3.4).
 *
 * @example
 * ```ts
 * const exported = socket.exportKeyingMaterial(ONEM2M_EXPORTER_LENGTH, ONEM2M_EXPORTER_LABEL.bootstrap)
 * const { ke, keId } = enrolmentKeyFromExporter(exported, 'mef.example.com')
 * ```
 */
export function enrolmentKeyFromExporter(
  exporterOutput: Uint8Array,
  mefFqdn: string,
): { ke: Uint8Array; relativeKeId: Uint8Array; keId: string } {
  const { relativeId, key } = splitExporterOutput(exporterOutput)
  return { ke: key, relativeKeId: relativeId, keId: keId(relativeId, mefFqdn) }
}

/**
 * sessionESPrimKey = HMAC-SHA256(pairwiseESPrimKey, receiverRand || originatorRand ||
 * "oneM2M HMAC-SHA256 sessionESPrimKey derivation algorithm") (TS-0003 §10.3.8.2,
 * esprimKeyGenAlgID 1).
 *
 * TS-0003 writes "receiverESPrimRandObject || originatorESPrimRandObject" without saying
 * which bytes stand for an object. This project uses the 128-bit `esprimRandValue` of each
 * object (16 raw bytes each). The output is 32 bytes; TS-0003 does not say how it is
 * shortened for A128GCM/A192GCM.
 *
 * @example
 * ```ts
 * const cek = sessionEsprimKey(pairwiseKey, receiverRandValue, originatorRandValue)
 * ```
 */
export function sessionEsprimKey(
  pairwiseEsprimKey: Uint8Array,
  receiverRandValue: Uint8Array,
  originatorRandValue: Uint8Array,
): Uint8Array {
  if (!(pairwiseEsprimKey instanceof Uint8Array) || pairwiseEsprimKey.length < 16) {
    throw invalidArgument('pairwiseEsprimKey must be at least 16 bytes', { field: 'pairwiseEsprimKey' })
  }
  assertLength(receiverRandValue, 16, 'receiverRandValue')
  assertLength(originatorRandValue, 16, 'originatorRandValue')
  return hmacSha256(
    pairwiseEsprimKey,
    concatBytes(receiverRandValue, originatorRandValue, new TextEncoder().encode(SESSION_ESPRIM_KEY_LABEL)),
  )
}
