/**
 * The `aws-kms` secure environment: every key is one AWS KMS key, every operation one KMS
 * API call. The ref is `awskms:<key ARN>`; no key material ever reaches this process except
 * import material, which leaves it wrapped under the key's RSA import key.
 *
 * What AWS KMS cannot do, and this SE therefore does not offer (ERR_SE_NOT_SUPPORTED):
 * ED25519_SIGN, EC_P256_ECDH, MILENAGE, HKDF / 3GPP KDF derivation, key wrap/unwrap, and
 * exportable keys (nothing can leave AWS KMS).
 *
 * AES_256_GCM is off by default: KMS encrypts with AES-256-GCM inside its HSMs but returns
 * only its own ciphertext format (no caller-visible IV or tag, no interop with the same key
 * material elsewhere, 1..4096-byte plaintexts), which is not the contract's SealedData. With
 * `kmsCiphertext: true` the SE offers it anyway in a declared form: SealedData carries the
 * whole AWS ciphertext blob in `ciphertext`, with an empty `iv` and `tag`, and decrypt accepts
 * only that shape. GenerateMac takes 1..4096-byte messages (an empty message is
 * ERR_INVALID_ARGUMENT: KMS cannot MAC it).
 *
 * AAD: KMS authenticates an "encryption context" (string map) instead of bytes. Non-empty AAD
 * becomes `{ "m2msec-aad-sha256": base64url(SHA-256(aad)) }`: bounded in size whatever the
 * AAD, binding by collision resistance, and the AAD itself never shows up in CloudTrail.
 * Empty AAD means no encryption context, matching GCM where empty AAD authenticates nothing.
 */
import type { KeyObject } from 'node:crypto'
import { constants, createHash, createPublicKey, publicEncrypt } from 'node:crypto'
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
  notSupported,
  requireBytes,
  requireKey,
  requireRef,
  requireSpec,
  unknownRef,
} from '../checks.ts'
import { exportMaterial, parseKeyMaterial } from '../key-material.ts'
import type { KmsClient } from './client.ts'
import { derToP1363, p1363ToDer } from './ecdsa-der.ts'

/** Prefix of every ref this SE issues. */
export const AWS_KMS_REF_PREFIX = 'awskms:'
/** KMS Encrypt / GenerateMac accept 1..4096 bytes. */
export const AWS_KMS_MAX_DATA = 4096
/** The encryption-context entry that carries the AAD digest. */
export const AAD_CONTEXT_KEY = 'm2msec-aad-sha256'

const CAPABILITIES: SeCapabilities = {
  algorithms: ['HMAC_SHA256', 'EC_P256_SIGN'],
  operations: ['generate', 'import', 'destroy', 'sign', 'verify', 'mac'],
}
const CAPABILITIES_WITH_KMS_CIPHERTEXT: SeCapabilities = {
  algorithms: ['AES_256_GCM', 'HMAC_SHA256', 'EC_P256_SIGN'],
  operations: ['generate', 'import', 'destroy', 'encrypt', 'decrypt', 'sign', 'verify', 'mac'],
}

const KEY_SPECS: Readonly<Partial<Record<KeyAlgorithm, { KeySpec: string; KeyUsage: string }>>> = {
  AES_256_GCM: { KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' },
  HMAC_SHA256: { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' },
  EC_P256_SIGN: { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' },
}

/** What {@link createAwsKmsSe} needs. */
export interface AwsKmsSeConfig {
  readonly name: string
  readonly client: KmsClient
  readonly protectionLevel: ProtectionLevel
  /** Waiting period of ScheduleKeyDeletion (7..30 days, AWS's own bounds). */
  readonly pendingWindowInDays: number
  /** Offer AES_256_GCM with the AWS ciphertext blob as SealedData (see the module comment). */
  readonly kmsCiphertext?: boolean
}

/**
 * Builds the SE over an AWS KMS client.
 *
 * @example
 * ```ts
 * const se = createAwsKmsSe({ name: 'aws-eu1', client, protectionLevel: 3, pendingWindowInDays: 7 })
 * const { ref } = await se.generateKey({ algorithm: 'EC_P256_SIGN', label: 't1/k1/1' })
 * ```
 */
export function createAwsKmsSe(config: AwsKmsSeConfig): SecureEnvironment {
  const { name, client } = config
  const caps = config.kmsCiphertext === true ? CAPABILITIES_WITH_KMS_CIPHERTEXT : CAPABILITIES
  let closed = false

  function ensureOpen(): void {
    if (closed) {
      throw new M2msecError('ERR_SE_UNAVAILABLE', `secure environment ${name} is closed`, { secureEnvironment: name })
    }
  }

  function requireNotExportable(spec: KeySpec): void {
    if (spec.exportable === true) {
      throw notSupported(name, 'exportable keys (no key leaves AWS KMS); create the key non-exportable', {
        field: 'exportable',
      })
    }
  }

  async function createKey(algorithm: KeyAlgorithm, label: string, external: boolean): Promise<string> {
    const out = await client.call('CreateKey', {
      ...KEY_SPECS[algorithm],
      Description: `m2msec ${label}`.slice(0, 8192),
      ...(external ? { Origin: 'EXTERNAL' } : {}),
    })
    const meta = out['KeyMetadata'] as Record<string, unknown> | undefined
    return field(meta ?? {}, 'Arn', 'CreateKey')
  }

  async function publicKeyOf(arn: string): Promise<Uint8Array> {
    const key = spkiKey(
      decode(field(await client.call('GetPublicKey', { KeyId: arn }), 'PublicKey', 'GetPublicKey')),
      'GetPublicKey',
    )
    if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw unexpected('GetPublicKey', 'not a P-256 key')
    return new Uint8Array(key.export({ format: 'der', type: 'spki' }))
  }

  /** Best effort: a half-created key must not linger once its creation failed. */
  async function discard(arn: string): Promise<void> {
    await client
      .call('ScheduleKeyDeletion', {
        KeyId: arn,
        PendingWindowInDays: config.pendingWindowInDays,
      })
      .catch(() => undefined)
  }

  async function finish(algorithm: KeyAlgorithm, arn: string): Promise<CreatedKey> {
    const ref = AWS_KMS_REF_PREFIX + arn
    if (algorithm !== 'EC_P256_SIGN') return { ref }
    try {
      return { ref, publicKey: await publicKeyOf(arn) }
    } catch (err) {
      await discard(arn)
      throw err
    }
  }

  return {
    name,
    type: 'aws-kms',
    protectionLevel: config.protectionLevel,
    capabilities: caps,

    async generateKey(spec: KeySpec): Promise<CreatedKey> {
      ensureOpen()
      const algorithm = requireSpec(name, caps, spec, 'generate')
      requireNotExportable(spec)
      return finish(algorithm, await createKey(algorithm, spec.label, false))
    },

    async importKey(spec: ImportSpec): Promise<CreatedKey> {
      ensureOpen()
      const algorithm = requireSpec(name, caps, spec, 'import')
      requireNotExportable(spec)
      const material = exportMaterial(parseKeyMaterial(algorithm, spec.material))
      const arn = await createKey(algorithm, spec.label, true)
      try {
        // RSAES_OAEP_SHA_256 under an RSA-4096 wrapping key fits every material we import
        // (at most 446 bytes; a P-256 PKCS#8 key is about 140).
        const params = await client.call('GetParametersForImport', {
          KeyId: arn,
          WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
          WrappingKeySpec: 'RSA_4096',
        })
        const wrappingKey = spkiKey(
          decode(field(params, 'PublicKey', 'GetParametersForImport')),
          'GetParametersForImport',
        )
        const wrapped = publicEncrypt(
          {
            key: wrappingKey,
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: 'sha256',
          },
          material,
        )
        await client.call('ImportKeyMaterial', {
          KeyId: arn,
          ImportToken: field(params, 'ImportToken', 'GetParametersForImport'),
          EncryptedKeyMaterial: wrapped.toString('base64'),
          ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        })
      } catch (err) {
        await discard(arn)
        throw err
      } finally {
        material.fill(0)
      }
      return finish(algorithm, arn)
    },

    async destroyKey(key: SeKeyHandle): Promise<void> {
      ensureOpen()
      requireRef(key?.ref)
      // A ref this SE never issued names no key of ours: nothing to destroy.
      if (!key.ref.startsWith(AWS_KMS_REF_PREFIX)) return
      const arn = parseRef(key.ref)
      try {
        await client.call('ScheduleKeyDeletion', {
          KeyId: arn,
          PendingWindowInDays: config.pendingWindowInDays,
        })
      } catch (err) {
        // Unknown, or already pending deletion: either way the key is gone for us.
        const type = (err as M2msecError).details?.['awsType']
        if (type === 'NotFoundException' || type === 'KMSInvalidStateException') return
        throw err
      }
    },

    async encrypt(key: SeKeyHandle, plaintext: Uint8Array, aad: Uint8Array): Promise<SealedData> {
      ensureOpen()
      requireKey(name, caps, key, ['AES_256_GCM'], 'encrypt')
      requireBytes(plaintext, 'plaintext')
      requireBytes(aad, 'aad')
      requireDataLength(plaintext, 'plaintext')
      const out = await client.call('Encrypt', {
        KeyId: parseRef(key.ref),
        Plaintext: Buffer.from(plaintext).toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        ...encryptionContext(aad),
      })
      return {
        iv: new Uint8Array(0),
        ciphertext: decode(field(out, 'CiphertextBlob', 'Encrypt')),
        tag: new Uint8Array(0),
      }
    },

    async decrypt(key: SeKeyHandle, sealed: SealedData, aad: Uint8Array): Promise<Uint8Array> {
      ensureOpen()
      requireKey(name, caps, key, ['AES_256_GCM'], 'decrypt')
      requireBytes(sealed?.iv, 'iv')
      requireBytes(sealed.ciphertext, 'ciphertext')
      requireBytes(sealed.tag, 'tag')
      requireBytes(aad, 'aad')
      if (sealed.iv.length !== 0 || sealed.tag.length !== 0) {
        throw invalidArgument('aws-kms sealed data is the AWS ciphertext blob alone: iv and tag must be empty', {
          field: 'sealed',
        })
      }
      if (sealed.ciphertext.length === 0) throw ciphertextInvalid()
      const out = await client.call('Decrypt', {
        KeyId: parseRef(key.ref),
        CiphertextBlob: Buffer.from(sealed.ciphertext).toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        ...encryptionContext(aad),
      })
      return decode(field(out, 'Plaintext', 'Decrypt'))
    },

    async sign(key: SeKeyHandle, message: Uint8Array): Promise<Uint8Array> {
      ensureOpen()
      requireKey(name, caps, key, ['EC_P256_SIGN'], 'sign')
      requireBytes(message, 'message')
      // DIGEST gives the same ECDSA_SHA_256 signature as RAW without RAW's 1..4096-byte limit.
      const out = await client.call('Sign', {
        KeyId: parseRef(key.ref),
        Message: sha256(message).toString('base64'),
        MessageType: 'DIGEST',
        SigningAlgorithm: 'ECDSA_SHA_256',
      })
      const signature = derToP1363(decode(field(out, 'Signature', 'Sign')), 32)
      if (signature === undefined) throw unexpected('Sign', 'Signature is not a DER ECDSA signature')
      return signature
    },

    async verify(key: SeKeyHandle, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
      ensureOpen()
      requireKey(name, caps, key, ['EC_P256_SIGN'], 'verify')
      requireBytes(message, 'message')
      requireBytes(signature, 'signature')
      if (signature.length !== 64) return false
      try {
        const out = await client.call('Verify', {
          KeyId: parseRef(key.ref),
          Message: sha256(message).toString('base64'),
          MessageType: 'DIGEST',
          Signature: Buffer.from(p1363ToDer(signature)).toString('base64'),
          SigningAlgorithm: 'ECDSA_SHA_256',
        })
        return out['SignatureValid'] === true
      } catch (err) {
        // KMS answers a wrong signature with an error, not with SignatureValid=false.
        if ((err as M2msecError).details?.['awsType'] === 'KMSInvalidSignatureException') return false
        throw err
      }
    },

    async mac(key: SeKeyHandle, data: Uint8Array): Promise<Uint8Array> {
      ensureOpen()
      requireKey(name, caps, key, ['HMAC_SHA256'], 'mac')
      requireBytes(data, 'data')
      requireDataLength(data, 'data')
      const out = await client.call('GenerateMac', {
        KeyId: parseRef(key.ref),
        Message: Buffer.from(data).toString('base64'),
        MacAlgorithm: 'HMAC_SHA_256',
      })
      const mac = decode(field(out, 'Mac', 'GenerateMac'))
      if (mac.length !== 32) throw unexpected('GenerateMac', 'Mac is not 32 bytes')
      return mac
    },

    async close(): Promise<void> {
      closed = true
      client.close()
    },
  }
}

/** `awskms:<arn or key id>` → the KeyId to send. */
function parseRef(ref: unknown): string {
  requireRef(ref)
  if (!ref.startsWith(AWS_KMS_REF_PREFIX) || ref.length === AWS_KMS_REF_PREFIX.length) throw unknownRef()
  return ref.slice(AWS_KMS_REF_PREFIX.length)
}

function encryptionContext(aad: Uint8Array): {
  EncryptionContext?: Record<string, string>
} {
  if (aad.length === 0) return {}
  return {
    EncryptionContext: { [AAD_CONTEXT_KEY]: sha256(aad).toString('base64url') },
  }
}

function requireDataLength(data: Uint8Array, fieldName: string): void {
  if (data.length === 0 || data.length > AWS_KMS_MAX_DATA) {
    throw invalidArgument(`${fieldName} must be 1..${AWS_KMS_MAX_DATA} bytes for AWS KMS`, { field: fieldName })
  }
}

function spkiKey(der: Uint8Array, operation: string): KeyObject {
  try {
    return createPublicKey({
      key: Buffer.from(der),
      format: 'der',
      type: 'spki',
    })
  } catch {
    throw unexpected(operation, 'PublicKey is not a DER SubjectPublicKeyInfo')
  }
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest()
}

function decode(base64: string): Uint8Array {
  return new Uint8Array(Buffer.from(base64, 'base64'))
}

/** A string member of a KMS response, or ERR_SE_UNAVAILABLE when the answer is malformed. */
function field(out: Readonly<Record<string, unknown>>, member: string, operation: string): string {
  const value = out[member]
  if (typeof value !== 'string' || value === '') throw unexpected(operation, `${member} missing`)
  return value
}

function unexpected(operation: string, what: string): M2msecError {
  return new M2msecError('ERR_SE_UNAVAILABLE', `AWS KMS ${operation}: unexpected response (${what})`, { operation })
}
