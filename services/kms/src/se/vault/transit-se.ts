/**
 * The `vault` secure environment: HashiCorp Vault (>= 1.13) or OpenBao Transit. Every SE key
 * is one transit key, created `exportable: false`; `/export` and `/backup` are never called.
 *
 * Ref: `vault:<mount>/<key name>`, the name being `<keyPrefix><label>.<type tag>.<16 hex>`: the
 * random suffix keeps names unique (Vault's create is an upsert), the type tag lets a ref
 * presented with the wrong algorithm fail with ERR_KEY_TYPE_MISMATCH before any request (the
 * transit /hmac endpoint would otherwise MAC with any key type). The KMS versions keys itself (each KMS key version is a new
 * SE key), so this SE never rotates a transit key and pins every operation to key version 1:
 * ciphertexts, signatures and MACs are `vault:v1:<base64>` on the wire and the prefix is
 * stripped/re-added here. Rotating an m2msec transit key by hand is not supported.
 *
 * Mapping (transit API, docs: developer.hashicorp.com/vault/api-docs/secret/transit):
 * - AES_256_GCM  → type aes256-gcm96. /encrypt returns base64(nonce(12) || ct || tag(16)),
 *   which maps 1:1 onto SealedData; AAD goes in `associated_data` (Vault 1.13+).
 * - HMAC_SHA256  → type hmac (key_size 32), /hmac/:name/sha2-256; imported keys 32..64 bytes.
 * - EC_P256_SIGN → type ecdsa-p256, /sign with hash_algorithm sha2-256 and
 *   marshaling_algorithm jws (r||s, base64url), which is the contract's P1363 form.
 * - ED25519_SIGN → type ed25519, pure Ed25519.
 * - import       → BYOK: /wrapping_key, then /keys/:name/import (see byok.ts).
 * Not offered (ERR_SE_NOT_SUPPORTED): EC_P256_ECDH, MILENAGE, HKDF / 3GPP KDF, wrap/unwrap.
 *
 * Operator note: Vault creates a missing key on /encrypt ("upsert") when the token has the
 * `create` capability. Grant m2msec only `update` on `<mount>/encrypt/*`, or set
 * `disable_upsert` on `<mount>/config/keys`, so a destroyed key's ref cannot resurrect it.
 */
import { createPublicKey, randomBytes } from 'node:crypto'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import type {
  CreatedKey,
  ImportSpec,
  KeyAlgorithm,
  KeySpec,
  ProtectionLevel,
  SealedData,
  SeCapabilities,
  SecureEnvironment,
  SeKeyHandle,
} from '../api.ts'
import {
  ciphertextInvalid,
  keyTypeMismatch,
  notSupported,
  requireBytes,
  requireKey,
  requireRef,
  requireSealed,
  requireSpec,
  unknownRef,
} from '../checks.ts'
import { exportMaterial, parseKeyMaterial } from '../key-material.ts'
import { wrapForVaultImport } from './byok.ts'
import type { VaultClient, VaultReply } from './client.ts'

/** Prefix of every ref this SE issues. */
export const VAULT_REF_PREFIX = 'vault:'

const CAPABILITIES: SeCapabilities = {
  algorithms: ['AES_256_GCM', 'HMAC_SHA256', 'EC_P256_SIGN', 'ED25519_SIGN'],
  operations: ['generate', 'import', 'destroy', 'encrypt', 'decrypt', 'sign', 'verify', 'mac'],
}

/** Transit key type and the tag this SE puts in key names, per algorithm. */
const TRANSIT: Readonly<Partial<Record<KeyAlgorithm, { readonly type: string; readonly tag: string }>>> = {
  AES_256_GCM: { type: 'aes256-gcm96', tag: 'aes256gcm' },
  HMAC_SHA256: { type: 'hmac', tag: 'hmac' },
  EC_P256_SIGN: { type: 'ecdsa-p256', tag: 'p256' },
  ED25519_SIGN: { type: 'ed25519', tag: 'ed25519' },
}
const ALGORITHM_BY_TAG: ReadonlyMap<string, KeyAlgorithm> = new Map(
  Object.entries(TRANSIT).map(([algorithm, t]) => [t.tag, algorithm as KeyAlgorithm]),
)

/** The only transit key version this SE uses (see the module comment). */
const KEY_VERSION = 1

/** What {@link createVaultTransitSe} needs. */
export interface VaultTransitSeConfig {
  readonly name: string
  readonly client: VaultClient
  /** Mount path of the transit engine, e.g. `transit` or `kms/transit`. */
  readonly mount: string
  /** Start of every transit key name this SE creates (must start with a letter or digit). */
  readonly keyPrefix: string
  readonly protectionLevel: ProtectionLevel
}

/**
 * Builds the SE over a Vault client.
 *
 * @example
 * ```ts
 * const se = createVaultTransitSe({ name: 'vault', client, mount: 'transit', keyPrefix: 'm2msec.', protectionLevel: 2 })
 * const { ref } = await se.generateKey({ algorithm: 'AES_256_GCM', label: 't1/k1/1' }) // vault:transit/m2msec.t1_k1_1.<hex>
 * ```
 */
export function createVaultTransitSe(config: VaultTransitSeConfig): SecureEnvironment {
  const { name, client, mount } = config
  let wrappingKeyPem: Promise<string> | undefined
  let closed = false

  function ensureOpen(): void {
    if (closed) {
      throw new M2msecError('ERR_SE_UNAVAILABLE', `secure environment ${name} is closed`, { secureEnvironment: name })
    }
  }

  async function call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    operation: string,
    body?: Readonly<Record<string, unknown>>,
  ): Promise<VaultReply> {
    const reply = await client.request(method, `${mount}/${path}`, body)
    // Vault ignores unknown parameters with only a warning; an ignored associated_data would
    // silently drop the AAD, so any ignored parameter is a hard error.
    const ignored = reply.warnings.find((w) => /unrecognized parameters/i.test(w))
    if (ignored !== undefined) {
      throw new M2msecError('ERR_SE_NOT_SUPPORTED', `Vault ${operation}: this Vault version ${ignored.slice(0, 200)}`, {
        secureEnvironment: name,
        operation,
      })
    }
    return reply
  }

  /** Maps a 4xx reply to the contract's codes. */
  function failure(reply: VaultReply, operation: string): M2msecError {
    const text = reply.errors.join('; ').slice(0, 300)
    // "encryption key not found" and the like: the ref names no key (any more).
    if (reply.status === 400 && /key not found|no existing key/i.test(text)) return unknownRef()
    return invalidArgument(`Vault ${operation}: ${text || `HTTP ${reply.status}`}`, { operation })
  }

  async function ok(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    operation: string,
    body?: Readonly<Record<string, unknown>>,
  ): Promise<Readonly<Record<string, unknown>>> {
    const reply = await call(method, path, operation, body)
    if (reply.status >= 300) throw failure(reply, operation)
    return reply.data
  }

  /** The URL-encoded transit key name of a handle whose algorithm requireKey has checked. */
  function keyPath(key: SeKeyHandle, operation: string): string {
    const parsed = parseRef(key.ref, mount)
    if (parsed === undefined) throw unknownRef()
    if (parsed.algorithm !== key.algorithm) throw keyTypeMismatch(operation, parsed.algorithm)
    return encodeURIComponent(parsed.keyName)
  }

  async function publicKeyOf(keyName: string, algorithm: KeyAlgorithm): Promise<Uint8Array> {
    const data = await ok('GET', `keys/${encodeURIComponent(keyName)}`, 'read key')
    const versions = data['keys'] as Record<string, { public_key?: unknown }> | undefined
    const published = versions?.[String(KEY_VERSION)]?.public_key
    if (typeof published !== 'string' || published === '') throw unexpected('read key', 'public_key missing')
    try {
      // ecdsa-p256 keys publish a PEM SubjectPublicKeyInfo, ed25519 keys the raw 32 bytes in base64.
      const key =
        algorithm === 'ED25519_SIGN'
          ? createPublicKey({
              key: {
                kty: 'OKP',
                crv: 'Ed25519',
                x: Buffer.from(published, 'base64').toString('base64url'),
              },
              format: 'jwk',
            })
          : createPublicKey(published)
      const fits =
        algorithm === 'ED25519_SIGN'
          ? key.asymmetricKeyType === 'ed25519'
          : key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
      if (!fits) throw new Error('curve')
      return new Uint8Array(key.export({ format: 'der', type: 'spki' }))
    } catch {
      throw unexpected('read key', `public_key is not a ${algorithm} public key`)
    }
  }

  async function finish(algorithm: KeyAlgorithm, keyName: string): Promise<CreatedKey> {
    const ref = `${VAULT_REF_PREFIX}${mount}/${keyName}`
    if (algorithm !== 'EC_P256_SIGN' && algorithm !== 'ED25519_SIGN') return { ref }
    try {
      return { ref, publicKey: await publicKeyOf(keyName, algorithm) }
    } catch (err) {
      await deleteKey(keyName).catch(() => undefined)
      throw err
    }
  }

  async function deleteKey(keyName: string): Promise<void> {
    const path = `keys/${encodeURIComponent(keyName)}`
    const read = await call('GET', path, 'read key')
    // A missing key reads as 404 with an empty error list; a 404 naming an error is a wrong mount.
    if (read.status === 404 && read.errors.length === 0) return
    if (read.status >= 300) throw failure(read, 'read key')
    await ok('POST', `${path}/config`, 'configure key', {
      deletion_allowed: true,
    })
    await ok('DELETE', path, 'delete key')
  }

  function newKeyName(algorithm: KeyAlgorithm, label: string): string {
    const readable = label.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 96)
    return `${config.keyPrefix}${readable}.${TRANSIT[algorithm]?.tag}.${randomBytes(8).toString('hex')}`
  }

  /** This SE cannot wrap keys, so it cannot honour `exportable` (and does not fake it). */
  function requireNotExportable(spec: KeySpec): void {
    if (spec.exportable === true) {
      throw notSupported(name, 'exportable keys (it has no key wrap); create the key non-exportable', {
        field: 'exportable',
      })
    }
  }

  return {
    name,
    type: 'vault',
    protectionLevel: config.protectionLevel,
    capabilities: CAPABILITIES,

    async generateKey(spec: KeySpec): Promise<CreatedKey> {
      ensureOpen()
      const algorithm = requireSpec(name, CAPABILITIES, spec, 'generate')
      requireNotExportable(spec)
      const keyName = newKeyName(algorithm, spec.label)
      await ok('POST', `keys/${encodeURIComponent(keyName)}`, 'create key', {
        type: TRANSIT[algorithm]?.type,
        exportable: false,
        allow_plaintext_backup: false,
        ...(algorithm === 'HMAC_SHA256' ? { key_size: 32 } : {}),
      })
      return finish(algorithm, keyName)
    },

    async importKey(spec: ImportSpec): Promise<CreatedKey> {
      ensureOpen()
      const algorithm = requireSpec(name, CAPABILITIES, spec, 'import')
      requireNotExportable(spec)
      // Validate here: Vault answers malformed material with HTTP 500, which would read as "unavailable".
      const material = exportMaterial(parseKeyMaterial(algorithm, spec.material))
      try {
        wrappingKeyPem ??= ok('GET', 'wrapping_key', 'read wrapping key').then((d) => {
          if (typeof d['public_key'] !== 'string') throw unexpected('read wrapping key', 'public_key missing')
          return d['public_key']
        })
        const pem = await wrappingKeyPem.catch((err: unknown) => {
          wrappingKeyPem = undefined
          throw err
        })
        const keyName = newKeyName(algorithm, spec.label)
        await ok('POST', `keys/${encodeURIComponent(keyName)}/import`, 'import key', {
          type: TRANSIT[algorithm]?.type,
          ciphertext: wrapForVaultImport(pem, material),
          hash_function: 'SHA256',
          exportable: false,
          allow_plaintext_backup: false,
          allow_rotation: false,
        })
        return await finish(algorithm, keyName)
      } finally {
        material.fill(0)
      }
    },

    async destroyKey(key: SeKeyHandle): Promise<void> {
      ensureOpen()
      requireRef(key?.ref)
      // A ref this SE never issued names no key of ours: nothing to destroy.
      const parsed = parseRef(key.ref, mount)
      if (parsed !== undefined) await deleteKey(parsed.keyName)
    },

    async encrypt(key: SeKeyHandle, plaintext: Uint8Array, aad: Uint8Array): Promise<SealedData> {
      ensureOpen()
      requireKey(name, CAPABILITIES, key, ['AES_256_GCM'], 'encrypt')
      requireBytes(plaintext, 'plaintext')
      requireBytes(aad, 'aad')
      const data = await ok('POST', `encrypt/${keyPath(key, 'encrypt')}`, 'encrypt', {
        plaintext: b64(plaintext),
        key_version: KEY_VERSION,
        ...(aad.length > 0 ? { associated_data: b64(aad) } : {}),
      })
      const blob = unversion(data['ciphertext'], 'encrypt', 'base64')
      if (blob.length < 28) throw unexpected('encrypt', 'ciphertext too short')
      return {
        iv: blob.subarray(0, 12),
        ciphertext: blob.subarray(12, blob.length - 16),
        tag: blob.subarray(blob.length - 16),
      }
    },

    async decrypt(key: SeKeyHandle, sealed: SealedData, aad: Uint8Array): Promise<Uint8Array> {
      ensureOpen()
      requireKey(name, CAPABILITIES, key, ['AES_256_GCM'], 'decrypt')
      requireSealed(sealed)
      requireBytes(aad, 'aad')
      const blob = Buffer.concat([sealed.iv, sealed.ciphertext, sealed.tag])
      const reply = await call('POST', `decrypt/${keyPath(key, 'decrypt')}`, 'decrypt', {
        ciphertext: `vault:v${KEY_VERSION}:${blob.toString('base64')}`,
        ...(aad.length > 0 ? { associated_data: b64(aad) } : {}),
      })
      if (reply.status >= 300) {
        // "cipher: message authentication failed" / "invalid ciphertext: unable to decrypt"
        if (/authentication failed|unable to decrypt|invalid ciphertext/i.test(reply.errors.join(' '))) {
          throw ciphertextInvalid()
        }
        throw failure(reply, 'decrypt')
      }
      const plaintext = reply.data['plaintext']
      // An empty plaintext comes back as "" (or, from some versions, not at all).
      if (plaintext === undefined || plaintext === '') return new Uint8Array(0)
      if (typeof plaintext !== 'string') throw unexpected('decrypt', 'plaintext missing')
      return new Uint8Array(Buffer.from(plaintext, 'base64'))
    },

    async sign(key: SeKeyHandle, message: Uint8Array): Promise<Uint8Array> {
      ensureOpen()
      const algorithm = requireKey(name, CAPABILITIES, key, ['EC_P256_SIGN', 'ED25519_SIGN'], 'sign')
      requireBytes(message, 'message')
      const ecdsa = algorithm === 'EC_P256_SIGN'
      const data = await ok('POST', `sign/${keyPath(key, 'sign')}`, 'sign', {
        input: b64(message),
        key_version: KEY_VERSION,
        ...(ecdsa ? { hash_algorithm: 'sha2-256', marshaling_algorithm: 'jws' } : {}),
      })
      const signature = unversion(data['signature'], 'sign', ecdsa ? 'base64url' : 'base64')
      if (signature.length !== 64) throw unexpected('sign', 'signature is not 64 bytes')
      return signature
    },

    async verify(key: SeKeyHandle, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
      ensureOpen()
      const algorithm = requireKey(name, CAPABILITIES, key, ['EC_P256_SIGN', 'ED25519_SIGN'], 'verify')
      requireBytes(message, 'message')
      requireBytes(signature, 'signature')
      if (signature.length !== 64) return false
      const ecdsa = algorithm === 'EC_P256_SIGN'
      const data = await ok('POST', `verify/${keyPath(key, 'verify')}`, 'verify', {
        input: b64(message),
        signature: `vault:v${KEY_VERSION}:${Buffer.from(signature).toString(ecdsa ? 'base64url' : 'base64')}`,
        ...(ecdsa ? { hash_algorithm: 'sha2-256', marshaling_algorithm: 'jws' } : {}),
      })
      return data['valid'] === true
    },

    async mac(key: SeKeyHandle, data: Uint8Array): Promise<Uint8Array> {
      ensureOpen()
      requireKey(name, CAPABILITIES, key, ['HMAC_SHA256'], 'mac')
      requireBytes(data, 'data')
      const out = await ok('POST', `hmac/${keyPath(key, 'mac')}/sha2-256`, 'hmac', {
        input: b64(data),
        key_version: KEY_VERSION,
      })
      const mac = unversion(out['hmac'], 'hmac', 'base64')
      if (mac.length !== 32) throw unexpected('hmac', 'hmac is not 32 bytes')
      return mac
    },

    async close(): Promise<void> {
      closed = true
      client.close()
    },
  }
}

/** `vault:<mount>/<name>` → name and algorithm; undefined for a ref this SE (mount) did not issue. */
function parseRef(ref: string, mount: string): { keyName: string; algorithm: KeyAlgorithm } | undefined {
  const prefix = `${VAULT_REF_PREFIX}${mount}/`
  const keyName = ref.startsWith(prefix) ? ref.slice(prefix.length) : ''
  const match = /^\w[\w.@-]*\.([a-z0-9]+)\.[0-9a-f]{16}$/.exec(keyName)
  const algorithm = ALGORITHM_BY_TAG.get(match?.[1] ?? '')
  return algorithm === undefined ? undefined : { keyName, algorithm }
}

/** `vault:v1:<data>` → bytes; any other version means the key was rotated outside m2msec. */
function unversion(value: unknown, operation: string, encoding: 'base64' | 'base64url'): Uint8Array {
  const prefix = `vault:v${KEY_VERSION}:`
  if (typeof value !== 'string' || !value.startsWith(prefix)) throw unexpected(operation, `result is not ${prefix}…`)
  return new Uint8Array(Buffer.from(value.slice(prefix.length), encoding))
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64')
}

function unexpected(operation: string, what: string): M2msecError {
  return new M2msecError('ERR_SE_UNAVAILABLE', `Vault ${operation}: unexpected response (${what})`, { operation })
}
