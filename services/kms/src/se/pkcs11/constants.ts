/**
 * PKCS#11 numbers pkcs11js 2.1.7 does not name (PKCS#11 3.0 additions), and the encodings of
 * the curve parameters the pkcs11 SE uses.
 */

/** CKM_EC_EDWARDS_KEY_PAIR_GEN (PKCS#11 3.0). */
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055
/** CKM_EDDSA (PKCS#11 3.0); without parameters it is pure Ed25519. */
export const CKM_EDDSA = 0x1057
/** CKK_EC_EDWARDS (PKCS#11 3.0). */
export const CKK_EC_EDWARDS = 0x40
/**
 * CKM_HKDF_DERIVE (PKCS#11 3.0). Listed for documentation only: pkcs11js cannot marshal
 * CK_HKDF_PARAMS (it holds pointers), so HKDF is never offered by this backend.
 */
export const CKM_HKDF_DERIVE = 0x402a

/** CKA_EC_PARAMS for P-256: DER OID 1.2.840.10045.3.1.7. */
export const EC_PARAMS_P256 = Buffer.from('06082a8648ce3d030107', 'hex')
/** CKA_EC_PARAMS for Ed25519: DER OID 1.3.101.112 (PKCS#11 3.0 also allows the curve name). */
export const EC_PARAMS_ED25519 = Buffer.from('06032b6570', 'hex')
/** The same curve as a PrintableString "edwards25519" (older tokens use this form). */
export const EC_PARAMS_ED25519_NAME = Buffer.from('130c656477617264733235353139', 'hex')
