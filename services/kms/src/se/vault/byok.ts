/**
 * Vault transit "bring your own key" wrapping (POST /transit/keys/:name/import):
 *
 *   ciphertext = RSA-OAEP-SHA256(wrapping key, ephemeral AES-256 key)   // 512 bytes (RSA-4096)
 *             || AES-KWP(ephemeral key, key material)                     // RFC 5649
 *
 * as Vault's path_import.go `decryptImportedKey` undoes it. The ephemeral key is random per
 * import and wiped after use.
 */
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'

/** RFC 5649 §3 alternative initial value for AES key wrap with padding. */
const KWP_AIV = Buffer.from('a65959a6', 'hex')

/**
 * AES-256 key wrap with padding (RFC 5649) through OpenSSL's `id-aes256-wrap-pad`.
 *
 * @example kwpWrap(kek32, material) // 8-byte-aligned, material.length rounded up + 8
 */
export function kwpWrap(kek: Uint8Array, data: Uint8Array): Buffer {
  const cipher = createCipheriv('id-aes256-wrap-pad', kek, KWP_AIV)
  return Buffer.concat([cipher.update(data), cipher.final()])
}

/**
 * Builds the base64 `ciphertext` field of a transit import request.
 *
 * @example
 * ```ts
 * const { data } = await vault.request('GET', 'transit/wrapping_key')
 * const ciphertext = wrapForVaultImport(String(data.public_key), material)
 * ```
 */
export function wrapForVaultImport(wrappingKeyPem: string, material: Uint8Array): string {
  let wrappingKey
  try {
    wrappingKey = createPublicKey(wrappingKeyPem)
  } catch (err) {
    throw new M2msecError('ERR_SE_UNAVAILABLE', 'Vault wrapping_key is not a PEM public key', {}, { cause: err })
  }
  if (wrappingKey.asymmetricKeyType !== 'rsa' || wrappingKey.asymmetricKeyDetails?.modulusLength !== 4096) {
    // Vault splits the ciphertext at byte 512, which only fits RSA-4096.
    throw new M2msecError('ERR_SE_UNAVAILABLE', 'Vault wrapping_key is not an RSA-4096 key')
  }
  const ephemeral = randomBytes(32)
  try {
    const wrappedKey = publicEncrypt(
      {
        key: wrappingKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
      },
      ephemeral,
    )
    return Buffer.concat([wrappedKey, kwpWrap(ephemeral, material)]).toString('base64')
  } finally {
    ephemeral.fill(0)
  }
}
