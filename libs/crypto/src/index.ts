/**
 * @m2msec/crypto: pure cryptographic functions with published test vectors.
 *
 * - milenage.ts: MILENAGE f1..f5* with an injected AES-128 kernel (HSM-friendly)
 * - aka.ts: AUTN/AUTS, SQN encoding, TS 33.102 Annex C freshness check
 * - kdf-3gpp.ts: TS 33.220 Annex B KDF, Ks_NAF, NAF_Id, TMPI, B-TID, Ua protocol ids
 * - hkdf.ts: RFC 5869 HKDF-SHA-256
 * - onem2m-keys.ts: TS-0003 derivations from Ke, exporter labels, key ids, sessionESPrimKey
 * - bytes.ts: hex/base64/base64url, UTF-8 NFKC, XOR, constant-time comparison
 */
export * from './bytes.ts'
export * from './milenage.ts'
export * from './aka.ts'
export * from './kdf-3gpp.ts'
export * from './hkdf.ts'
export * from './onem2m-keys.ts'
