/**
 * One logged-in PKCS#11 session on one token, and every SE operation as synchronous PKCS#11
 * calls. Runs inside the pkcs11 worker thread (worker.ts), never on the main event loop.
 *
 * Refs: `p11.<hex CKA_ID>` (random 16-byte CKA_ID shared by a key pair's two objects). A
 * MILENAGE ref also carries the CKA_ID of the OPc wrapping key and the sealed OPc:
 * `p11.<hex K id>.<hex KEK id>.<base64url(iv | ciphertext | tag)>`.
 */
import { createHash, randomBytes } from 'node:crypto'
import { randomIv } from '../iv-pool.ts'
import pkcs11js from 'pkcs11js'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { milenage as runMilenage } from '@m2msec/crypto'
import type {
  CreatedKey,
  ImportSpec,
  KeyAlgorithm,
  KeySpec,
  MilenageInput,
  MilenageOutput,
  SealedData,
  SeKeyHandle,
  WrapRecipient,
} from '../api.ts'
import {
  GCM_IV_LENGTH,
  GCM_TAG_LENGTH,
  ciphertextInvalid,
  exportDenied,
  keyTypeMismatch,
  unknownRef,
} from '../checks.ts'
import { WRAP_ENC, encryptForPublicJwk } from '../jwe-recipient.ts'
import type { KeyMaterial } from '../key-material.ts'
import {
  exportMaterial,
  parseKeyMaterial,
  privateScalar,
  publicKeyFromPoint,
  publicPoint,
  spkiOf,
} from '../key-material.ts'
import { Lru } from '../lru.ts'
import { CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, EC_PARAMS_P256 } from './constants.ts'
import {
  aesKwUnwrap,
  aesKwpUnwrap,
  concatKdf256,
  encodeHeader,
  openContent,
  optionalBytes,
  parseCompactJwe,
  sealCompactJwe,
} from './jwe.ts'
import { DECRYPT_ERRORS, HANDLE_ERRORS, SESSION_ERRORS, ckrCode, mapError } from './errors.ts'
import {
  ID_LENGTH,
  OPC_AAD_PREFIX,
  OPC_KEK_ID_PREFIX,
  OPC_KEK_LABEL,
  isOpcKekId,
  milenageRefOf,
  parseMilenageRef,
  refOf,
  tryParseRef,
} from './refs.ts'
import { releaseLibrary } from './library.ts'
import { findSlot, loadModule, openSession } from './session.ts'
import type { ObjectIdentity, SecretKind } from './templates.ts'
import {
  curveOf,
  derOctetString,
  pointFromEcPoint,
  privateTemplate,
  publicTemplate,
  secretKindOf,
  secretTemplate,
} from './templates.ts'

const P = pkcs11js
type Handle = pkcs11js.Handle

/** What the worker needs to open the token. The PIN stays in this thread's memory. */
export interface TokenConfig {
  readonly modulePath: string
  readonly tokenLabel: string
  readonly pin: string
  /** Object handles cached per CKA_ID (default 10 000). */
  readonly handleCacheSize?: number
  /** C_Initialize lock and user count shared by every worker of the module (`libraryState` in library.ts). */
  readonly library: SharedArrayBuffer
}

/** What the token offers, reported once at start. */
export interface TokenInfo {
  readonly mechanisms: readonly number[]
  /** Algorithms whose keys this token can wrap out (so they may be created exportable). */
  readonly wrappable: readonly KeyAlgorithm[]
}

/** A resolved key: its object handles and what the token says about it. */
interface ResolvedKey {
  readonly algorithm: KeyAlgorithm
  readonly handle: Handle
  readonly publicHandle?: Handle
  readonly extractable: boolean
}

/** Copies into a fresh, exactly-sized Uint8Array (Buffers may be views of a shared pool). */
function tight(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes)
}

/**
 * Bytes as a Buffer with a non-NULL data pointer, also when empty: a zero-length Buffer is
 * passed as NULL, which SoftHSM rejects with CKR_ARGUMENTS_BAD (and leaves the operation open).
 */
function input(bytes: Uint8Array): Buffer {
  return bytes.length === 0 ? EMPTY : Buffer.from(bytes)
}
const EMPTY = Buffer.alloc(1).subarray(0, 0)

/** A Buffer view of secret bytes without copying, so zeroing the original clears it. */
function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
}

function readUlong(value: Buffer): number {
  return value.length >= 8 ? Number(value.readBigUInt64LE(0)) : value.readUInt32LE(0)
}

/**
 * An open session on the token labelled `tokenLabel`, logged in as the user.
 *
 * @example
 * ```ts
 * const token = Pkcs11Token.open({ modulePath, tokenLabel, pin })
 * const created = token.generate({ algorithm: 'EC_P256_SIGN', label: 't/k/1' })
 * token.close(true)
 * ```
 */
export class Pkcs11Token {
  readonly #p11: pkcs11js.PKCS11
  readonly #config: TokenConfig
  readonly #handles: Lru<string, ResolvedKey>
  #slot: Handle
  #session: Handle
  #opcKek: { id: Buffer; handle: Handle } | undefined
  #wrappable = new Set<KeyAlgorithm>()
  #mechanisms: readonly number[] = []

  private constructor(p11: pkcs11js.PKCS11, config: TokenConfig, slot: Handle, session: Handle) {
    this.#p11 = p11
    this.#config = config
    this.#slot = slot
    this.#session = session
    this.#handles = new Lru(config.handleCacheSize ?? 10_000)
  }

  /**
   * Loads the module, initialises it (shared per process), finds the token and logs in.
   * PKCS#11 errors are mapped (errors.ts), so a failed start names the function and CKR.
   */
  static open(config: TokenConfig): Pkcs11Token {
    const p11 = loadModule(config.modulePath, config.library)
    let session: Handle | undefined
    try {
      const slot = findSlot(p11, config.tokenLabel)
      session = openSession(p11, slot, config.pin)
      const token = new Pkcs11Token(p11, config, slot, session)
      token.#mechanisms = p11.C_GetMechanismList(slot)
      token.#wrappable = token.#probeWrappable()
      return token
    } catch (err) {
      if (session !== undefined) closeQuietly(p11, session)
      releaseLibrary(p11, config.library)
      throw mapError(err)
    }
  }

  /** Mechanisms and wrap support, for the SE's published capabilities. */
  info(): TokenInfo {
    return { mechanisms: [...this.#mechanisms], wrappable: [...this.#wrappable] }
  }

  /**
   * Closes the session and drops this worker's use of the module: the last user in this
   * process calls C_Finalize (library.ts), never earlier, as that would pull the library
   * out from under every other session.
   */
  close(): void {
    closeQuietly(this.#p11, this.#session)
    this.#handles.clear()
    releaseLibrary(this.#p11, this.#config.library)
  }

  generate(spec: KeySpec): CreatedKey {
    return this.#run(() => {
      const who = this.#newIdentity(spec.label)
      const exportable = spec.exportable === true
      this.#requireWrappable(spec.algorithm, exportable)
      const s = this.#session
      switch (spec.algorithm) {
        case 'AES_256_GCM':
          this.#p11.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
            ...secretTemplate('AES_256_GCM', who, exportable),
            { type: P.CKA_VALUE_LEN, value: 32 },
          ])
          return { ref: refOf(who.id) }
        case 'HMAC_SHA256':
          this.#p11.C_GenerateKey(s, { mechanism: P.CKM_GENERIC_SECRET_KEY_GEN }, [
            ...secretTemplate('HMAC_SHA256', who, exportable),
            { type: P.CKA_VALUE_LEN, value: 32 },
          ])
          return { ref: refOf(who.id) }
        case 'EC_P256_SIGN':
        case 'EC_P256_ECDH':
        case 'ED25519_SIGN': {
          const mechanism = spec.algorithm === 'ED25519_SIGN' ? CKM_EC_EDWARDS_KEY_PAIR_GEN : P.CKM_EC_KEY_PAIR_GEN
          const pair = this.#p11.C_GenerateKeyPair(
            s,
            { mechanism },
            publicTemplate(spec.algorithm, who),
            privateTemplate(spec.algorithm, who, exportable).filter((a) => a.type !== P.CKA_KEY_TYPE),
          )
          return { ref: refOf(who.id), publicKey: this.#spki(spec.algorithm, pair.publicKey) }
        }
        case 'MILENAGE':
          throw new M2msecError(
            'ERR_SE_NOT_SUPPORTED',
            'MILENAGE keys are imported (K and OPc come from SIM personalisation)',
          )
      }
    })
  }

  import(spec: ImportSpec): CreatedKey {
    try {
      return this.#run(() => {
        const material = parseKeyMaterial(spec.algorithm, spec.material)
        try {
          return this.#importMaterial(spec, material)
        } finally {
          if (material.kind === 'secret') material.bytes.fill(0)
        }
      })
    } finally {
      // This thread's copy of the material (the message argument).
      spec.material.fill(0)
    }
  }

  /** Destroys every object of the ref (a key pair has two). Unknown or malformed refs: no-op. */
  destroy(ref: string): void {
    const parsed = tryParseRef(ref)
    if (parsed === undefined) return
    // The cache is keyed by ref string; other spellings of the same id may be cached too, and
    // a token may reuse a destroyed handle number, so drop everything (destroy is rare).
    this.#handles.clear()
    this.#run(() => {
      for (const handle of this.#findById(parsed.id)) this.#p11.C_DestroyObject(this.#session, handle)
    })
  }

  /** Drops cached handles (another worker destroyed an object). */
  evict(): void {
    this.#handles.clear()
  }

  encrypt(key: SeKeyHandle, plaintext: Uint8Array, aad: Uint8Array): SealedData {
    return this.#run(() => {
      const k = this.#resolve(key, 'encrypt')
      const iv = randomIv(GCM_IV_LENGTH)
      this.#p11.C_EncryptInit(this.#session, gcm(iv, aad), k.handle)
      const out = this.#p11.C_Encrypt(this.#session, input(plaintext), Buffer.alloc(plaintext.length + GCM_TAG_LENGTH))
      return {
        iv: tight(iv),
        ciphertext: tight(out.subarray(0, out.length - GCM_TAG_LENGTH)),
        tag: tight(out.subarray(out.length - GCM_TAG_LENGTH)),
      }
    })
  }

  decrypt(key: SeKeyHandle, sealed: SealedData, aad: Uint8Array): Uint8Array {
    return this.#run(() => {
      const k = this.#resolve(key, 'decrypt')
      return tight(this.#gcmDecrypt(k.handle, sealed.iv, aad, Buffer.concat([sealed.ciphertext, sealed.tag])))
    })
  }

  sign(key: SeKeyHandle, message: Uint8Array): Uint8Array {
    return this.#run(() => {
      const k = this.#resolve(key, 'sign')
      const [mechanism, data] = signInput(k.algorithm, message)
      this.#p11.C_SignInit(this.#session, { mechanism }, k.handle)
      return tight(this.#p11.C_Sign(this.#session, data, Buffer.alloc(64)))
    })
  }

  verify(key: SeKeyHandle, message: Uint8Array, signature: Uint8Array): boolean {
    return this.#run(() => {
      const k = this.#resolve(key, 'verify')
      // Both P-256 (r||s) and Ed25519 signatures are 64 bytes; anything else is just wrong.
      if (signature.length !== 64 || k.publicHandle === undefined) return false
      const [mechanism, data] = signInput(k.algorithm, message)
      this.#p11.C_VerifyInit(this.#session, { mechanism }, k.publicHandle)
      try {
        return this.#p11.C_Verify(this.#session, data, Buffer.from(signature))
      } catch (err) {
        const code = ckrCode(err)
        if (code === P.CKR_SIGNATURE_INVALID || code === P.CKR_SIGNATURE_LEN_RANGE) return false
        throw err
      }
    })
  }

  mac(key: SeKeyHandle, data: Uint8Array): Uint8Array {
    return this.#run(() => tight(this.#hmac(this.#resolve(key, 'mac').handle, data)))
  }

  /**
   * 3GPP KDF: HMAC-SHA-256(base, S) with CKM_SHA256_HMAC in the token, then C_CreateObject of
   * the 32 output bytes as a new sensitive key. The derived bytes pass through this thread's
   * memory once (standard PKCS#11 has no "HMAC into a key" mechanism) and are zeroed.
   */
  derive3gpp(base: SeKeyHandle, s: Uint8Array, target: KeySpec): CreatedKey {
    return this.#run(() => {
      const b = this.#resolve(base, 'derive-3gpp-kdf')
      if (target.exportable === true && !b.extractable) {
        throw exportDenied('a key derived from a non-exportable key cannot be exportable')
      }
      const derived = this.#hmac(b.handle, s)
      try {
        const who = this.#newIdentity(target.label)
        this.#p11.C_CreateObject(this.#session, [
          ...secretTemplate(secretKindOf(target.algorithm), who, target.exportable === true),
          { type: P.CKA_VALUE, value: derived },
        ])
        return { ref: refOf(who.id) }
      } finally {
        derived.fill(0)
      }
    })
  }

  /**
   * Wraps an exportable key as a JWE. The token wraps the key out with CKM_AES_KEY_WRAP_PAD
   * under an ephemeral key, so its plaintext (raw secret or PKCS#8) is in this thread's memory
   * while the JWE is built, then zeroed. For a KMS recipient the content key is wrapped by
   * the recipient key inside the token (CKM_AES_KEY_WRAP = A256KW).
   */
  async wrap(key: SeKeyHandle, recipient: WrapRecipient): Promise<string> {
    const k = this.#run(() => this.#resolve(key, 'wrap'))
    if (k.algorithm === 'MILENAGE') throw exportDenied('MILENAGE keys never leave the secure environment')
    if (!k.extractable) throw exportDenied('key is not exportable')
    const plaintext = this.#run(() => this.#extract(k))
    try {
      if (recipient.kind === 'public-jwk') return await encryptForPublicJwk(plaintext, recipient.jwk, recipient.kid)
      return this.#run(() => {
        const kek = this.#resolve(recipient.key, 'wrap')
        if (kek.algorithm !== 'AES_256_GCM') throw keyTypeMismatch('wrap', recipient.key.algorithm)
        const cek = randomBytes(32)
        try {
          const wrappedCek = this.#withSessionKey('CEK_OUT', cek, (cekHandle) =>
            this.#p11.C_WrapKey(
              this.#session,
              { mechanism: P.CKM_AES_KEY_WRAP },
              kek.handle,
              cekHandle,
              Buffer.alloc(64),
            ),
          )
          const header = encodeHeader({ alg: 'A256KW', enc: WRAP_ENC, kid: recipient.kid })
          return sealCompactJwe(header, wrappedCek, cek, plaintext)
        } finally {
          cek.fill(0)
        }
      })
    } finally {
      plaintext.fill(0)
    }
  }

  /**
   * Opens a JWE and imports its plaintext as a new key. A256KW: the content key is unwrapped
   * inside the token and the content decrypted there with CKM_AES_GCM. ECDH-ES+A256KW: the
   * token computes the ECDH shared secret Z (CKM_ECDH1_DERIVE); Z, the KEK and the content key
   * are then on the host for the Concat KDF and unwrapping (no PKCS#11 mechanism does the JWA
   * KDF). Either way the key plaintext passes through this thread once, as for any import.
   */
  unwrap(jwe: string, unwrapWith: SeKeyHandle, target: KeySpec): CreatedKey {
    return this.#run(() => {
      const parsed = parseCompactJwe(jwe)
      const w = this.#resolve(unwrapWith, 'unwrap')
      const expectedAlg = w.algorithm === 'AES_256_GCM' ? 'A256KW' : 'ECDH-ES+A256KW'
      if (parsed.header['alg'] !== expectedAlg) {
        throw invalidArgument(`jwe alg must be ${expectedAlg} for a ${w.algorithm} key`, { field: 'jwe' })
      }
      const plaintext = w.algorithm === 'AES_256_GCM' ? this.#openA256kw(w, parsed) : this.#openEcdhEs(w, parsed)
      try {
        const material = parseKeyMaterial(target.algorithm, plaintext)
        this.#requireWrappable(target.algorithm, target.exportable === true)
        return this.#importMaterial(target, material)
      } finally {
        plaintext.fill(0)
      }
    })
  }

  /**
   * Milenage with K in the token: each E_K is CKM_AES_ECB on the non-extractable K. OPc is
   * decrypted by the OPc KEK in the token for this call only and zeroed afterwards.
   */
  async milenage(key: SeKeyHandle, input: MilenageInput): Promise<MilenageOutput> {
    const { k, opc } = this.#run(() => {
      const parsed = parseMilenageRef(key.ref)
      const resolved = this.#resolve(key, 'milenage')
      const kek = this.#opcKekById(parsed.kekId)
      const sealed = parsed.sealedOpc
      let value: Buffer
      try {
        value = this.#gcmDecrypt(
          kek,
          sealed.subarray(0, GCM_IV_LENGTH),
          Buffer.concat([OPC_AAD_PREFIX, parsed.id]),
          sealed.subarray(GCM_IV_LENGTH),
        )
      } catch (err) {
        // An edited ref (sealed OPc, or OPc of another subscriber) is a bad ref, not bad data.
        if (err instanceof M2msecError && err.code === 'ERR_CIPHERTEXT_INVALID') throw unknownRef()
        throw err
      }
      if (value.length !== 16) throw unknownRef()
      return { k: resolved.handle, opc: value }
    })
    try {
      const encryptBlock = async (block: Uint8Array): Promise<Uint8Array> =>
        this.#run(() => {
          this.#p11.C_EncryptInit(this.#session, { mechanism: P.CKM_AES_ECB }, k)
          return tight(this.#p11.C_Encrypt(this.#session, Buffer.from(block), Buffer.alloc(16)))
        })
      const out = await runMilenage(encryptBlock, opc, input)
      return {
        macA: tight(out.macA),
        macS: tight(out.macS),
        res: tight(out.res),
        ck: tight(out.ck),
        ik: tight(out.ik),
        ak: tight(out.ak),
        akStar: tight(out.akStar),
      }
    } finally {
      opc.fill(0)
    }
  }

  // ---- internals -------------------------------------------------------------------------

  /**
   * Runs `fn`; on a session-level failure reopens the session once and retries; a stale
   * object handle is looked up again once. Other PKCS#11 errors become M2msecErrors.
   */
  #run<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      const code = ckrCode(err)
      if (code !== undefined && SESSION_ERRORS.has(code)) {
        this.#reopen()
        try {
          return fn()
        } catch (again) {
          throw mapError(again)
        }
      }
      if (code !== undefined && HANDLE_ERRORS.has(code)) {
        this.#handles.clear()
        this.#opcKek = undefined
        try {
          return fn()
        } catch (again) {
          throw mapError(again)
        }
      }
      throw mapError(err)
    }
  }

  #reopen(): void {
    closeQuietly(this.#p11, this.#session)
    this.#handles.clear()
    this.#opcKek = undefined
    try {
      this.#slot = findSlot(this.#p11, this.#config.tokenLabel)
      this.#session = openSession(this.#p11, this.#slot, this.#config.pin)
    } catch (err) {
      throw new M2msecError('ERR_SE_UNAVAILABLE', 'the PKCS#11 token is not reachable', {}, { cause: err })
    }
  }

  #newIdentity(label: string): ObjectIdentity {
    return { id: randomBytes(ID_LENGTH), label, token: true }
  }

  #requireWrappable(algorithm: KeyAlgorithm, exportable: boolean): void {
    if (exportable && !this.#wrappable.has(algorithm)) {
      throw new M2msecError(
        'ERR_SE_NOT_SUPPORTED',
        `this token cannot wrap ${algorithm} keys, so they cannot be exportable`,
        {
          algorithm,
        },
      )
    }
  }

  #importMaterial(spec: KeySpec, material: KeyMaterial): CreatedKey {
    const exportable = spec.exportable === true
    this.#requireWrappable(spec.algorithm, exportable)
    const who = this.#newIdentity(spec.label)
    if (material.kind === 'private') {
      const d = privateScalar(material.privateKey)
      try {
        this.#p11.C_CreateObject(this.#session, [
          ...privateTemplate(spec.algorithm, who, exportable),
          { type: P.CKA_EC_PARAMS, value: curveOf(spec.algorithm).ecParams },
          { type: P.CKA_VALUE, value: view(d) },
        ])
        this.#p11.C_CreateObject(this.#session, [
          ...publicTemplate(spec.algorithm, who),
          { type: P.CKA_EC_POINT, value: derOctetString(publicPoint(material.publicKey)) },
        ])
      } finally {
        d.fill(0)
      }
      return { ref: refOf(who.id), publicKey: spkiOf(material.publicKey) }
    }
    if (spec.algorithm === 'MILENAGE') return this.#importMilenage(who, material.bytes)
    this.#p11.C_CreateObject(this.#session, [
      ...secretTemplate(secretKindOf(spec.algorithm), who, exportable),
      { type: P.CKA_VALUE, value: view(material.bytes) },
    ])
    return { ref: refOf(who.id) }
  }

  /** K into the token (AES-128, encrypt only); OPc sealed by the OPc KEK into the ref. */
  #importMilenage(who: ObjectIdentity, kOpc: Uint8Array): CreatedKey {
    const kek = this.#opcKekForNewKeys()
    this.#p11.C_CreateObject(this.#session, [
      ...secretTemplate('MILENAGE_K', who, false),
      { type: P.CKA_VALUE, value: view(kOpc.subarray(0, 16)) },
    ])
    const iv = randomIv(GCM_IV_LENGTH)
    this.#p11.C_EncryptInit(this.#session, gcm(iv, Buffer.concat([OPC_AAD_PREFIX, who.id])), kek.handle)
    const sealed = this.#p11.C_Encrypt(this.#session, view(kOpc.subarray(16, 32)), Buffer.alloc(16 + GCM_TAG_LENGTH))
    return { ref: milenageRefOf(who.id, kek.id, Buffer.concat([iv, sealed])) }
  }

  /** The OPc KEK new MILENAGE keys use: found by label, else generated (non-extractable). */
  #opcKekForNewKeys(): { id: Buffer; handle: Handle } {
    if (this.#opcKek !== undefined) return this.#opcKek
    const s = this.#session
    this.#p11.C_FindObjectsInit(s, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
      { type: P.CKA_LABEL, value: OPC_KEK_LABEL },
    ])
    let found: Handle[]
    try {
      found = this.#p11.C_FindObjects(s, 16)
    } finally {
      this.#p11.C_FindObjectsFinal(s)
    }
    // Several KEKs can exist after a creation race between processes; each MILENAGE ref names
    // its own KEK, so any of them is correct. Pick the smallest id to be deterministic.
    const candidates = found
      .map((handle) => ({
        handle,
        id: this.#p11.C_GetAttributeValue(s, handle, [{ type: P.CKA_ID }])[0]?.value ?? Buffer.alloc(0),
      }))
      .filter((c) => isOpcKekId(c.id))
      .sort((a, b) => Buffer.compare(a.id, b.id))
    const existing = candidates[0]
    if (existing !== undefined) {
      this.#opcKek = existing
      return existing
    }
    const id = Buffer.concat([OPC_KEK_ID_PREFIX, randomBytes(8)])
    const handle = this.#p11.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
      ...secretTemplate('OPC_KEK', { id, label: OPC_KEK_LABEL, token: true }, false),
      { type: P.CKA_VALUE_LEN, value: 32 },
    ])
    this.#opcKek = { id, handle }
    return this.#opcKek
  }

  #opcKekById(id: Buffer): Handle {
    if (this.#opcKek !== undefined && this.#opcKek.id.equals(id)) return this.#opcKek.handle
    const handle = this.#findById(id, P.CKO_SECRET_KEY)[0]
    if (handle === undefined) throw unknownRef()
    return handle
  }

  /**
   * Resolves a handle to token objects and checks that the object fits `handle.algorithm`.
   * Cached per ref string, so the hot path is one map lookup.
   */
  #resolve(key: SeKeyHandle, operation: string): ResolvedKey {
    let resolved = this.#handles.get(key.ref)
    if (resolved === undefined) {
      const parsed = tryParseRef(key.ref)
      if (parsed === undefined) throw unknownRef()
      resolved = this.#lookup(parsed.id)
      // A MILENAGE key is usable only through its full ref (with the sealed OPc), and a
      // MILENAGE ref names nothing else.
      if ((resolved.algorithm === 'MILENAGE') !== parsed.milenage) throw keyTypeMismatch(operation, key.algorithm)
      this.#handles.set(key.ref, resolved)
    }
    if (resolved.algorithm !== key.algorithm) throw keyTypeMismatch(operation, key.algorithm)
    return resolved
  }

  #lookup(id: Buffer): ResolvedKey {
    const s = this.#session
    let main: { handle: Handle; cls: number } | undefined
    let publicHandle: Handle | undefined
    for (const handle of this.#findById(id)) {
      const cls = readUlong(this.#attr(handle, P.CKA_CLASS))
      if (cls === P.CKO_PUBLIC_KEY) publicHandle = handle
      else if (cls === P.CKO_SECRET_KEY || cls === P.CKO_PRIVATE_KEY) main = { handle, cls }
    }
    if (main === undefined) throw unknownRef()
    const attrs = this.#p11.C_GetAttributeValue(s, main.handle, [{ type: P.CKA_KEY_TYPE }, { type: P.CKA_EXTRACTABLE }])
    const keyType = readUlong(attrs[0]?.value ?? Buffer.alloc(8))
    const extractable = attrs[1]?.value[0] === 1
    const algorithm = this.#algorithmOf(main.handle, main.cls, keyType)
    return { algorithm, handle: main.handle, extractable, ...(publicHandle === undefined ? {} : { publicHandle }) }
  }

  /** Which KMS algorithm a token object is, from its class, key type, size and usage. */
  #algorithmOf(handle: Handle, cls: number, keyType: number): KeyAlgorithm {
    if (cls === P.CKO_SECRET_KEY) {
      if (keyType === P.CKK_GENERIC_SECRET) return 'HMAC_SHA256'
      if (keyType === P.CKK_AES) {
        const len = readUlong(this.#attr(handle, P.CKA_VALUE_LEN))
        if (len === 16) return 'MILENAGE'
        if (len === 32) return 'AES_256_GCM'
      }
      throw unknownRef()
    }
    if (keyType === CKK_EC_EDWARDS) return 'ED25519_SIGN'
    if (keyType === P.CKK_EC) {
      if (!this.#attr(handle, P.CKA_EC_PARAMS).equals(EC_PARAMS_P256)) throw unknownRef()
      return this.#attr(handle, P.CKA_SIGN)[0] === 1 ? 'EC_P256_SIGN' : 'EC_P256_ECDH'
    }
    throw unknownRef()
  }

  #attr(handle: Handle, type: number): Buffer {
    return this.#p11.C_GetAttributeValue(this.#session, handle, [{ type }])[0]?.value ?? Buffer.alloc(0)
  }

  #findById(id: Buffer, cls?: number): Handle[] {
    const s = this.#session
    const template: pkcs11js.Template = [{ type: P.CKA_ID, value: id }]
    if (cls !== undefined) template.push({ type: P.CKA_CLASS, value: cls })
    this.#p11.C_FindObjectsInit(s, template)
    try {
      return this.#p11.C_FindObjects(s, 8)
    } finally {
      this.#p11.C_FindObjectsFinal(s)
    }
  }

  #spki(algorithm: KeyAlgorithm, publicHandle: Handle): Uint8Array {
    const point = pointFromEcPoint(this.#attr(publicHandle, P.CKA_EC_POINT), algorithm)
    return spkiOf(publicKeyFromPoint(algorithm, point))
  }

  #hmac(handle: Handle, data: Uint8Array): Buffer {
    this.#p11.C_SignInit(this.#session, { mechanism: P.CKM_SHA256_HMAC }, handle)
    return this.#p11.C_Sign(this.#session, input(data), Buffer.alloc(32))
  }

  /** CKM_AES_GCM decryption of ciphertext||tag; a failed tag is ERR_CIPHERTEXT_INVALID. */
  #gcmDecrypt(handle: Handle, iv: Uint8Array, aad: Uint8Array, ciphertextAndTag: Buffer): Buffer {
    this.#p11.C_DecryptInit(this.#session, gcm(Buffer.from(iv), aad), handle)
    try {
      return this.#p11.C_Decrypt(this.#session, ciphertextAndTag, Buffer.alloc(ciphertextAndTag.length))
    } catch (err) {
      const code = ckrCode(err)
      if (code !== undefined && DECRYPT_ERRORS.has(code)) throw ciphertextInvalid()
      throw err
    }
  }

  /** A session key object holding `value` for the duration of `fn`; always destroyed. */
  #withSessionKey<T>(kind: SecretKind, value: Uint8Array, fn: (handle: Handle) => T): T {
    const extractable = kind === 'CEK_OUT'
    const handle = this.#p11.C_CreateObject(this.#session, [
      ...secretTemplate(kind, { id: Buffer.alloc(0), label: 'm2msec/ephemeral', token: false }, extractable),
      { type: P.CKA_VALUE, value: view(value) },
    ])
    try {
      return fn(handle)
    } finally {
      this.#p11.C_DestroyObject(this.#session, handle)
    }
  }

  /** The plaintext of an exportable key, via CKM_AES_KEY_WRAP_PAD under an ephemeral key. */
  #extract(k: ResolvedKey): Uint8Array {
    const ek = randomBytes(32)
    try {
      const wrapped = this.#withSessionKey('EXPORT_KEK', ek, (ekHandle) =>
        this.#p11.C_WrapKey(
          this.#session,
          { mechanism: P.CKM_AES_KEY_WRAP_PAD },
          ekHandle,
          k.handle,
          Buffer.alloc(8192),
        ),
      )
      const plaintext = aesKwpUnwrap(ek, wrapped)
      if (k.algorithm === 'AES_256_GCM' || k.algorithm === 'HMAC_SHA256') return tight(plaintext)
      // Re-encode private keys so every backend exports the same PKCS#8 form.
      try {
        return exportMaterial(parseKeyMaterial(k.algorithm, plaintext))
      } finally {
        plaintext.fill(0)
      }
    } finally {
      ek.fill(0)
    }
  }

  #openA256kw(kek: ResolvedKey, jwe: ReturnType<typeof parseCompactJwe>): Buffer {
    if (jwe.encryptedKey.length !== 40) throw ciphertextInvalid()
    let cek: Handle
    try {
      cek = this.#p11.C_UnwrapKey(
        this.#session,
        { mechanism: P.CKM_AES_KEY_WRAP },
        kek.handle,
        jwe.encryptedKey,
        ephemeralTemplate('CEK_IN'),
      )
    } catch (err) {
      const code = ckrCode(err)
      if (code !== undefined && DECRYPT_ERRORS.has(code)) throw ciphertextInvalid()
      throw err
    }
    try {
      return this.#gcmDecrypt(cek, jwe.iv, jwe.aad, Buffer.concat([jwe.ciphertext, jwe.tag]))
    } finally {
      this.#p11.C_DestroyObject(this.#session, cek)
    }
  }

  #openEcdhEs(key: ResolvedKey, jwe: ReturnType<typeof parseCompactJwe>): Buffer {
    const epk = jwe.header['epk']
    if (typeof epk !== 'object' || epk === null) throw invalidArgument('jwe epk is missing', { field: 'jwe' })
    const { kty, crv, x, y } = epk as Record<string, unknown>
    if (kty !== 'EC' || crv !== 'P-256' || typeof x !== 'string' || typeof y !== 'string') {
      throw invalidArgument('jwe epk must be a P-256 public JWK', { field: 'jwe' })
    }
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(x, 'base64url'), Buffer.from(y, 'base64url')])
    publicKeyFromPoint('EC_P256_ECDH', point) // rejects points that are not on the curve
    const zHandle = this.#p11.C_DeriveKey(
      this.#session,
      { mechanism: P.CKM_ECDH1_DERIVE, parameter: ecdhParams(point) },
      key.handle,
      [...ephemeralTemplate('ECDH_Z'), { type: P.CKA_VALUE_LEN, value: 32 }],
    )
    let z: Buffer
    try {
      z = this.#attr(zHandle, P.CKA_VALUE)
    } finally {
      this.#p11.C_DestroyObject(this.#session, zHandle)
    }
    const kek = concatKdf256(z, 'ECDH-ES+A256KW', optionalBytes(jwe.header, 'apu'), optionalBytes(jwe.header, 'apv'))
    z.fill(0)
    try {
      const cek = aesKwUnwrap(kek, jwe.encryptedKey)
      try {
        return openContent(jwe, cek)
      } finally {
        cek.fill(0)
      }
    } finally {
      kek.fill(0)
    }
  }

  /** Which asymmetric algorithms this token can wrap out (probed with session keys at start). */
  #probeWrappable(): Set<KeyAlgorithm> {
    const mechanisms = new Set(this.#mechanisms)
    const out = new Set<KeyAlgorithm>()
    if (!mechanisms.has(P.CKM_AES_KEY_WRAP_PAD) || !mechanisms.has(P.CKM_AES_KEY_WRAP)) return out
    out.add('AES_256_GCM')
    out.add('HMAC_SHA256')
    const probes: Array<[KeyAlgorithm, number]> = [
      ['EC_P256_SIGN', P.CKM_EC_KEY_PAIR_GEN],
      ['EC_P256_ECDH', P.CKM_EC_KEY_PAIR_GEN],
      ['ED25519_SIGN', CKM_EC_EDWARDS_KEY_PAIR_GEN],
    ]
    const who: ObjectIdentity = { id: Buffer.alloc(0), label: 'm2msec/probe', token: false }
    for (const [algorithm, mechanism] of probes) {
      if (!mechanisms.has(mechanism)) continue
      let pair: pkcs11js.KeyPair | undefined
      try {
        pair = this.#p11.C_GenerateKeyPair(
          this.#session,
          { mechanism },
          publicTemplate(algorithm, who),
          privateTemplate(algorithm, who, true).filter((a) => a.type !== P.CKA_KEY_TYPE),
        )
        const keyPair = pair
        this.#withSessionKey('EXPORT_KEK', randomBytes(32), (ek) =>
          this.#p11.C_WrapKey(
            this.#session,
            { mechanism: P.CKM_AES_KEY_WRAP_PAD },
            ek,
            keyPair.privateKey,
            Buffer.alloc(8192),
          ),
        )
        out.add(algorithm)
      } catch {
        // CKR_KEY_NOT_WRAPPABLE (SoftHSM 2.6.1 with Ed25519) or a missing mechanism.
      } finally {
        if (pair !== undefined) {
          this.#p11.C_DestroyObject(this.#session, pair.privateKey)
          this.#p11.C_DestroyObject(this.#session, pair.publicKey)
        }
      }
    }
    return out
  }
}

/**
 * Template of a session key made by C_UnwrapKey / C_DeriveKey. SoftHSM applies the template
 * after creating the object, so CKA_MODIFIABLE=false there fails with CKR_ATTRIBUTE_READ_ONLY;
 * these objects live for one call, so modifiability is moot and the attribute is left out.
 */
function ephemeralTemplate(kind: 'CEK_IN' | 'ECDH_Z'): pkcs11js.Template {
  return secretTemplate(
    kind,
    { id: Buffer.alloc(0), label: 'm2msec/ephemeral', token: false },
    kind === 'ECDH_Z',
  ).filter((a) => a.type !== P.CKA_MODIFIABLE)
}

function closeQuietly(p11: pkcs11js.PKCS11, session: Handle): void {
  try {
    p11.C_CloseSession(session)
  } catch {
    // The session may already be gone with the token; nothing left to release.
  }
}

function gcm(iv: Buffer, aad: Uint8Array): pkcs11js.Mechanism {
  const parameter: pkcs11js.AesGCM = {
    type: P.CK_PARAMS_AES_GCM,
    iv,
    aad: input(aad),
    ivBits: iv.length * 8,
    tagBits: GCM_TAG_LENGTH * 8,
  }
  return { mechanism: P.CKM_AES_GCM, parameter }
}

function ecdhParams(publicData: Buffer): pkcs11js.ECDH1 {
  return { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData }
}

/** Mechanism and input: ECDSA signs a host-side SHA-256 digest (no CKM_ECDSA_SHA256 in SoftHSM). */
function signInput(algorithm: KeyAlgorithm, message: Uint8Array): [number, Buffer] {
  if (algorithm === 'EC_P256_SIGN') return [P.CKM_ECDSA, createHash('sha256').update(message).digest()]
  return [CKM_EDDSA, input(message)]
}
