/**
 * Loading the software SE master key from a file (a mounted Kubernetes secret, a file written
 * by `openssl rand -base64 32 > key`). Secrets never come inline from configuration.
 */
import { readFile } from 'node:fs/promises'
import { M2msecError } from '@m2msec/errors'

/** Length of the master key in bytes (AES-256). */
export const MASTER_KEY_LENGTH = 32

/**
 * Reads a 32-byte master key from `path`. The file holds either the 32 raw bytes, or the key
 * as text: 64 hex digits, or base64 / base64url (surrounding whitespace is ignored). Errors
 * name the path, never the content.
 *
 * @example
 * ```ts
 * // openssl rand -base64 32 > /run/secrets/kms-master-key
 * const masterKey = await loadMasterKeyFile('/run/secrets/kms-master-key')
 * ```
 */
export async function loadMasterKeyFile(path: string): Promise<Uint8Array> {
  let raw: Buffer
  try {
    raw = await readFile(path)
  } catch (err) {
    throw new M2msecError(
      'ERR_CONFIG_INVALID',
      'cannot read the software SE master key file',
      { field: 'masterKeyFile', path },
      { cause: err },
    )
  }
  try {
    const key = decodeMasterKey(raw)
    if (key === undefined) {
      throw new M2msecError(
        'ERR_CONFIG_INVALID',
        'the software SE master key file must hold 32 bytes: raw, 64 hex digits, or base64',
        { field: 'masterKeyFile', path },
      )
    }
    return key
  } finally {
    raw.fill(0)
  }
}

function decodeMasterKey(raw: Buffer): Uint8Array | undefined {
  if (raw.length === MASTER_KEY_LENGTH) return new Uint8Array(raw)
  const text = raw.toString('latin1').trim()
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'))
  if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(text)) {
    const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
    if (bytes.length === MASTER_KEY_LENGTH) return new Uint8Array(bytes)
  }
  return undefined
}
