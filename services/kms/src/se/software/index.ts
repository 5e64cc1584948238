/**
 * The `software` secure environment: the embedded default, for development and for
 * deployments that accept TS-0003 protection level 1.
 *
 * Design: stateless. Every key's material is sealed with AES-256-GCM under a key derived from
 * the 32-byte master key and the sealed blob is the key `ref` (see `sealed-ref.ts`). The KMS
 * stores refs in JetStream KV, so key material is "sealed under a master key, stored in KV";
 * any replica with the same master key can use any ref, and there is nothing to replicate.
 * Unsealed keys are cached as node:crypto KeyObjects in a bounded LRU.
 *
 * Protection level 1 (TS-0003 table 6.3.1-1, "low: passive observers; plain software on
 * general-purpose hardware"): the master key and unsealed keys live in the KMS process memory,
 * so anyone who can read that memory or the master key file gets every key. That is exactly
 * level 1; it resists someone who only sees KV contents, backups or traffic.
 *
 * Destruction: the SE holds no state, so `destroyKey` only evicts the cached copy. The material
 * is destroyed when the KMS deletes the ref (it blanks destroyed versions); JetStream KV history
 * and backups keep older copies of sealed refs until they age out or the master key is retired.
 *
 * @example
 * ```ts
 * const se = await create('software', { masterKey: await loadMasterKeyFile('/run/secrets/kms-master-key') })
 * const { ref } = await se.generateKey({ algorithm: 'AES_256_GCM', label: 't1/k1/1' })
 * const sealed = await se.encrypt({ ref, algorithm: 'AES_256_GCM' }, data, aad)
 * ```
 */
import type { KeyObject } from 'node:crypto'
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto'
import { compactDecrypt, CompactEncrypt } from 'jose'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import type { BlockCipher } from '@m2msec/crypto'
import { aes128EcbBlockCipher, hkdfSha256, kdf3gpp, milenage as runMilenage } from '@m2msec/crypto'
import type {
  AeadInput,
  CreatedKey,
  DeriveParams,
  ImportSpec,
  KeyAlgorithm,
  KeyDeriver,
  KeySpec,
  KeyWrapper,
  MilenageCapable,
  MilenageInput,
  MilenageOutput,
  ProtectionLevel,
  SealedData,
  SeCapabilities,
  SecureEnvironment,
  SeKeyHandle,
  SeOperation,
  WrapRecipient,
} from '../api.ts'
import { KEY_ALGORITHMS } from '../api.ts'
import {
  GCM_IV_LENGTH,
  ciphertextInvalid,
  exportDenied,
  keyTypeMismatch,
  notSupported,
  requireBytes,
  requireKey,
  requireMilenageInput,
  requireSealed,
  requireSpec,
} from '../checks.ts'
import { MAX_JWE_LENGTH, WRAP_ENC, encryptForPublicJwk, requireKid } from '../jwe-recipient.ts'
import type { KeyMaterial } from '../key-material.ts'
import { exportMaterial, parseKeyMaterial, spkiOf } from '../key-material.ts'
import { randomIv, randomIvs } from '../iv-pool.ts'
import { createAeadOffload } from './aead-offload.ts'

/** Batches of at least this many items are encrypted in the worker thread (aead-offload.ts). */
const OFFLOAD_MIN_ITEMS = 16

/** AES-256-GCM of one item with a given IV. */
function sealGcm(secret: KeyObject, iv: Buffer, plaintext: Uint8Array, aad: Uint8Array): SealedData {
  const cipher = createCipheriv('aes-256-gcm', secret, iv)
  cipher.setAAD(aad)
  const body = cipher.update(plaintext)
  // GCM is a stream mode: final() returns nothing, so the update output needs no copy.
  const rest = cipher.final()
  return { iv, ciphertext: rest.length === 0 ? body : Buffer.concat([body, rest]), tag: cipher.getAuthTag() }
}
import { Lru } from '../lru.ts'
import { openRef, readRefHeader, sealRef } from './sealed-ref.ts'

export { loadMasterKeyFile, MASTER_KEY_LENGTH } from './master-key.ts'

/** Options of the software SE. */
export interface SoftwareSeOptions {
  /** 32 bytes. Copied at creation; the caller may zero its buffer afterwards. */
  readonly masterKey: Uint8Array
  /** Unsealed keys kept in memory (LRU). Default 10 000; 0 disables the cache. */
  readonly cacheSize?: number
}

const ALL_OPERATIONS: readonly SeOperation[] = [
  'generate',
  'import',
  'destroy',
  'encrypt',
  'decrypt',
  'sign',
  'verify',
  'mac',
  'derive-hkdf',
  'derive-3gpp-kdf',
  'wrap',
  'unwrap',
  'milenage',
]

const CAPABILITIES: SeCapabilities = Object.freeze({
  algorithms: Object.freeze([...KEY_ALGORITHMS]),
  operations: Object.freeze([...ALL_OPERATIONS]),
})

/** A sealed key opened for use. */
interface OpenKey {
  readonly algorithm: KeyAlgorithm
  readonly exportable: boolean
  readonly secret?: KeyObject
  readonly privateKey?: KeyObject
  readonly publicKey?: KeyObject
  readonly milenage?: { readonly cipher: BlockCipher; readonly opc: Uint8Array }
}

// Domain separation: the master key itself is never used directly as a cipher key.
const SEAL_KEY_INFO = Buffer.from('m2msec kms software SE: ref sealing key v1', 'ascii')

/**
 * Creates a software SE named `name`. Throws ERR_CONFIG_INVALID for a master key that is not
 * 32 bytes.
 */
export async function create(
  name: string,
  options: SoftwareSeOptions,
): Promise<SecureEnvironment & KeyDeriver & KeyWrapper & MilenageCapable> {
  if (!(options.masterKey instanceof Uint8Array) || options.masterKey.length !== 32) {
    throw new M2msecError('ERR_CONFIG_INVALID', 'software SE master key must be 32 bytes', { field: 'masterKey' })
  }
  const sealKey = createSecretKey(
    Buffer.from(hkdfSync('sha256', options.masterKey, new Uint8Array(0), SEAL_KEY_INFO, 32)),
  )
  return new SoftwareSecureEnvironment(name, sealKey, options.cacheSize ?? 10_000)
}

class SoftwareSecureEnvironment implements SecureEnvironment, KeyDeriver, KeyWrapper, MilenageCapable {
  readonly type = 'software' as const
  readonly protectionLevel: ProtectionLevel = 1
  readonly capabilities = CAPABILITIES
  readonly #sealKey: KeyObject
  readonly #cache: Lru<string, OpenKey>
  #closed = false
  readonly #offload = createAeadOffload()

  constructor(
    readonly name: string,
    sealKey: KeyObject,
    cacheSize: number,
  ) {
    this.#sealKey = sealKey
    this.#cache = new Lru(cacheSize)
  }

  async generateKey(spec: KeySpec): Promise<CreatedKey> {
    this.#open()
    const algorithm = requireSpec(this.name, this.capabilities, spec, 'generate')
    return this.#store(algorithm, spec.exportable === true, generateMaterial(this.name, algorithm))
  }

  async importKey(spec: ImportSpec): Promise<CreatedKey> {
    this.#open()
    const algorithm = requireSpec(this.name, this.capabilities, spec, 'import')
    return this.#store(algorithm, spec.exportable === true, parseKeyMaterial(algorithm, spec.material))
  }

  async destroyKey(key: SeKeyHandle): Promise<void> {
    this.#open()
    if (typeof key?.ref === 'string') this.#cache.delete(key.ref)
  }

  async encrypt(key: SeKeyHandle, plaintext: Uint8Array, aad: Uint8Array): Promise<SealedData> {
    requireBytes(plaintext, 'plaintext')
    requireBytes(aad, 'aad')
    const secret = this.#use(key, ['AES_256_GCM'], 'encrypt').secret as KeyObject
    return sealGcm(secret, randomIv(GCM_IV_LENGTH), plaintext, aad)
  }

  async encryptMany(key: SeKeyHandle, items: readonly AeadInput[]): Promise<SealedData[]> {
    const secret = this.#use(key, ['AES_256_GCM'], 'encrypt').secret as KeyObject
    for (const { plaintext, aad } of items) {
      requireBytes(plaintext, 'plaintext')
      requireBytes(aad, 'aad')
    }
    const ivs = randomIvs(items.length, GCM_IV_LENGTH)
    // Large batches in the worker thread: the event loop keeps serving other calls meanwhile.
    if (items.length >= OFFLOAD_MIN_ITEMS) return this.#offload.encrypt(secret, items, ivs)
    return items.map(({ plaintext, aad }, i) => sealGcm(secret, ivs[i] as Buffer, plaintext, aad))
  }

  async decrypt(key: SeKeyHandle, sealed: SealedData, aad: Uint8Array): Promise<Uint8Array> {
    requireSealed(sealed)
    requireBytes(aad, 'aad')
    const secret = this.#use(key, ['AES_256_GCM'], 'decrypt').secret as KeyObject
    try {
      const decipher = createDecipheriv('aes-256-gcm', secret, sealed.iv)
      decipher.setAAD(aad)
      decipher.setAuthTag(sealed.tag)
      return new Uint8Array(Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]))
    } catch {
      throw ciphertextInvalid()
    }
  }

  async sign(key: SeKeyHandle, message: Uint8Array): Promise<Uint8Array> {
    requireBytes(message, 'message')
    const k = this.#use(key, ['EC_P256_SIGN', 'ED25519_SIGN'], 'sign')
    const privateKey = k.privateKey as KeyObject
    // The callback form runs in libuv's thread pool: a signature (~30 µs for P-256) does not
    // hold the event loop, so a busy KMS overlaps signing with gRPC and audit work.
    const signature = await new Promise<Buffer>((resolve, reject) => {
      const done = (err: Error | null, sig: Buffer): void => (err === null ? resolve(sig) : reject(err))
      if (k.algorithm === 'EC_P256_SIGN')
        nodeSign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' }, done)
      else nodeSign(null, message, privateKey, done)
    })
    return new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength)
  }

  async verify(key: SeKeyHandle, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    requireBytes(message, 'message')
    requireBytes(signature, 'signature')
    const k = this.#use(key, ['EC_P256_SIGN', 'ED25519_SIGN'], 'verify')
    const publicKey = k.publicKey as KeyObject
    try {
      return k.algorithm === 'EC_P256_SIGN'
        ? nodeVerify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)
        : nodeVerify(null, message, publicKey, signature)
    } catch {
      // node throws for some malformed signature encodings: a wrong signature, not bad input.
      return false
    }
  }

  async mac(key: SeKeyHandle, data: Uint8Array): Promise<Uint8Array> {
    requireBytes(data, 'data')
    const secret = this.#use(key, ['HMAC_SHA256'], 'mac').secret as KeyObject
    return new Uint8Array(createHmac('sha256', secret).update(data).digest())
  }

  async deriveKey(base: SeKeyHandle, params: DeriveParams, target: KeySpec): Promise<CreatedKey> {
    const kdf = params?.kdf
    if (kdf !== 'HKDF_SHA256' && kdf !== 'KDF_3GPP') throw invalidArgument('unknown kdf', { field: 'kdf' })
    const operation = kdf === 'HKDF_SHA256' ? 'derive-hkdf' : 'derive-3gpp-kdf'
    const allowed: KeyAlgorithm[] = kdf === 'HKDF_SHA256' ? ['HMAC_SHA256', 'AES_256_GCM'] : ['HMAC_SHA256']
    const b = this.#use(base, allowed, operation)
    const algorithm = requireSpec(this.name, this.capabilities, target, operation)
    requireDerivedTarget(this.name, algorithm)
    if (target.exportable === true && !b.exportable) {
      throw exportDenied('a key derived from a non-exportable key cannot be exportable')
    }
    const ikm = (b.secret as KeyObject).export()
    let derived: Uint8Array
    if (params.kdf === 'HKDF_SHA256') {
      requireBytes(params.salt, 'salt')
      requireBytes(params.info, 'info')
      derived = hkdfSha256(ikm, params.salt, params.info, 32)
    } else {
      requireBytes(params.s, 's')
      derived = kdf3gpp(ikm, params.s)
    }
    ikm.fill(0)
    try {
      return this.#store(algorithm, target.exportable === true, { kind: 'secret', algorithm, bytes: derived })
    } finally {
      derived.fill(0)
    }
  }

  async wrapKey(key: SeKeyHandle, recipient: WrapRecipient): Promise<string> {
    const k = this.#use(key, KEY_ALGORITHMS, 'wrap')
    if (k.algorithm === 'MILENAGE') throw exportDenied('MILENAGE keys never leave the secure environment')
    if (!k.exportable) throw exportDenied('key is not exportable')
    if (typeof recipient !== 'object' || recipient === null)
      throw invalidArgument('recipient is required', { field: 'recipient' })
    requireKid(recipient.kid)
    const plaintext = exportOpenKey(k)
    try {
      if (recipient.kind === 'kms-key') {
        const kek = this.#use(recipient.key, ['AES_256_GCM'], 'wrap').secret as KeyObject
        return await new CompactEncrypt(plaintext)
          .setProtectedHeader({ alg: 'A256KW', enc: WRAP_ENC, kid: recipient.kid })
          .encrypt(kek)
      }
      if (recipient.kind === 'public-jwk') return await encryptForPublicJwk(plaintext, recipient.jwk, recipient.kid)
      throw invalidArgument('unknown recipient kind', { field: 'recipient.kind' })
    } finally {
      plaintext.fill(0)
    }
  }

  async unwrapKey(jwe: string, unwrapWith: SeKeyHandle, target: KeySpec): Promise<CreatedKey> {
    if (typeof jwe !== 'string' || jwe.length === 0 || jwe.length > MAX_JWE_LENGTH) {
      throw invalidArgument('jwe must be a compact JWE', { field: 'jwe' })
    }
    const w = this.#use(unwrapWith, ['AES_256_GCM', 'EC_P256_ECDH'], 'unwrap')
    const algorithm = requireSpec(this.name, this.capabilities, target, 'unwrap')
    const alg = w.algorithm === 'AES_256_GCM' ? 'A256KW' : 'ECDH-ES+A256KW'
    const key = (w.algorithm === 'AES_256_GCM' ? w.secret : w.privateKey) as KeyObject
    let plaintext: Uint8Array
    try {
      const result = await compactDecrypt(jwe, key, {
        keyManagementAlgorithms: [alg],
        contentEncryptionAlgorithms: [WRAP_ENC],
      })
      plaintext = result.plaintext
    } catch (err) {
      throw joseError(err)
    }
    try {
      return this.#store(algorithm, target.exportable === true, parseKeyMaterial(algorithm, plaintext))
    } finally {
      plaintext.fill(0)
    }
  }

  async milenage(key: SeKeyHandle, input: MilenageInput): Promise<MilenageOutput> {
    requireMilenageInput(input)
    const m = this.#use(key, ['MILENAGE'], 'milenage').milenage
    if (m === undefined) throw keyTypeMismatch('milenage', key.algorithm)
    return runMilenage(m.cipher, m.opc, input)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#cache.clear()
    await this.#offload.close()
  }

  #open(): void {
    if (this.#closed) throw new M2msecError('ERR_SE_UNAVAILABLE', `secure environment ${this.name} is closed`)
  }

  /** Seals new material into a ref and returns it with the public key. */
  #store(algorithm: KeyAlgorithm, exportable: boolean, material: KeyMaterial): CreatedKey {
    const bytes = exportMaterial(material)
    try {
      const ref = sealRef(this.#sealKey, { algorithm, exportable }, bytes)
      this.#cache.set(ref, toOpenKey(algorithm, exportable, bytes))
      return material.kind === 'private' ? { ref, publicKey: spkiOf(material.publicKey) } : { ref }
    } finally {
      bytes.fill(0)
    }
  }

  /** Checks the handle for `operation` and opens its ref (cached). */
  #use(key: SeKeyHandle, allowed: readonly KeyAlgorithm[], operation: SeOperation): OpenKey {
    this.#open()
    const algorithm = requireKey(this.name, this.capabilities, key, allowed, operation)
    const cached = this.#cache.get(key.ref)
    if (cached !== undefined) {
      if (cached.algorithm !== algorithm) throw keyTypeMismatch(operation, algorithm)
      return cached
    }
    // The clear header is authenticated by openRef below; reading it first gives the precise
    // error for a handle whose algorithm does not match its ref.
    const header = readRefHeader(key.ref)
    if (header.algorithm !== algorithm) throw keyTypeMismatch(operation, algorithm)
    const { material } = openRef(this.#sealKey, key.ref)
    try {
      const open = toOpenKey(header.algorithm, header.exportable, material)
      this.#cache.set(key.ref, open)
      return open
    } finally {
      material.fill(0)
    }
  }
}

function generateMaterial(seName: string, algorithm: KeyAlgorithm): KeyMaterial {
  switch (algorithm) {
    case 'AES_256_GCM':
    case 'HMAC_SHA256':
      return { kind: 'secret', algorithm, bytes: new Uint8Array(randomBytes(32)) }
    case 'EC_P256_SIGN':
    case 'EC_P256_ECDH': {
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      return { kind: 'private', algorithm, privateKey: pair.privateKey, publicKey: pair.publicKey }
    }
    case 'ED25519_SIGN': {
      const pair = generateKeyPairSync('ed25519')
      return { kind: 'private', algorithm, privateKey: pair.privateKey, publicKey: pair.publicKey }
    }
    case 'MILENAGE':
      throw notSupported(seName, 'generating MILENAGE keys (K and OPc come from SIM personalisation: import them)')
  }
}

/** Builds the usable form of a key from its sealed material (raw bytes or PKCS#8 DER). */
function toOpenKey(algorithm: KeyAlgorithm, exportable: boolean, material: Uint8Array): OpenKey {
  switch (algorithm) {
    case 'AES_256_GCM':
    case 'HMAC_SHA256':
      return { algorithm, exportable, secret: createSecretKey(Buffer.from(material)) }
    case 'MILENAGE':
      return {
        algorithm,
        exportable,
        milenage: {
          cipher: aes128EcbBlockCipher(material.subarray(0, 16)),
          opc: new Uint8Array(material.subarray(16, 32)),
        },
      }
    case 'EC_P256_SIGN':
    case 'EC_P256_ECDH':
    case 'ED25519_SIGN': {
      const privateKey = createPrivateKey({ key: Buffer.from(material), format: 'der', type: 'pkcs8' })
      return { algorithm, exportable, privateKey, publicKey: createPublicKey(privateKey) }
    }
  }
}

function exportOpenKey(k: OpenKey): Uint8Array {
  if (k.secret !== undefined) return new Uint8Array(k.secret.export())
  if (k.privateKey !== undefined) return new Uint8Array(k.privateKey.export({ format: 'der', type: 'pkcs8' }))
  throw exportDenied('key material cannot be exported')
}

/** Derivation targets are secret keys of 32 bytes. */
function requireDerivedTarget(seName: string, algorithm: KeyAlgorithm): void {
  if (algorithm !== 'AES_256_GCM' && algorithm !== 'HMAC_SHA256') {
    throw notSupported(seName, `deriving ${algorithm} keys (targets are AES_256_GCM or HMAC_SHA256)`)
  }
}

/** jose errors: a failed decryption is a bad ciphertext, anything else a malformed JWE. */
function joseError(err: unknown): M2msecError {
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'ERR_JWE_DECRYPTION_FAILED') return ciphertextInvalid()
  return invalidArgument('jwe is malformed or uses an algorithm other than the wrapping key allows', { field: 'jwe' })
}
