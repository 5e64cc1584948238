/**
 * The `pkcs11` secure environment: keys live in a PKCS#11 token (an HSM; tested against
 * SoftHSM2 2.6.1) as token objects that are sensitive, non-modifiable, non-copyable and,
 * unless created exportable, non-extractable, with only the usage flags their algorithm needs
 * (templates.ts). Refs are `p11.<hex CKA_ID>`; the token is found by label, never slot id.
 *
 * PKCS#11 calls are synchronous (about 90 µs per ECDSA signature), so they run in worker
 * threads (`workers`, default 1, one logged-in session each); the main thread validates input
 * and passes messages. See pool.ts and worker.ts.
 *
 * What runs where:
 * - AES-256-GCM (CKM_AES_GCM; the 96-bit IV comes from the host CSPRNG and is passed in),
 *   ECDSA P-256 (CKM_ECDSA over a host-side SHA-256 digest: SoftHSM has no
 *   CKM_ECDSA_SHA256), Ed25519 (CKM_EDDSA), HMAC-SHA-256 (CKM_SHA256_HMAC; keys of at least
 *   32 bytes) all run in the token.
 * - 3GPP KDF: CKM_SHA256_HMAC in the token, then C_CreateObject of the 32-byte result as a new
 *   sensitive key: the derived bytes pass through host memory once.
 * - HKDF: not offered. pkcs11js cannot pass CK_HKDF_PARAMS (it holds pointers), so even a
 *   token with CKM_HKDF_DERIVE could not be driven; SoftHSM 2.6.1 lacks the mechanism anyway.
 * - Milenage: K is an AES-128 non-extractable token key and every E_K is CKM_AES_ECB in the
 *   token. Standard PKCS#11 has no mechanism for Milenage's XORs with OPc, so OPc must be in
 *   host memory for those steps: it is stored in the ref sealed by a token-resident,
 *   non-extractable AES-256-GCM key (label `m2msec/opc-kek`), decrypted in the token for each
 *   call and zeroed after use. OPc is therefore protected at rest by the HSM, but not in use.
 * - Wrap: exportable keys only (created with CKA_EXTRACTABLE=true). The token wraps the key
 *   out under an ephemeral key (CKM_AES_KEY_WRAP_PAD), so its plaintext is in host memory
 *   while the JWE is built. A KMS recipient's key wraps the content key inside the token
 *   (CKM_AES_KEY_WRAP = A256KW). Algorithms the token cannot wrap (SoftHSM: Ed25519) cannot be
 *   created exportable (ERR_SE_NOT_SUPPORTED at creation).
 * - Unwrap: A256KW is opened in the token (C_UnwrapKey, then CKM_AES_GCM); ECDH-ES+A256KW
 *   derives Z in the token (CKM_ECDH1_DERIVE) and runs the JWA Concat KDF on the host. The
 *   unwrapped key material passes through host memory once, as for any import.
 *
 * Protection level: a configuration value, default 3 (a certified hardware HSM). SoftHSM is
 * a software library inside the KMS process: configure it as 1.
 *
 * @example
 * ```ts
 * const se = await create('hsm-eu1', { modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'kms', pinFile: '/run/secrets/pin', protectionLevel: 1 })
 * const { ref, publicKey } = await se.generateKey({ algorithm: 'EC_P256_SIGN', label: 't1/jwt/1' })
 * ```
 */
import { readFile } from 'node:fs/promises'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import type {
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
  exportDenied,
  notSupported,
  requireBytes,
  requireKey,
  requireMilenageInput,
  requireSealed,
  requireSpec,
} from '../checks.ts'
import { MAX_JWE_LENGTH, requireKid, requireP256PublicJwk } from '../jwe-recipient.ts'
import pkcs11js from 'pkcs11js'
import { CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA } from './constants.ts'
import { WorkerPool } from './pool.ts'
import type { TokenInfo } from './token.ts'

const P = pkcs11js

/** Options of the pkcs11 SE. Exactly one of `pin` and `pinFile`. */
export interface Pkcs11SeOptions {
  /** Path of the PKCS#11 module (.so). */
  readonly modulePath: string
  /** CKA_LABEL of the token (CK_TOKEN_INFO.label); the slot is found by it. */
  readonly tokenLabel: string
  /** User PIN given directly (tests, programmatic use). */
  readonly pin?: string
  /** File holding the user PIN (configuration: secrets come from files). Trailing newline ignored. */
  readonly pinFile?: string
  /** TS-0003 protection level to publish. Default 3; use 1 for SoftHSM. */
  readonly protectionLevel?: ProtectionLevel
  /** Worker threads, one PKCS#11 session each. Default 1. */
  readonly workers?: number
}

/** Which mechanisms each algorithm needs from the token. */
const REQUIRED_MECHANISMS: Readonly<Record<KeyAlgorithm, readonly number[]>> = {
  AES_256_GCM: [P.CKM_AES_KEY_GEN, P.CKM_AES_GCM],
  HMAC_SHA256: [P.CKM_GENERIC_SECRET_KEY_GEN, P.CKM_SHA256_HMAC],
  EC_P256_SIGN: [P.CKM_EC_KEY_PAIR_GEN, P.CKM_ECDSA],
  ED25519_SIGN: [CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA],
  EC_P256_ECDH: [P.CKM_EC_KEY_PAIR_GEN, P.CKM_ECDH1_DERIVE],
  // K runs AES-ECB; OPc is sealed with AES-GCM by a token key.
  MILENAGE: [P.CKM_AES_ECB, P.CKM_AES_GCM, P.CKM_AES_KEY_GEN],
}

/** Capabilities from the token's mechanism list. */
function capabilitiesOf(info: TokenInfo): SeCapabilities {
  const has = (m: number): boolean => info.mechanisms.includes(m)
  const algorithms = KEY_ALGORITHMS.filter((a) => REQUIRED_MECHANISMS[a].every(has))
  const operations: SeOperation[] = ['generate', 'import', 'destroy', 'encrypt', 'decrypt', 'sign', 'verify', 'mac']
  if (has(P.CKM_SHA256_HMAC)) operations.push('derive-3gpp-kdf')
  if (has(P.CKM_AES_KEY_WRAP) && has(P.CKM_AES_KEY_WRAP_PAD)) operations.push('wrap', 'unwrap')
  if (algorithms.includes('MILENAGE')) operations.push('milenage')
  return Object.freeze({ algorithms: Object.freeze(algorithms), operations: Object.freeze(operations) })
}

async function readPin(options: Pkcs11SeOptions): Promise<string> {
  if ((options.pin === undefined) === (options.pinFile === undefined)) {
    throw new M2msecError('ERR_CONFIG_INVALID', 'give exactly one of pin and pinFile', { field: 'pinFile' })
  }
  if (options.pin !== undefined) return options.pin
  try {
    return (await readFile(options.pinFile as string, 'utf8')).replace(/\r?\n$/, '')
  } catch (err) {
    throw new M2msecError(
      'ERR_CONFIG_INVALID',
      'cannot read the PKCS#11 PIN file',
      { field: 'pinFile' },
      { cause: err },
    )
  }
}

/**
 * Creates a pkcs11 SE: starts the workers, opens a session on the token labelled
 * `tokenLabel` and logs in. Throws ERR_CONFIG_INVALID (bad module, PIN) or ERR_SE_UNAVAILABLE
 * (token not present).
 */
export async function create(
  name: string,
  options: Pkcs11SeOptions,
): Promise<SecureEnvironment & KeyDeriver & KeyWrapper & MilenageCapable> {
  const workers = options.workers ?? 1
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new M2msecError('ERR_CONFIG_INVALID', 'workers must be an integer 1..64', { field: 'workers' })
  }
  const protectionLevel = options.protectionLevel ?? 3
  if (![0, 1, 2, 3].includes(protectionLevel)) {
    throw new M2msecError('ERR_CONFIG_INVALID', 'protectionLevel must be 0..3', { field: 'protectionLevel' })
  }
  const pin = await readPin(options)
  const { pool, info } = await WorkerPool.start(
    { modulePath: options.modulePath, tokenLabel: options.tokenLabel, pin },
    workers,
  )
  return new Pkcs11SecureEnvironment(name, protectionLevel, pool, info)
}

class Pkcs11SecureEnvironment implements SecureEnvironment, KeyDeriver, KeyWrapper, MilenageCapable {
  readonly type = 'pkcs11' as const
  readonly capabilities: SeCapabilities
  readonly #pool: WorkerPool
  readonly #wrappable: ReadonlySet<KeyAlgorithm>
  #closed = false

  constructor(
    readonly name: string,
    readonly protectionLevel: ProtectionLevel,
    pool: WorkerPool,
    info: TokenInfo,
  ) {
    this.#pool = pool
    this.capabilities = capabilitiesOf(info)
    this.#wrappable = new Set(info.wrappable)
  }

  async generateKey(spec: KeySpec): Promise<CreatedKey> {
    this.#open()
    const algorithm = requireSpec(this.name, this.capabilities, spec, 'generate')
    if (algorithm === 'MILENAGE') {
      throw notSupported(this.name, 'generating MILENAGE keys (K and OPc come from SIM personalisation: import them)')
    }
    this.#requireExportable(algorithm, spec.exportable)
    return this.#pool.call('generate', { algorithm, label: spec.label, exportable: spec.exportable === true })
  }

  async importKey(spec: ImportSpec): Promise<CreatedKey> {
    this.#open()
    const algorithm = requireSpec(this.name, this.capabilities, spec, 'import')
    requireBytes(spec.material, 'material')
    this.#requireExportable(algorithm, spec.exportable)
    return this.#pool.call('import', {
      algorithm,
      label: spec.label,
      exportable: spec.exportable === true,
      material: spec.material,
    })
  }

  async destroyKey(key: SeKeyHandle): Promise<void> {
    this.#open()
    if (typeof key?.ref !== 'string') return
    await this.#pool.call('destroy', key.ref)
    await this.#pool.broadcast('evict')
  }

  async encrypt(key: SeKeyHandle, plaintext: Uint8Array, aad: Uint8Array): Promise<SealedData> {
    const k = this.#key(key, ['AES_256_GCM'], 'encrypt')
    requireBytes(plaintext, 'plaintext')
    requireBytes(aad, 'aad')
    return this.#pool.call('encrypt', k, plaintext, aad)
  }

  async decrypt(key: SeKeyHandle, sealed: SealedData, aad: Uint8Array): Promise<Uint8Array> {
    const k = this.#key(key, ['AES_256_GCM'], 'decrypt')
    requireSealed(sealed)
    requireBytes(aad, 'aad')
    return this.#pool.call('decrypt', k, { iv: sealed.iv, ciphertext: sealed.ciphertext, tag: sealed.tag }, aad)
  }

  async sign(key: SeKeyHandle, message: Uint8Array): Promise<Uint8Array> {
    const k = this.#key(key, ['EC_P256_SIGN', 'ED25519_SIGN'], 'sign')
    requireBytes(message, 'message')
    return this.#pool.call('sign', k, message)
  }

  async verify(key: SeKeyHandle, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const k = this.#key(key, ['EC_P256_SIGN', 'ED25519_SIGN'], 'verify')
    requireBytes(message, 'message')
    requireBytes(signature, 'signature')
    return this.#pool.call('verify', k, message, signature)
  }

  async mac(key: SeKeyHandle, data: Uint8Array): Promise<Uint8Array> {
    const k = this.#key(key, ['HMAC_SHA256'], 'mac')
    requireBytes(data, 'data')
    return this.#pool.call('mac', k, data)
  }

  async deriveKey(base: SeKeyHandle, params: DeriveParams, target: KeySpec): Promise<CreatedKey> {
    const kdf = params?.kdf
    if (kdf !== 'HKDF_SHA256' && kdf !== 'KDF_3GPP') throw invalidArgument('unknown kdf', { field: 'kdf' })
    if (kdf === 'HKDF_SHA256') {
      // Always refused (see the module doc); the checks give the precise reason first.
      this.#key(base, ['HMAC_SHA256', 'AES_256_GCM'], 'derive-hkdf')
      throw notSupported(this.name, 'HKDF', { operation: 'derive-hkdf' })
    }
    const b = this.#key(base, ['HMAC_SHA256'], 'derive-3gpp-kdf')
    const algorithm = requireSpec(this.name, this.capabilities, target, 'derive-3gpp-kdf')
    if (algorithm !== 'AES_256_GCM' && algorithm !== 'HMAC_SHA256') {
      throw notSupported(this.name, `deriving ${algorithm} keys (targets are AES_256_GCM or HMAC_SHA256)`)
    }
    if (params.kdf !== 'KDF_3GPP') throw invalidArgument('unknown kdf', { field: 'kdf' })
    requireBytes(params.s, 's')
    return this.#pool.call('derive3gpp', b, params.s, {
      algorithm,
      label: target.label,
      exportable: target.exportable === true,
    })
  }

  async wrapKey(key: SeKeyHandle, recipient: WrapRecipient): Promise<string> {
    const k = this.#key(key, KEY_ALGORITHMS, 'wrap')
    if (k.algorithm === 'MILENAGE') throw exportDenied('MILENAGE keys never leave the secure environment')
    if (typeof recipient !== 'object' || recipient === null)
      throw invalidArgument('recipient is required', { field: 'recipient' })
    requireKid(recipient.kid)
    if (recipient.kind === 'kms-key') {
      const r = this.#key(recipient.key, ['AES_256_GCM'], 'wrap')
      return this.#pool.call('wrap', k, { kind: 'kms-key', key: r, kid: recipient.kid })
    }
    if (recipient.kind === 'public-jwk') {
      const jwk = requireP256PublicJwk(recipient.jwk)
      return this.#pool.call('wrap', k, { kind: 'public-jwk', jwk, kid: recipient.kid })
    }
    throw invalidArgument('unknown recipient kind', { field: 'recipient.kind' })
  }

  async unwrapKey(jwe: string, unwrapWith: SeKeyHandle, target: KeySpec): Promise<CreatedKey> {
    const w = this.#key(unwrapWith, ['AES_256_GCM', 'EC_P256_ECDH'], 'unwrap')
    if (typeof jwe !== 'string' || jwe.length === 0 || jwe.length > MAX_JWE_LENGTH) {
      throw invalidArgument('jwe must be a compact JWE', { field: 'jwe' })
    }
    const algorithm = requireSpec(this.name, this.capabilities, target, 'unwrap')
    this.#requireExportable(algorithm, target.exportable)
    return this.#pool.call('unwrap', jwe, w, { algorithm, label: target.label, exportable: target.exportable === true })
  }

  async milenage(key: SeKeyHandle, input: MilenageInput): Promise<MilenageOutput> {
    const k = this.#key(key, ['MILENAGE'], 'milenage')
    requireMilenageInput(input)
    return this.#pool.call('milenage', k, { rand: input.rand, sqn: input.sqn, amf: input.amf })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#pool.close()
  }

  #open(): void {
    if (this.#closed) throw new M2msecError('ERR_SE_UNAVAILABLE', `secure environment ${this.name} is closed`)
  }

  /** Validates a handle and returns a plain copy to send to a worker. */
  #key(key: SeKeyHandle, allowed: readonly KeyAlgorithm[], operation: SeOperation): SeKeyHandle {
    this.#open()
    const algorithm = requireKey(this.name, this.capabilities, key, allowed, operation)
    return { ref: key.ref, algorithm }
  }

  #requireExportable(algorithm: KeyAlgorithm, exportable: boolean | undefined): void {
    if (exportable === true && !this.#wrappable.has(algorithm)) {
      throw notSupported(this.name, `exportable ${algorithm} keys (the token cannot wrap them)`, { algorithm })
    }
  }
}
