/**
 * The one contract every secure-environment backend passes (STYLE.md rule 4).
 *
 * `runSecureEnvironmentSuite(name, makeSe)` defines node:test suites that exercise every
 * algorithm and operation of api.ts. Tests are defined for all algorithms up front; each one
 * checks the SE's published capabilities and asserts either the behaviour or
 * ERR_SE_NOT_SUPPORTED, so nothing is skipped and a backend cannot pass by omission.
 *
 * Known answers come from the project's vector files (libs/crypto/test/vectors): Milenage
 * (TS 35.208 sets), the 3GPP KDF (GBA Ks_NAF) and HKDF (RFC 5869, checked against the oracle).
 * Interop is checked against node:crypto and jose with keys the test imported itself.
 *
 * @example
 * ```ts
 * runSecureEnvironmentSuite('software', () => create('software', { masterKey }))
 * ```
 */
import assert from 'node:assert/strict'
import type { KeyObject } from 'node:crypto'
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose'
import { hkdfSha256, hexToBytes } from '@m2msec/crypto'
import { loadJson } from '@m2msec/testkit'
import type { KeyAlgorithm, SecureEnvironment, SeKeyHandle, SeOperation } from '../../src/se/api.ts'
import { KEY_ALGORITHMS, isKeyDeriver, isKeyWrapper, isMilenageCapable } from '../../src/se/api.ts'

/** Declared, tested differences between backends. */
export interface SuiteOptions {
  /**
   * Algorithms whose keys this backend cannot create exportable (the token cannot wrap them);
   * the suite asserts that asking for it fails with ERR_SE_NOT_SUPPORTED at creation.
   */
  readonly notExportable?: readonly KeyAlgorithm[]
  /**
   * The ref itself carries the sealed material (stateless software SE): destroying is done by
   * the KMS deleting the ref, so the suite does not expect a destroyed ref to stop working.
   */
  readonly refCarriesMaterial?: boolean
  /** Per-test timeout in ms (default 60 000). */
  readonly timeout?: number
}

const VECTORS = new URL('../../../../libs/crypto/test/vectors/', import.meta.url)

interface MilenageSet {
  test_set: number
  k: string
  opc: string
  rand: string
  sqn: string
  amf: string
  f1: string
  f1star: string
  f2: string
  f3: string
  f4: string
  f5: string
  f5star: string
}
interface HkdfCase {
  name: string
  ikm: string
  salt: string
  info: string
  L: number
  okm: string
}
interface GbaKdfVector {
  description: string
  ks?: string
  S_hex?: string
  output?: string
}

const ASYMMETRIC: ReadonlySet<KeyAlgorithm> = new Set(['EC_P256_SIGN', 'EC_P256_ECDH', 'ED25519_SIGN'])
const SIGNING: readonly KeyAlgorithm[] = ['EC_P256_SIGN', 'ED25519_SIGN']

/** Import material for `algorithm` plus what a test needs to check results independently. */
interface Sample {
  readonly material: Uint8Array
  /** Raw bytes to search refs for (secret bytes, or the private scalar). */
  readonly secretBytes: Uint8Array
  readonly privateKey?: KeyObject
  readonly publicKey?: KeyObject
}

function sample(algorithm: KeyAlgorithm): Sample {
  switch (algorithm) {
    case 'AES_256_GCM':
    case 'HMAC_SHA256':
    case 'MILENAGE': {
      const material = new Uint8Array(randomBytes(32))
      return { material, secretBytes: material }
    }
    case 'EC_P256_SIGN':
    case 'EC_P256_ECDH':
    case 'ED25519_SIGN': {
      const pair =
        algorithm === 'ED25519_SIGN'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const material = new Uint8Array(pair.privateKey.export({ format: 'der', type: 'pkcs8' }))
      const d = Buffer.from(pair.privateKey.export({ format: 'jwk' }).d ?? '', 'base64url')
      return { material, secretBytes: new Uint8Array(d), privateKey: pair.privateKey, publicKey: pair.publicKey }
    }
  }
}

function spki(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ format: 'der', type: 'spki' }))
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest())
}

function gcmDecrypt(
  key: Uint8Array,
  s: { iv: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array },
  aad: Uint8Array,
): Uint8Array {
  const d = createDecipheriv('aes-256-gcm', key, s.iv)
  d.setAAD(aad)
  d.setAuthTag(s.tag)
  return new Uint8Array(Buffer.concat([d.update(s.ciphertext), d.final()]))
}

function gcmEncrypt(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array) {
  const iv = randomBytes(12)
  const c = createCipheriv('aes-256-gcm', key, iv)
  c.setAAD(aad)
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()])
  return { iv: new Uint8Array(iv), ciphertext: new Uint8Array(ciphertext), tag: new Uint8Array(c.getAuthTag()) }
}

function nodeSignWith(algorithm: KeyAlgorithm, key: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(
    algorithm === 'EC_P256_SIGN'
      ? nodeSign('sha256', message, { key, dsaEncoding: 'ieee-p1363' })
      : nodeSign(null, message, key),
  )
}

function nodeVerifyWith(algorithm: KeyAlgorithm, key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  return algorithm === 'EC_P256_SIGN'
    ? nodeVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature)
    : nodeVerify(null, message, key, signature)
}

/** Every textual form a careless backend might leak raw bytes in. */
function encodings(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes)
  return [
    b.toString('hex'),
    b.toString('hex').toUpperCase(),
    b.toString('base64'),
    b.toString('base64url'),
    b.toString('latin1'),
  ]
}

function assertNoMaterial(ref: string, secret: Uint8Array): void {
  for (const form of encodings(secret)) assert.ok(!ref.includes(form), 'the ref must not contain key material')
  // Also the raw bytes of the ref itself, for refs that are binary blobs in a string.
  assert.ok(!Buffer.from(ref, 'latin1').includes(Buffer.from(secret)), 'the ref must not contain key material')
}

function flip(bytes: Uint8Array, index = 0): Uint8Array {
  const copy = Uint8Array.from(bytes)
  copy[index] = (copy[index] ?? 0) ^ 0x01
  return copy
}

const enc = (text: string): Uint8Array => new TextEncoder().encode(text)

/** Algorithms with a one-call use that needs nothing but the key. */
const USABLE: readonly KeyAlgorithm[] = ['HMAC_SHA256', 'AES_256_GCM', 'EC_P256_SIGN', 'ED25519_SIGN']

/** The natural single use of a key of one of the {@link USABLE} algorithms. */
function useKey(se: SecureEnvironment, key: SeKeyHandle): Promise<unknown> {
  switch (key.algorithm) {
    case 'HMAC_SHA256':
      return se.mac(key, enc('x'))
    case 'AES_256_GCM':
      return se.encrypt(key, enc('x'), enc(''))
    default:
      return se.sign(key, enc('x'))
  }
}

/**
 * Defines the conformance suites for one backend. `makeSe` is called once for the main SE,
 * and again to check that refs survive a second instance and that close() is final.
 */
export function runSecureEnvironmentSuite(
  name: string,
  makeSe: () => Promise<SecureEnvironment>,
  options: SuiteOptions = {},
): void {
  const timeout = options.timeout ?? 60_000
  const notExportable = new Set(options.notExportable ?? [])
  let se: SecureEnvironment
  const supports = (algorithm: KeyAlgorithm, op: SeOperation): boolean =>
    se.capabilities.algorithms.includes(algorithm) && se.capabilities.operations.includes(op)
  const label = (algorithm: KeyAlgorithm, exportable = false): string =>
    `conformance/${algorithm}/${exportable ? 'exportable' : 'fixed'}`

  async function importSample(algorithm: KeyAlgorithm, exportable = false, s: Sample = sample(algorithm)) {
    const created = await se.importKey({
      algorithm,
      label: label(algorithm, exportable),
      exportable,
      material: s.material,
    })
    return { ...s, created, key: { ref: created.ref, algorithm } satisfies SeKeyHandle }
  }
  async function generate(algorithm: KeyAlgorithm, exportable = false) {
    const created = await se.generateKey({ algorithm, label: label(algorithm, exportable), exportable })
    return { created, key: { ref: created.ref, algorithm } satisfies SeKeyHandle }
  }
  /** A usable handle of `algorithm`: imported where possible (MILENAGE can only be imported). */
  async function anyKey(algorithm: KeyAlgorithm): Promise<SeKeyHandle> {
    if (algorithm === 'MILENAGE' || !supports(algorithm, 'generate')) return (await importSample(algorithm)).key
    return (await generate(algorithm)).key
  }
  const has = (algorithm: KeyAlgorithm): boolean =>
    supports(algorithm, algorithm === 'MILENAGE' ? 'import' : 'generate') || supports(algorithm, 'import')

  describe(`SE conformance: ${name}`, { timeout }, () => {
    before(async () => {
      se = await makeSe()
    })
    after(async () => {
      await se?.close()
    })

    it('describes itself: name, type, protection level, capabilities', () => {
      assert.equal(typeof se.name, 'string')
      assert.ok(se.name.length > 0)
      assert.ok(['software', 'pkcs11', 'vault', 'aws-kms'].includes(se.type))
      assert.ok([0, 1, 2, 3].includes(se.protectionLevel))
      assert.ok(se.capabilities.algorithms.length > 0)
      for (const a of se.capabilities.algorithms) assert.ok((KEY_ALGORITHMS as readonly string[]).includes(a))
      const known = ['generate', 'import', 'destroy', 'encrypt', 'decrypt', 'sign', 'verify', 'mac']
      const optional = ['derive-hkdf', 'derive-3gpp-kdf', 'wrap', 'unwrap', 'milenage']
      for (const op of se.capabilities.operations)
        assert.ok([...known, ...optional].includes(op), `unknown operation ${op}`)
      // Optional operations are published only by SEs that implement the capability interface.
      const ops = se.capabilities.operations
      if (ops.includes('derive-hkdf') || ops.includes('derive-3gpp-kdf')) assert.ok(isKeyDeriver(se))
      if (ops.includes('wrap') || ops.includes('unwrap')) assert.ok(isKeyWrapper(se))
      if (ops.includes('milenage')) assert.ok(isMilenageCapable(se))
    })

    describe('key creation', () => {
      for (const algorithm of KEY_ALGORITHMS) {
        it(`${algorithm}: generateKey`, async () => {
          if (!supports(algorithm, 'generate') || algorithm === 'MILENAGE') {
            await assert.rejects(se.generateKey({ algorithm, label: label(algorithm) }), {
              code: 'ERR_SE_NOT_SUPPORTED',
            })
            return
          }
          const { created } = await generate(algorithm)
          assert.equal(typeof created.ref, 'string')
          assert.ok(created.ref.length > 0)
          if (ASYMMETRIC.has(algorithm)) {
            assert.ok(created.publicKey instanceof Uint8Array)
            const pub = createPublicKey({ key: Buffer.from(created.publicKey), format: 'der', type: 'spki' })
            if (algorithm === 'ED25519_SIGN') assert.equal(pub.asymmetricKeyType, 'ed25519')
            else assert.equal(pub.asymmetricKeyDetails?.namedCurve, 'prime256v1')
          } else {
            assert.equal(created.publicKey, undefined)
          }
          const second = await generate(algorithm)
          assert.notEqual(second.created.ref, created.ref, 'two keys must have different refs')
        })

        it(`${algorithm}: importKey, and the ref contains no key material`, async () => {
          if (!supports(algorithm, 'import')) {
            const s = sample(algorithm)
            await assert.rejects(se.importKey({ algorithm, label: label(algorithm), material: s.material }), {
              code: 'ERR_SE_NOT_SUPPORTED',
            })
            return
          }
          const imported = await importSample(algorithm)
          assertNoMaterial(imported.created.ref, imported.secretBytes)
          if (algorithm === 'MILENAGE') {
            assertNoMaterial(imported.created.ref, imported.material.subarray(0, 16))
            assertNoMaterial(imported.created.ref, imported.material.subarray(16, 32))
          }
          if (ASYMMETRIC.has(algorithm)) {
            assert.deepEqual(imported.created.publicKey, spki(imported.publicKey as KeyObject))
          } else {
            assert.equal(imported.created.publicKey, undefined)
          }
        })

        it(`${algorithm}: importKey rejects malformed material with ERR_INVALID_ARGUMENT`, async () => {
          if (!supports(algorithm, 'import')) return
          const bad: Uint8Array[] = ASYMMETRIC.has(algorithm)
            ? [
                new Uint8Array(randomBytes(48)),
                // A valid PKCS#8 key of another curve or algorithm.
                sample(algorithm === 'ED25519_SIGN' ? 'EC_P256_SIGN' : 'ED25519_SIGN').material,
                new Uint8Array(
                  generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({
                    format: 'der',
                    type: 'pkcs8',
                  }),
                ),
              ]
            : algorithm === 'HMAC_SHA256'
              ? [new Uint8Array(31), new Uint8Array(65)]
              : [new Uint8Array(16), new Uint8Array(31), new Uint8Array(33)]
          for (const material of bad) {
            await assert.rejects(se.importKey({ algorithm, label: label(algorithm), material }), {
              code: 'ERR_INVALID_ARGUMENT',
            })
          }
        })
      }

      it('an algorithm the SE does not offer is ERR_SE_NOT_SUPPORTED', async () => {
        const unknown = 'RSA_2048' as KeyAlgorithm
        await assert.rejects(se.generateKey({ algorithm: unknown, label: 'x' }), { code: 'ERR_SE_NOT_SUPPORTED' })
        await assert.rejects(se.mac({ ref: 'x', algorithm: unknown }, enc('x')), { code: 'ERR_SE_NOT_SUPPORTED' })
        for (const algorithm of KEY_ALGORITHMS.filter((a) => !se.capabilities.algorithms.includes(a))) {
          await assert.rejects(se.generateKey({ algorithm, label: 'x' }), { code: 'ERR_SE_NOT_SUPPORTED' })
          await assert.rejects(se.importKey({ algorithm, label: 'x', material: sample(algorithm).material }), {
            code: 'ERR_SE_NOT_SUPPORTED',
          })
        }
      })

      it('MILENAGE keys are never exportable', async () => {
        if (!supports('MILENAGE', 'import')) return
        await assert.rejects(
          se.importKey({ algorithm: 'MILENAGE', label: 'x', exportable: true, material: sample('MILENAGE').material }),
          { code: 'ERR_INVALID_ARGUMENT' },
        )
      })
    })

    describe('AES_256_GCM encrypt / decrypt', () => {
      const aad = enc('tenant-a/key-1/v1')
      it('round trip with a generated key; fresh 12-byte IV and 16-byte tag', async () => {
        if (!supports('AES_256_GCM', 'encrypt')) return
        const { key } = await generate('AES_256_GCM')
        for (const size of [0, 1, 16, 1024, 65_536]) {
          const plaintext = new Uint8Array(randomBytes(size))
          const sealed = await se.encrypt(key, plaintext, aad)
          assert.equal(sealed.iv.length, 12)
          assert.equal(sealed.tag.length, 16)
          assert.equal(sealed.ciphertext.length, size)
          assert.deepEqual(await se.decrypt(key, sealed, aad), plaintext)
        }
        const a = await se.encrypt(key, enc('same'), aad)
        const b = await se.encrypt(key, enc('same'), aad)
        assert.notDeepEqual(a.iv, b.iv, 'every encryption uses a fresh IV')
      })

      it('encryptMany (where offered): small and large batches, views of one buffer, distinct IVs', async () => {
        if (se.encryptMany === undefined || !supports('AES_256_GCM', 'import')) return
        const { key, material } = await importSample('AES_256_GCM')
        // Inputs as views into one larger buffer, as gRPC decoding hands them over.
        const backing = new Uint8Array(randomBytes(64 * 1024))
        for (const count of [3, 40]) {
          const items = Array.from({ length: count }, (_, i) => ({
            plaintext: backing.subarray(i * 97, i * 97 + (i % 5 === 0 ? 0 : 13 * i)),
            aad: enc(`aad-${i}`),
          }))
          const sealed = await se.encryptMany(key, items)
          assert.equal(sealed.length, count)
          sealed.forEach((s, i) => {
            const item = items[i] as (typeof items)[number]
            assert.equal(s.ciphertext.length, item.plaintext.length)
            assert.deepEqual(gcmDecrypt(material, s, item.aad), new Uint8Array(item.plaintext))
          })
          assert.equal(new Set(sealed.map((s) => Buffer.from(s.iv).toString('hex'))).size, count, 'fresh IVs')
        }
      })

      it('interoperates with node:crypto AES-256-GCM for an imported key', async () => {
        if (!supports('AES_256_GCM', 'encrypt') || !supports('AES_256_GCM', 'import')) return
        const { key, material } = await importSample('AES_256_GCM')
        const plaintext = enc('interop plaintext')
        assert.deepEqual(gcmDecrypt(material, await se.encrypt(key, plaintext, aad), aad), plaintext)
        assert.deepEqual(await se.decrypt(key, gcmEncrypt(material, plaintext, aad), aad), plaintext)
      })

      it('tampering, a wrong AAD or another key give ERR_CIPHERTEXT_INVALID', async () => {
        if (!supports('AES_256_GCM', 'encrypt')) return
        const { key } = await generate('AES_256_GCM')
        const other = await generate('AES_256_GCM')
        const sealed = await se.encrypt(key, enc('secret message'), aad)
        const bad = [
          { ...sealed, ciphertext: flip(sealed.ciphertext) },
          { ...sealed, tag: flip(sealed.tag, 15) },
          { ...sealed, iv: flip(sealed.iv) },
        ]
        for (const s of bad) await assert.rejects(se.decrypt(key, s, aad), { code: 'ERR_CIPHERTEXT_INVALID' })
        await assert.rejects(se.decrypt(key, sealed, enc('tenant-b/key-1/v1')), { code: 'ERR_CIPHERTEXT_INVALID' })
        await assert.rejects(se.decrypt(key, sealed, new Uint8Array(0)), { code: 'ERR_CIPHERTEXT_INVALID' })
        await assert.rejects(se.decrypt(other.key, sealed, aad), { code: 'ERR_CIPHERTEXT_INVALID' })
        // The key still works after failed attempts (no stuck HSM operation state).
        assert.deepEqual(await se.decrypt(key, sealed, aad), enc('secret message'))
      })

      it('a wrong IV or tag length is ERR_INVALID_ARGUMENT', async () => {
        if (!supports('AES_256_GCM', 'encrypt')) return
        const { key } = await generate('AES_256_GCM')
        const sealed = await se.encrypt(key, enc('x'), aad)
        await assert.rejects(se.decrypt(key, { ...sealed, iv: new Uint8Array(16) }, aad), {
          code: 'ERR_INVALID_ARGUMENT',
        })
        await assert.rejects(se.decrypt(key, { ...sealed, tag: new Uint8Array(12) }, aad), {
          code: 'ERR_INVALID_ARGUMENT',
        })
      })
    })

    describe('sign / verify', () => {
      for (const algorithm of SIGNING) {
        it(`${algorithm}: generated key signs; node:crypto verifies with the returned public key`, async () => {
          if (!supports(algorithm, 'sign')) return
          const { key, created } = await generate(algorithm)
          const publicKey = createPublicKey({
            key: Buffer.from(created.publicKey as Uint8Array),
            format: 'der',
            type: 'spki',
          })
          const message = enc('oneM2M request primitive')
          const signature = await se.sign(key, message)
          if (algorithm === 'EC_P256_SIGN') assert.equal(signature.length, 64, 'IEEE P1363 r||s')
          else assert.equal(signature.length, 64)
          assert.ok(nodeVerifyWith(algorithm, publicKey, message, signature))
          assert.equal(await se.verify(key, message, signature), true)
          assert.equal(await se.verify(key, enc('other message'), signature), false)
          assert.equal(await se.verify(key, message, flip(signature, 10)), false)
          assert.equal(await se.verify(key, message, signature.subarray(0, 63)), false)
          assert.equal(await se.verify(key, message, new Uint8Array(0)), false)
        })

        it(`${algorithm}: imported key interoperates with node:crypto both ways`, async () => {
          if (!supports(algorithm, 'sign') || !supports(algorithm, 'import')) return
          const { key, privateKey, publicKey } = await importSample(algorithm)
          const message = new Uint8Array(randomBytes(200))
          const seSignature = await se.sign(key, message)
          assert.ok(nodeVerifyWith(algorithm, publicKey as KeyObject, message, seSignature))
          const nodeSignature = nodeSignWith(algorithm, privateKey as KeyObject, message)
          assert.equal(await se.verify(key, message, nodeSignature), true)
          // Ed25519 is deterministic: the SE must produce exactly node's signature.
          if (algorithm === 'ED25519_SIGN') assert.deepEqual(seSignature, nodeSignature)
        })
      }
    })

    describe('HMAC_SHA256 mac', () => {
      it('an imported key (32 and 64 bytes) gives node:crypto HMAC-SHA-256', async () => {
        if (!supports('HMAC_SHA256', 'mac') || !supports('HMAC_SHA256', 'import')) return
        for (const length of [32, 48, 64]) {
          const material = new Uint8Array(randomBytes(length))
          const { key } = await importSample('HMAC_SHA256', false, { material, secretBytes: material })
          for (const data of [new Uint8Array(0), enc('abc'), new Uint8Array(randomBytes(4096))]) {
            assert.deepEqual(await se.mac(key, data), hmac(material, data))
          }
        }
      })

      it('a generated key gives a deterministic 32-byte MAC', async () => {
        if (!supports('HMAC_SHA256', 'mac') || !supports('HMAC_SHA256', 'generate')) return
        const { key } = await generate('HMAC_SHA256')
        const a = await se.mac(key, enc('challenge'))
        assert.equal(a.length, 32)
        assert.deepEqual(await se.mac(key, enc('challenge')), a)
        assert.notDeepEqual(await se.mac(key, enc('challenge2')), a)
      })
    })

    describe('deriveKey', () => {
      const hkdfCases = loadJson<{ cases: HkdfCase[] }>(new URL('hkdf.json', VECTORS)).cases
      const gba = loadJson<{ vectors: GbaKdfVector[] }>(new URL('gba-kdf.json', VECTORS)).vectors.filter(
        (v) => v.ks !== undefined && v.S_hex !== undefined && v.output !== undefined,
      )

      it('the HKDF oracle reproduces every RFC 5869 vector', () => {
        assert.ok(hkdfCases.length >= 3)
        for (const c of hkdfCases) {
          const okm = hkdfSha256(hexToBytes(c.ikm), hexToBytes(c.salt), hexToBytes(c.info), c.L)
          assert.deepEqual(okm, hexToBytes(c.okm), c.name)
        }
      })

      it('HKDF_SHA256 (RFC 5869 salt/info of every vector) into HMAC and AES keys matches the oracle', async () => {
        const base = await (has('HMAC_SHA256') && supports('HMAC_SHA256', 'import')
          ? importSample('HMAC_SHA256')
          : undefined)
        if (!supports('HMAC_SHA256', 'derive-hkdf') || !isKeyDeriver(se)) {
          if (base !== undefined && isKeyDeriver(se)) {
            await assert.rejects(
              se.deriveKey(
                base.key,
                { kdf: 'HKDF_SHA256', salt: new Uint8Array(0), info: new Uint8Array(0) },
                { algorithm: 'HMAC_SHA256', label: 'x' },
              ),
              { code: 'ERR_SE_NOT_SUPPORTED' },
            )
          }
          return
        }
        assert.ok(base !== undefined)
        for (const c of hkdfCases) {
          const salt = hexToBytes(c.salt)
          const info = hexToBytes(c.info)
          const expected = hkdfSha256(base.material, salt, info, 32)
          const asHmac = await se.deriveKey(
            base.key,
            { kdf: 'HKDF_SHA256', salt, info },
            { algorithm: 'HMAC_SHA256', label: 'derived' },
          )
          assertNoMaterial(asHmac.ref, expected)
          const data = enc(c.name)
          assert.deepEqual(
            await se.mac({ ref: asHmac.ref, algorithm: 'HMAC_SHA256' }, data),
            hmac(expected, data),
            c.name,
          )
          if (supports('AES_256_GCM', 'encrypt')) {
            const asAes = await se.deriveKey(
              base.key,
              { kdf: 'HKDF_SHA256', salt, info },
              { algorithm: 'AES_256_GCM', label: 'derived' },
            )
            const sealed = await se.encrypt({ ref: asAes.ref, algorithm: 'AES_256_GCM' }, data, salt)
            assert.deepEqual(gcmDecrypt(expected, sealed, salt), data, c.name)
          }
        }
      })

      it('KDF_3GPP reproduces the GBA Ks_NAF vector (TS 33.220 B.2)', async () => {
        const v = gba[0]
        assert.ok(v?.ks !== undefined && v.S_hex !== undefined && v.output !== undefined)
        const ks = hexToBytes(v.ks)
        if (!supports('HMAC_SHA256', 'import')) return
        const base = await importSample('HMAC_SHA256', false, { material: ks, secretBytes: ks })
        const params = { kdf: 'KDF_3GPP' as const, s: hexToBytes(v.S_hex) }
        if (!supports('HMAC_SHA256', 'derive-3gpp-kdf') || !isKeyDeriver(se)) {
          if (isKeyDeriver(se)) {
            await assert.rejects(se.deriveKey(base.key, params, { algorithm: 'HMAC_SHA256', label: 'x' }), {
              code: 'ERR_SE_NOT_SUPPORTED',
            })
          }
          return
        }
        const ksNaf = hexToBytes(v.output)
        const derived = await se.deriveKey(base.key, params, { algorithm: 'HMAC_SHA256', label: 'ks-naf' })
        assertNoMaterial(derived.ref, ksNaf)
        const data = enc('Ks_NAF check')
        assert.deepEqual(await se.mac({ ref: derived.ref, algorithm: 'HMAC_SHA256' }, data), hmac(ksNaf, data))
      })

      it('derive checks: wrong base type, exportable laundering, bad targets', async () => {
        if (!isKeyDeriver(se) || !supports('HMAC_SHA256', 'derive-3gpp-kdf')) return
        const params = { kdf: 'KDF_3GPP' as const, s: enc('\x01abc') }
        const base = await anyKey('HMAC_SHA256')
        if (has('AES_256_GCM')) {
          const aes = await anyKey('AES_256_GCM')
          await assert.rejects(se.deriveKey(aes, params, { algorithm: 'HMAC_SHA256', label: 'x' }), {
            code: 'ERR_KEY_TYPE_MISMATCH',
          })
        }
        if (has('EC_P256_SIGN')) {
          const ec = await anyKey('EC_P256_SIGN')
          await assert.rejects(se.deriveKey(ec, params, { algorithm: 'HMAC_SHA256', label: 'x' }), {
            code: 'ERR_KEY_TYPE_MISMATCH',
          })
        }
        await assert.rejects(se.deriveKey(base, params, { algorithm: 'HMAC_SHA256', label: 'x', exportable: true }), {
          code: 'ERR_EXPORT_DENIED',
        })
        await assert.rejects(se.deriveKey(base, params, { algorithm: 'EC_P256_SIGN', label: 'x' }), {
          code: 'ERR_SE_NOT_SUPPORTED',
        })
        await assert.rejects(se.deriveKey(base, params, { algorithm: 'MILENAGE', label: 'x' }), {
          code: 'ERR_SE_NOT_SUPPORTED',
        })
      })
    })

    describe('milenage', () => {
      const sets = loadJson<{ test_sets: MilenageSet[] }>(new URL('milenage.json', VECTORS)).test_sets

      it(`reproduces every TS 35.208 set in milenage.json (${sets.length} sets)`, async () => {
        assert.ok(sets.length >= 4)
        if (!supports('MILENAGE', 'milenage') || !isMilenageCapable(se)) {
          if (supports('MILENAGE', 'import') && isMilenageCapable(se)) {
            const { key } = await importSample('MILENAGE')
            await assert.rejects(
              se.milenage(key, { rand: new Uint8Array(16), sqn: new Uint8Array(6), amf: new Uint8Array(2) }),
              { code: 'ERR_SE_NOT_SUPPORTED' },
            )
          }
          return
        }
        for (const v of sets) {
          const material = new Uint8Array([...hexToBytes(v.k), ...hexToBytes(v.opc)])
          const { key, created } = await importSample('MILENAGE', false, { material, secretBytes: material })
          assertNoMaterial(created.ref, hexToBytes(v.k))
          assertNoMaterial(created.ref, hexToBytes(v.opc))
          const out = await se.milenage(key, {
            rand: hexToBytes(v.rand),
            sqn: hexToBytes(v.sqn),
            amf: hexToBytes(v.amf),
          })
          const title = `test set ${v.test_set}`
          assert.deepEqual(out.macA, hexToBytes(v.f1), `${title} f1`)
          assert.deepEqual(out.macS, hexToBytes(v.f1star), `${title} f1*`)
          assert.deepEqual(out.res, hexToBytes(v.f2), `${title} f2`)
          assert.deepEqual(out.ck, hexToBytes(v.f3), `${title} f3`)
          assert.deepEqual(out.ik, hexToBytes(v.f4), `${title} f4`)
          assert.deepEqual(out.ak, hexToBytes(v.f5), `${title} f5`)
          assert.deepEqual(out.akStar, hexToBytes(v.f5star), `${title} f5*`)
        }
      })

      it('rejects wrong input lengths with ERR_INVALID_ARGUMENT', async () => {
        if (!supports('MILENAGE', 'milenage') || !isMilenageCapable(se)) return
        const { key } = await importSample('MILENAGE')
        const good = { rand: new Uint8Array(16), sqn: new Uint8Array(6), amf: new Uint8Array(2) }
        for (const bad of [
          { ...good, rand: new Uint8Array(15) },
          { ...good, sqn: new Uint8Array(8) },
          { ...good, amf: new Uint8Array(0) },
        ]) {
          await assert.rejects(se.milenage(key, bad), { code: 'ERR_INVALID_ARGUMENT' })
        }
      })
    })

    describe('wrapKey / unwrapKey', () => {
      let kek: Awaited<ReturnType<typeof importSample>> | undefined
      const canWrap = (): boolean =>
        isKeyWrapper(se) && supports('AES_256_GCM', 'wrap') && supports('AES_256_GCM', 'import')
      const canUnwrap = (): boolean =>
        isKeyWrapper(se) && supports('AES_256_GCM', 'unwrap') && supports('AES_256_GCM', 'import')
      before(async () => {
        if (supports('AES_256_GCM', 'import')) kek = await importSample('AES_256_GCM')
      })

      /** Checks that `plaintext` is the material of `s` (raw, or the same private key). */
      function assertSameMaterial(algorithm: KeyAlgorithm, plaintext: Uint8Array, s: Sample): void {
        if (!ASYMMETRIC.has(algorithm)) {
          assert.deepEqual(plaintext, s.material)
          return
        }
        const key = createPrivateKey({ key: Buffer.from(plaintext), format: 'der', type: 'pkcs8' })
        assert.deepEqual(key.export({ format: 'jwk' }), (s.privateKey as KeyObject).export({ format: 'jwk' }))
      }

      for (const algorithm of KEY_ALGORITHMS.filter((a) => a !== 'MILENAGE')) {
        it(`${algorithm}: an exportable key wraps for a KMS key (A256KW) and for a public JWK (ECDH-ES+A256KW)`, async () => {
          if (!canWrap() || !isKeyWrapper(se) || !supports(algorithm, 'import')) return
          const s = sample(algorithm)
          if (notExportable.has(algorithm)) {
            await assert.rejects(
              se.importKey({ algorithm, label: label(algorithm, true), exportable: true, material: s.material }),
              { code: 'ERR_SE_NOT_SUPPORTED' },
            )
            if (supports(algorithm, 'generate')) {
              await assert.rejects(se.generateKey({ algorithm, label: label(algorithm, true), exportable: true }), {
                code: 'ERR_SE_NOT_SUPPORTED',
              })
            }
            return
          }
          assert.ok(kek !== undefined)
          const { key } = await importSample(algorithm, true, s)
          const jwe = await se.wrapKey(key, { kind: 'kms-key', key: kek.key, kid: 'kek-1/1' })
          assert.deepEqual(decodeProtectedHeader(jwe), { alg: 'A256KW', enc: 'A256GCM', kid: 'kek-1/1' })
          const opened = await compactDecrypt(jwe, kek.material)
          assertSameMaterial(algorithm, opened.plaintext, s)

          const recipient = generateKeyPairSync('ec', { namedCurve: 'P-256' })
          const jwk = recipient.publicKey.export({ format: 'jwk' }) as Record<string, string>
          const jwe2 = await se.wrapKey(key, { kind: 'public-jwk', jwk, kid: 'device-7' })
          const header = decodeProtectedHeader(jwe2)
          assert.equal(header.alg, 'ECDH-ES+A256KW')
          assert.equal(header.enc, 'A256GCM')
          assert.equal(header.kid, 'device-7')
          assertSameMaterial(algorithm, (await compactDecrypt(jwe2, recipient.privateKey)).plaintext, s)
        })
      }

      it('non-exportable keys and MILENAGE keys are ERR_EXPORT_DENIED', async () => {
        if (!canWrap() || !isKeyWrapper(se) || kek === undefined) return
        for (const algorithm of se.capabilities.algorithms) {
          if (!supports(algorithm, 'import')) continue
          const { key } = await importSample(algorithm, false)
          await assert.rejects(se.wrapKey(key, { kind: 'kms-key', key: kek.key, kid: 'k' }), {
            code: 'ERR_EXPORT_DENIED',
          })
        }
      })

      it('wrap checks: the KMS recipient must be AES_256_GCM, a public recipient a P-256 public JWK', async () => {
        if (!canWrap() || !isKeyWrapper(se)) return
        const { key } = await importSample('AES_256_GCM', true)
        if (has('HMAC_SHA256')) {
          const hmacKey = await anyKey('HMAC_SHA256')
          await assert.rejects(se.wrapKey(key, { kind: 'kms-key', key: hmacKey, kid: 'k' }), {
            code: 'ERR_KEY_TYPE_MISMATCH',
          })
        }
        const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as Record<string, string>
        const ecPrivate = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
          format: 'jwk',
        }) as Record<string, string>
        for (const jwk of [ed, ecPrivate, { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' }, {}]) {
          await assert.rejects(se.wrapKey(key, { kind: 'public-jwk', jwk, kid: 'k' }), { code: 'ERR_INVALID_ARGUMENT' })
        }
      })

      it('unwrapKey imports a jose-made A256KW JWE (HMAC and EC keys)', async () => {
        if (!canUnwrap() || !isKeyWrapper(se) || kek === undefined) return
        const secret = new Uint8Array(randomBytes(32))
        const jwe = await new CompactEncrypt(secret)
          .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
          .encrypt(kek.material)
        if (supports('HMAC_SHA256', 'import')) {
          const created = await se.unwrapKey(jwe, kek.key, { algorithm: 'HMAC_SHA256', label: 'unwrapped' })
          assertNoMaterial(created.ref, secret)
          assert.deepEqual(
            await se.mac({ ref: created.ref, algorithm: 'HMAC_SHA256' }, enc('m')),
            hmac(secret, enc('m')),
          )
        }
        if (supports('EC_P256_SIGN', 'import')) {
          const s = sample('EC_P256_SIGN')
          const jweEc = await new CompactEncrypt(s.material)
            .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
            .encrypt(kek.material)
          const created = await se.unwrapKey(jweEc, kek.key, { algorithm: 'EC_P256_SIGN', label: 'unwrapped' })
          assert.deepEqual(created.publicKey, spki(s.publicKey as KeyObject))
          const signature = await se.sign({ ref: created.ref, algorithm: 'EC_P256_SIGN' }, enc('m'))
          assert.ok(nodeVerifyWith('EC_P256_SIGN', s.publicKey as KeyObject, enc('m'), signature))
        }
      })

      it('unwrapKey with an EC_P256_ECDH key opens ECDH-ES+A256KW', async () => {
        if (
          !isKeyWrapper(se) ||
          !supports('EC_P256_ECDH', 'unwrap') ||
          !has('EC_P256_ECDH') ||
          !supports('AES_256_GCM', 'import')
        )
          return
        const ecdh = supports('EC_P256_ECDH', 'generate')
          ? await generate('EC_P256_ECDH')
          : await importSample('EC_P256_ECDH')
        const recipient = createPublicKey({
          key: Buffer.from(ecdh.created.publicKey as Uint8Array),
          format: 'der',
          type: 'spki',
        })
        const secret = new Uint8Array(randomBytes(32))
        const jwe = await new CompactEncrypt(secret)
          .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'kms' })
          .encrypt(recipient)
        const created = await se.unwrapKey(jwe, ecdh.key, { algorithm: 'AES_256_GCM', label: 'unwrapped' })
        const sealed = await se.encrypt({ ref: created.ref, algorithm: 'AES_256_GCM' }, enc('m'), enc('a'))
        assert.deepEqual(gcmDecrypt(secret, sealed, enc('a')), enc('m'))
        const tampered = jwe.split('.')
        tampered[3] = Buffer.from(flip(Buffer.from(tampered[3] ?? '', 'base64url'))).toString('base64url')
        await assert.rejects(se.unwrapKey(tampered.join('.'), ecdh.key, { algorithm: 'AES_256_GCM', label: 'x' }), {
          code: 'ERR_CIPHERTEXT_INVALID',
        })
      })

      it('wrap then unwrap round trip inside the SE', async () => {
        if (!canWrap() || !canUnwrap() || !isKeyWrapper(se) || kek === undefined || !supports('HMAC_SHA256', 'import'))
          return
        const original = await importSample('HMAC_SHA256', true)
        const jwe = await se.wrapKey(original.key, { kind: 'kms-key', key: kek.key, kid: 'kek' })
        const copy = await se.unwrapKey(jwe, kek.key, { algorithm: 'HMAC_SHA256', label: 'copy' })
        const copyKey = { ref: copy.ref, algorithm: 'HMAC_SHA256' as const }
        assert.deepEqual(await se.mac(copyKey, enc('m')), await se.mac(original.key, enc('m')))
        // The copy is non-exportable unless asked for.
        await assert.rejects(se.wrapKey(copyKey, { kind: 'kms-key', key: kek.key, kid: 'kek' }), {
          code: 'ERR_EXPORT_DENIED',
        })
      })

      it('unwrap checks: tampering, a wrong key, a wrong key type, malformed JWEs', async () => {
        if (!canUnwrap() || !isKeyWrapper(se) || kek === undefined) return
        const target = { algorithm: 'AES_256_GCM' as const, label: 'x' }
        const jwe = await new CompactEncrypt(new Uint8Array(randomBytes(32)))
          .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
          .encrypt(kek.material)
        const parts = jwe.split('.')
        for (const index of [1, 3, 4]) {
          const copy = [...parts]
          copy[index] = Buffer.from(flip(Buffer.from(copy[index] ?? '', 'base64url'))).toString('base64url')
          await assert.rejects(se.unwrapKey(copy.join('.'), kek.key, target), { code: 'ERR_CIPHERTEXT_INVALID' })
        }
        const otherKek = await importSample('AES_256_GCM')
        await assert.rejects(se.unwrapKey(jwe, otherKek.key, target), { code: 'ERR_CIPHERTEXT_INVALID' })
        if (has('HMAC_SHA256')) {
          await assert.rejects(se.unwrapKey(jwe, await anyKey('HMAC_SHA256'), target), {
            code: 'ERR_KEY_TYPE_MISMATCH',
          })
        }
        const dir = await new CompactEncrypt(new Uint8Array(32))
          .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
          .encrypt(kek.material)
        const a128 = await new CompactEncrypt(new Uint8Array(32))
          .setProtectedHeader({ alg: 'A256KW', enc: 'A128GCM' })
          .encrypt(kek.material)
        for (const bad of ['not a jwe', 'a.b.c.d.e', dir, a128, '']) {
          await assert.rejects(se.unwrapKey(bad, kek.key, target), { code: 'ERR_INVALID_ARGUMENT' })
        }
        // The plaintext must fit the target algorithm.
        await assert.rejects(se.unwrapKey(jwe, kek.key, { algorithm: 'EC_P256_SIGN', label: 'x' }), {
          code: 'ERR_INVALID_ARGUMENT',
        })
      })
    })

    describe('key type and ref checks', () => {
      it('an operation on a key of the wrong algorithm is ERR_KEY_TYPE_MISMATCH', async () => {
        const keys = new Map<KeyAlgorithm, SeKeyHandle>()
        for (const algorithm of se.capabilities.algorithms)
          if (has(algorithm)) keys.set(algorithm, await anyKey(algorithm))
        const zero = { rand: new Uint8Array(16), sqn: new Uint8Array(6), amf: new Uint8Array(2) }
        const sealed = { iv: new Uint8Array(12), ciphertext: new Uint8Array(4), tag: new Uint8Array(16) }
        for (const [algorithm, key] of keys) {
          const cases: Array<[string, boolean, () => Promise<unknown>]> = [
            [
              'encrypt',
              algorithm !== 'AES_256_GCM' && se.capabilities.operations.includes('encrypt'),
              () => se.encrypt(key, enc('x'), enc('')),
            ],
            [
              'decrypt',
              algorithm !== 'AES_256_GCM' && se.capabilities.operations.includes('decrypt'),
              () => se.decrypt(key, sealed, enc('')),
            ],
            [
              'sign',
              !SIGNING.includes(algorithm) && se.capabilities.operations.includes('sign'),
              () => se.sign(key, enc('x')),
            ],
            [
              'verify',
              !SIGNING.includes(algorithm) && se.capabilities.operations.includes('verify'),
              () => se.verify(key, enc('x'), new Uint8Array(64)),
            ],
            [
              'mac',
              algorithm !== 'HMAC_SHA256' && se.capabilities.operations.includes('mac'),
              () => se.mac(key, enc('x')),
            ],
            [
              'milenage',
              algorithm !== 'MILENAGE' && se.capabilities.operations.includes('milenage') && isMilenageCapable(se),
              () => (isMilenageCapable(se) ? se.milenage(key, zero) : Promise.resolve()),
            ],
          ]
          for (const [op, applies, call] of cases) {
            if (!applies) continue
            await assert.rejects(call(), { code: 'ERR_KEY_TYPE_MISMATCH' }, `${op} with ${algorithm}`)
          }
        }
      })

      it('a handle whose algorithm does not match its ref is ERR_KEY_TYPE_MISMATCH', async () => {
        if (!has('AES_256_GCM') || !has('HMAC_SHA256') || !supports('HMAC_SHA256', 'mac')) return
        const aes = await anyKey('AES_256_GCM')
        const hmacKey = await anyKey('HMAC_SHA256')
        await assert.rejects(se.mac({ ref: aes.ref, algorithm: 'HMAC_SHA256' }, enc('x')), {
          code: 'ERR_KEY_TYPE_MISMATCH',
        })
        if (supports('AES_256_GCM', 'encrypt')) {
          await assert.rejects(se.encrypt({ ref: hmacKey.ref, algorithm: 'AES_256_GCM' }, enc('x'), enc('')), {
            code: 'ERR_KEY_TYPE_MISMATCH',
          })
        }
        if (has('EC_P256_SIGN') && has('EC_P256_ECDH')) {
          const ecdh = await anyKey('EC_P256_ECDH')
          await assert.rejects(se.sign({ ref: ecdh.ref, algorithm: 'EC_P256_SIGN' }, enc('x')), {
            code: 'ERR_KEY_TYPE_MISMATCH',
          })
        }
      })

      it('a malformed or unknown ref is ERR_INVALID_ARGUMENT', async () => {
        const algorithm = USABLE.find((a) => has(a))
        assert.ok(algorithm !== undefined)
        const key = await anyKey(algorithm)
        const truncated = key.ref.slice(0, Math.max(1, key.ref.length - 5))
        for (const ref of ['', 'garbage', `${key.ref}x`, truncated, 'x'.repeat(10_000)]) {
          await assert.rejects(
            useKey(se, { ref, algorithm }),
            { code: 'ERR_INVALID_ARGUMENT' },
            `ref ${ref.slice(0, 20)}`,
          )
        }
      })

      it('the operations the SE does not publish are ERR_SE_NOT_SUPPORTED', async () => {
        const ops = se.capabilities.operations
        const missing = (op: SeOperation): boolean => !ops.includes(op)
        const first = se.capabilities.algorithms[0] as KeyAlgorithm
        const anyHandle: SeKeyHandle = { ref: 'unused', algorithm: first }
        if (missing('generate'))
          await assert.rejects(se.generateKey({ algorithm: first, label: 'x' }), { code: 'ERR_SE_NOT_SUPPORTED' })
        if (missing('import')) {
          await assert.rejects(se.importKey({ algorithm: first, label: 'x', material: sample(first).material }), {
            code: 'ERR_SE_NOT_SUPPORTED',
          })
        }
        if (isKeyDeriver(se) && has('HMAC_SHA256')) {
          const base = await anyKey('HMAC_SHA256')
          if (missing('derive-hkdf')) {
            await assert.rejects(
              se.deriveKey(
                base,
                { kdf: 'HKDF_SHA256', salt: new Uint8Array(0), info: new Uint8Array(0) },
                { algorithm: 'HMAC_SHA256', label: 'x' },
              ),
              { code: 'ERR_SE_NOT_SUPPORTED' },
            )
          }
          if (missing('derive-3gpp-kdf')) {
            await assert.rejects(
              se.deriveKey(base, { kdf: 'KDF_3GPP', s: enc('s') }, { algorithm: 'HMAC_SHA256', label: 'x' }),
              {
                code: 'ERR_SE_NOT_SUPPORTED',
              },
            )
          }
        }
        if (isKeyWrapper(se) && missing('unwrap')) {
          await assert.rejects(se.unwrapKey('a.b.c.d.e', anyHandle, { algorithm: first, label: 'x' }), {
            code: 'ERR_SE_NOT_SUPPORTED',
          })
        }
        if (!isMilenageCapable(se)) assert.ok(missing('milenage'))
      })

      it('destroyKey: unknown refs and repeated calls are not errors; the key stops working', async () => {
        const algorithm = USABLE.find((a) => has(a))
        if (algorithm === undefined || !se.capabilities.operations.includes('destroy')) return
        const key = await anyKey(algorithm)
        await useKey(se, key)
        await se.destroyKey(key)
        await se.destroyKey(key)
        await se.destroyKey({ ref: `${key.ref.slice(0, 3)}unknown`, algorithm })
        if (options.refCarriesMaterial === true) return
        await assert.rejects(useKey(se, key), { code: 'ERR_INVALID_ARGUMENT' })
      })
    })

    describe('concurrency and lifecycle', () => {
      it('100 parallel signatures all verify', async () => {
        const algorithm = SIGNING.find((a) => supports(a, 'sign') && supports(a, 'generate'))
        if (algorithm === undefined) return
        const { key, created } = await generate(algorithm)
        const publicKey = createPublicKey({
          key: Buffer.from(created.publicKey as Uint8Array),
          format: 'der',
          type: 'spki',
        })
        const messages = Array.from({ length: 100 }, (_, i) => enc(`message ${i}`))
        const signatures = await Promise.all(messages.map((m) => se.sign(key, m)))
        signatures.forEach((signature, i) =>
          assert.ok(nodeVerifyWith(algorithm, publicKey, messages[i] as Uint8Array, signature)),
        )
      })

      it('100 parallel mixed operations on several keys give correct results', async () => {
        if (
          !supports('AES_256_GCM', 'encrypt') ||
          !supports('HMAC_SHA256', 'import') ||
          !supports('HMAC_SHA256', 'mac')
        )
          return
        const aes = await anyKey('AES_256_GCM')
        const h = await importSample('HMAC_SHA256')
        const work = Array.from({ length: 100 }, async (_, i) => {
          const data = enc(`item ${i}`)
          if (i % 2 === 0) {
            const sealed = await se.encrypt(aes, data, enc(`${i}`))
            assert.deepEqual(await se.decrypt(aes, sealed, enc(`${i}`)), data)
          } else {
            assert.deepEqual(await se.mac(h.key, data), hmac(h.material, data))
          }
        })
        await Promise.all(work)
      })

      it('a second instance with the same configuration opens the refs of the first', async () => {
        if (!supports('HMAC_SHA256', 'import') || !supports('HMAC_SHA256', 'mac')) return
        const h = await importSample('HMAC_SHA256')
        const second = await makeSe()
        try {
          assert.deepEqual(await second.mac(h.key, enc('x')), hmac(h.material, enc('x')))
        } finally {
          await second.close()
        }
        // Closing the second instance leaves the first working.
        assert.deepEqual(await se.mac(h.key, enc('y')), hmac(h.material, enc('y')))
      })

      it('after close() every operation is ERR_SE_UNAVAILABLE', async () => {
        const closed = await makeSe()
        await closed.close()
        const algorithm = closed.capabilities.algorithms[0] as KeyAlgorithm
        await assert.rejects(closed.generateKey({ algorithm, label: 'x' }), { code: 'ERR_SE_UNAVAILABLE' })
        const usable = USABLE.find((a) => closed.capabilities.algorithms.includes(a))
        if (usable !== undefined)
          await assert.rejects(useKey(closed, { ref: 'x', algorithm: usable }), { code: 'ERR_SE_UNAVAILABLE' })
      })
    })
  })
}
