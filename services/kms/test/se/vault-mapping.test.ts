/**
 * Unit tests of the vault SE's request/response mapping against the documented Transit API
 * (fixtures/vault/transit-api-samples.json, copied from the Vault / OpenBao API docs).
 *
 * A scripted node:http server on 127.0.0.1 stands in for Vault inside this file only: each
 * step asserts one request (method, path, headers, body fields) and answers with a documented
 * body shape. What real Vault does with these requests is checked by vault.test.ts.
 */
import assert from 'node:assert/strict'
import type { KeyObject } from 'node:crypto'
import {
  constants,
  createCipheriv,
  createDecipheriv,
  generateKeyPair,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
} from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import type { IncomingHttpHeaders, Server } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, beforeEach, describe, it } from 'node:test'
import type { TmpDir } from '@m2msec/testkit'
import { freePort, loadJson, tmpDir } from '@m2msec/testkit'
import type { SecureEnvironment, SeKeyHandle } from '../../src/se/api.ts'
import { kwpWrap } from '../../src/se/vault/byok.ts'
import { create } from '../../src/se/vault/index.ts'

const samples = loadJson<Record<string, { data: Record<string, unknown> }>>(
  new URL('./fixtures/vault/transit-api-samples.json', import.meta.url),
)
const TOKEN = 'hvs.unit-test-token-A'
const NAMESPACE = 'team-a'
const KWP_AIV = Buffer.from('a65959a6', 'hex')

interface Seen {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly body: Record<string, unknown> | undefined
}
interface Reply {
  readonly status?: number
  readonly body?: unknown
}
type Step = (req: Seen) => Reply

/** A Vault stand-in that answers each request with the next scripted step. */
async function startScripted(): Promise<{
  url: string
  script(...steps: Step[]): void
  reset(): void
  done(): void
  close(): Promise<void>
}> {
  const steps: Step[] = []
  const failures: unknown[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const seen: Seen = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
      }
      let reply: Reply
      try {
        const step = steps.shift()
        if (step === undefined) throw new Error(`unscripted request ${seen.method} ${seen.path}`)
        reply = step(seen)
      } catch (err) {
        failures.push(err)
        reply = { status: 500, body: { errors: ['scripted step failed'] } }
      }
      const status = reply.status ?? (reply.body === undefined ? 204 : 200)
      res.writeHead(status, reply.body === undefined ? {} : { 'content-type': 'application/json' })
      res.end(reply.body === undefined ? undefined : JSON.stringify(reply.body))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    script: (...s) => void steps.push(...s),
    reset: () => {
      steps.length = 0
      failures.length = 0
    },
    done: () => {
      if (failures.length > 0) throw failures[0]
      assert.equal(steps.length, 0, 'every scripted request was made')
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** One expected request: method, path (string or pattern), the common headers, then `check`. */
function expect(
  method: string,
  path: string | RegExp,
  check: (req: Seen) => void = () => undefined,
  reply: Reply | ((req: Seen) => Reply) = {},
  token = TOKEN,
): Step {
  return (req) => {
    assert.equal(req.method, method)
    if (typeof path === 'string') assert.equal(req.path, path)
    else assert.match(req.path, path)
    assert.equal(req.headers['x-vault-token'], token)
    assert.equal(req.headers['x-vault-namespace'], NAMESPACE)
    assert.equal(req.headers['x-vault-request'], 'true')
    if (req.body !== undefined) assert.equal(req.headers['content-type'], 'application/json')
    check(req)
    return typeof reply === 'function' ? reply(req) : reply
  }
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
const enc = (text: string): Uint8Array => new TextEncoder().encode(text)
const NAME = (tag: string): string => `m2msec.t1_k1_1.${tag}.0123456789abcdef`
const handle = (tag: string, algorithm: SeKeyHandle['algorithm']): SeKeyHandle => ({
  ref: `vault:transit/${NAME(tag)}`,
  algorithm,
})
const AES = handle('aes256gcm', 'AES_256_GCM')
const HMAC = handle('hmac', 'HMAC_SHA256')
const P256 = handle('p256', 'EC_P256_SIGN')
const ED = handle('ed25519', 'ED25519_SIGN')

/** The GET keys/:name reply of an asymmetric key (documented read shape, keys map per version). */
function readAsymmetric(publicKey: string, type: string): Reply {
  const data = { ...samples['readKeyResponse']?.data, type, supports_signing: true }
  return {
    body: {
      data: { ...data, keys: { '1': { name: 'P-256', public_key: publicKey, creation_time: '2026-01-01T00:00:00Z' } } },
    },
  }
}

describe('vault SE: request/response mapping (scripted Vault on 127.0.0.1)', () => {
  let vault: Awaited<ReturnType<typeof startScripted>>
  let dir: TmpDir
  let tokenFile: string
  let se: SecureEnvironment
  let wrapping: { publicKey: KeyObject; privateKey: KeyObject }

  before(async () => {
    vault = await startScripted()
    dir = await tmpDir('vault-mapping')
    tokenFile = join(dir.path, 'token')
    await writeFile(tokenFile, `${TOKEN}\n`)
    se = await create('vault-unit', { address: vault.url, tokenFile, namespace: NAMESPACE, timeoutMs: 2000 })
    wrapping = await new Promise((resolve, reject) =>
      generateKeyPair('rsa', { modulusLength: 4096 }, (err, publicKey, privateKey) =>
        err ? reject(err) : resolve({ publicKey, privateKey }),
      ),
    )
  })
  after(async () => {
    await se.close()
    await vault.close()
    await dir.cleanup()
  })
  beforeEach(async () => {
    vault.reset()
    await writeFile(tokenFile, `${TOKEN}\n`)
  })

  it('generateKey AES_256_GCM: POST keys/:name, exportable false; the ref names mount and key', async () => {
    let created = ''
    vault.script(
      expect('POST', /^\/v1\/transit\/keys\/m2msec\.t1_k1_1\.aes256gcm\.[0-9a-f]{16}$/, (req) => {
        assert.deepEqual(req.body, { type: 'aes256-gcm96', exportable: false, allow_plaintext_backup: false })
        created = req.path.slice('/v1/transit/keys/'.length)
      }),
    )
    const key = await se.generateKey({ algorithm: 'AES_256_GCM', label: 't1/k1/1' })
    vault.done()
    assert.equal(key.ref, `vault:transit/${created}`)
    assert.equal(key.publicKey, undefined)
  })

  it('generateKey HMAC_SHA256: type hmac with key_size 32', async () => {
    vault.script(
      expect('POST', /^\/v1\/transit\/keys\/m2msec\.x\.hmac\.[0-9a-f]{16}$/, (req) =>
        assert.deepEqual(req.body, { type: 'hmac', exportable: false, allow_plaintext_backup: false, key_size: 32 }),
      ),
    )
    await se.generateKey({ algorithm: 'HMAC_SHA256', label: 'x' })
    vault.done()
  })

  it('generateKey EC_P256_SIGN / ED25519_SIGN: the public key of GET keys/:name becomes SPKI DER', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const pem = ec.publicKey.export({ format: 'pem', type: 'spki' }).toString()
    vault.script(
      expect('POST', /\/keys\/m2msec\.x\.p256\.[0-9a-f]{16}$/, (req) => assert.equal(req.body?.['type'], 'ecdsa-p256')),
      expect(
        'GET',
        /\/keys\/m2msec\.x\.p256\.[0-9a-f]{16}$/,
        (req) => assert.equal(req.body, undefined),
        readAsymmetric(pem, 'ecdsa-p256'),
      ),
    )
    const p = await se.generateKey({ algorithm: 'EC_P256_SIGN', label: 'x' })
    assert.deepEqual(p.publicKey, new Uint8Array(ec.publicKey.export({ format: 'der', type: 'spki' })))

    // ed25519 keys publish the raw 32-byte key in base64, not PEM.
    const ed = generateKeyPairSync('ed25519')
    const raw = Buffer.from(ed.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url').toString('base64')
    vault.script(
      expect('POST', /\/keys\/m2msec\.x\.ed25519\.[0-9a-f]{16}$/, (req) => assert.equal(req.body?.['type'], 'ed25519')),
      expect('GET', /\/keys\/m2msec\.x\.ed25519\.[0-9a-f]{16}$/, undefined, readAsymmetric(raw, 'ed25519')),
    )
    const e = await se.generateKey({ algorithm: 'ED25519_SIGN', label: 'x' })
    vault.done()
    assert.deepEqual(e.publicKey, new Uint8Array(ed.publicKey.export({ format: 'der', type: 'spki' })))
  })

  it('a public key that is not of the algorithm deletes the new key and is ERR_SE_UNAVAILABLE', async () => {
    const wrongCurve = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({
      format: 'pem',
      type: 'spki',
    })
    vault.script(
      expect('POST', /\/keys\/m2msec\.x\.p256\./),
      expect('GET', /\/keys\/m2msec\.x\.p256\./, undefined, readAsymmetric(wrongCurve.toString(), 'ecdsa-p256')),
      expect('GET', /\/keys\/m2msec\.x\.p256\./, undefined, readAsymmetric(wrongCurve.toString(), 'ecdsa-p256')),
      expect('POST', /\/keys\/m2msec\.x\.p256\.[0-9a-f]{16}\/config$/, (req) =>
        assert.deepEqual(req.body, { deletion_allowed: true }),
      ),
      expect('DELETE', /\/keys\/m2msec\.x\.p256\.[0-9a-f]{16}$/),
    )
    await assert.rejects(se.generateKey({ algorithm: 'EC_P256_SIGN', label: 'x' }), { code: 'ERR_SE_UNAVAILABLE' })
    vault.done()
  })

  it('exportable keys are ERR_SE_NOT_SUPPORTED, without a request', async () => {
    await assert.rejects(se.generateKey({ algorithm: 'AES_256_GCM', label: 'x', exportable: true }), {
      code: 'ERR_SE_NOT_SUPPORTED',
    })
    await assert.rejects(
      se.importKey({ algorithm: 'HMAC_SHA256', label: 'x', exportable: true, material: new Uint8Array(32) }),
      {
        code: 'ERR_SE_NOT_SUPPORTED',
      },
    )
    vault.done()
  })

  it('encrypt: base64 plaintext, key_version 1, associated_data; vault:v1 nonce||ct||tag becomes SealedData', async () => {
    const nonce = randomBytes(12)
    const body = randomBytes(5)
    const tag = randomBytes(16)
    vault.script(
      expect(
        'POST',
        `/v1/transit/encrypt/${NAME('aes256gcm')}`,
        (req) =>
          assert.deepEqual(req.body, {
            plaintext: b64(enc('hello')),
            key_version: 1,
            associated_data: b64(enc('aad')),
          }),
        { body: { data: { ciphertext: `vault:v1:${b64(Buffer.concat([nonce, body, tag]))}`, key_version: 1 } } },
      ),
    )
    const sealed = await se.encrypt(AES, enc('hello'), enc('aad'))
    vault.done()
    assert.deepEqual(sealed, { iv: new Uint8Array(nonce), ciphertext: new Uint8Array(body), tag: new Uint8Array(tag) })
  })

  it('encrypt without AAD sends no associated_data (GCM: empty AAD authenticates nothing)', async () => {
    vault.script(
      expect(
        'POST',
        `/v1/transit/encrypt/${NAME('aes256gcm')}`,
        (req) => assert.equal('associated_data' in (req.body ?? {}), false),
        {
          body: { data: { ciphertext: `vault:v1:${b64(randomBytes(28))}` } },
        },
      ),
    )
    const sealed = await se.encrypt(AES, new Uint8Array(0), new Uint8Array(0))
    vault.done()
    assert.equal(sealed.ciphertext.length, 0)
  })

  it('encrypt: the documented response splits as nonce(12) || ciphertext || tag(16); a shorter one is ERR_SE_UNAVAILABLE', async () => {
    const path = `/v1/transit/encrypt/${NAME('aes256gcm')}`
    vault.script(
      expect('POST', path, undefined, { body: samples['encryptResponse'] }),
      expect('POST', path, undefined, { body: { data: { ciphertext: `vault:v1:${b64(randomBytes(27))}` } } }),
      expect('POST', path, undefined, { body: { data: { ciphertext: `vault:v2:${b64(randomBytes(40))}` } } }),
    )
    const documented = Buffer.from(
      String(samples['encryptResponse']?.data['ciphertext']).slice('vault:v1:'.length),
      'base64',
    )
    const sealed = await se.encrypt(AES, enc('the quick brown fox\n'), new Uint8Array(0))
    assert.deepEqual(Buffer.concat([sealed.iv, sealed.ciphertext, sealed.tag]), documented)
    assert.equal(sealed.iv.length, 12)
    assert.equal(sealed.tag.length, 16)
    await assert.rejects(se.encrypt(AES, enc('x'), new Uint8Array(0)), { code: 'ERR_SE_UNAVAILABLE' })
    // Another key version means the key was rotated outside m2msec.
    await assert.rejects(se.encrypt(AES, enc('x'), new Uint8Array(0)), { code: 'ERR_SE_UNAVAILABLE' })
    vault.done()
  })

  it('a warning that parameters were ignored (associated_data on Vault < 1.13) is ERR_SE_NOT_SUPPORTED', async () => {
    vault.script(
      expect('POST', `/v1/transit/encrypt/${NAME('aes256gcm')}`, undefined, {
        body: {
          data: { ciphertext: `vault:v1:${b64(randomBytes(30))}` },
          warnings: ['Endpoint ignored these unrecognized parameters: [associated_data]'],
        },
      }),
    )
    await assert.rejects(se.encrypt(AES, enc('x'), enc('aad')), { code: 'ERR_SE_NOT_SUPPORTED' })
    vault.done()
  })

  it('decrypt: vault:v1:base64(iv||ct||tag) and associated_data; the documented response decodes', async () => {
    const sealed = { iv: randomBytes(12), ciphertext: randomBytes(7), tag: randomBytes(16) }
    vault.script(
      expect(
        'POST',
        `/v1/transit/decrypt/${NAME('aes256gcm')}`,
        (req) =>
          assert.deepEqual(req.body, {
            ciphertext: `vault:v1:${b64(Buffer.concat([sealed.iv, sealed.ciphertext, sealed.tag]))}`,
            associated_data: b64(enc('aad')),
          }),
        { body: samples['decryptResponse'] },
      ),
    )
    const plaintext = await se.decrypt(AES, sealed, enc('aad'))
    vault.done()
    assert.deepEqual(plaintext, enc('the quick brown fox\n'))
  })

  it('decrypt errors: authentication failure is ERR_CIPHERTEXT_INVALID, an unknown key ERR_INVALID_ARGUMENT', async () => {
    const sealed = { iv: new Uint8Array(12), ciphertext: new Uint8Array(3), tag: new Uint8Array(16) }
    const path = `/v1/transit/decrypt/${NAME('aes256gcm')}`
    vault.script(
      expect('POST', path, undefined, { status: 400, body: { errors: ['cipher: message authentication failed'] } }),
      expect('POST', path, undefined, { status: 400, body: { errors: ['invalid ciphertext: unable to decrypt'] } }),
      expect('POST', path, undefined, { status: 400, body: { errors: ['encryption key not found'] } }),
    )
    await assert.rejects(se.decrypt(AES, sealed, enc('a')), { code: 'ERR_CIPHERTEXT_INVALID' })
    await assert.rejects(se.decrypt(AES, sealed, enc('a')), { code: 'ERR_CIPHERTEXT_INVALID' })
    await assert.rejects(se.decrypt(AES, sealed, enc('a')), { code: 'ERR_INVALID_ARGUMENT' })
    // Wrong IV / tag lengths never reach Vault.
    await assert.rejects(se.decrypt(AES, { ...sealed, iv: new Uint8Array(16) }, enc('a')), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    vault.done()
  })

  it('sign EC_P256_SIGN: sha2-256 + jws marshaling; base64url r||s; the asn1 doc sample is refused', async () => {
    const rs = randomBytes(64)
    const path = `/v1/transit/sign/${NAME('p256')}`
    vault.script(
      expect(
        'POST',
        path,
        (req) =>
          assert.deepEqual(req.body, {
            input: b64(enc('msg')),
            key_version: 1,
            hash_algorithm: 'sha2-256',
            marshaling_algorithm: 'jws',
          }),
        { body: { data: { signature: `vault:v1:${rs.toString('base64url')}`, key_version: 1 } } },
      ),
      expect('POST', path, undefined, { body: samples['signResponse'] }),
    )
    assert.deepEqual(await se.sign(P256, enc('msg')), new Uint8Array(rs))
    await assert.rejects(se.sign(P256, enc('msg')), { code: 'ERR_SE_UNAVAILABLE' })
    vault.done()
  })

  it('sign ED25519_SIGN: no hash or marshaling fields; the documented ed25519 signature decodes to 64 bytes', async () => {
    const documented = samples['signBatchResponseEd25519Derived']?.data['batch_results'] as Array<{ signature: string }>
    const signature = documented[0]?.signature ?? ''
    vault.script(
      expect(
        'POST',
        `/v1/transit/sign/${NAME('ed25519')}`,
        (req) => assert.deepEqual(req.body, { input: b64(enc('m')), key_version: 1 }),
        {
          body: { data: { signature } },
        },
      ),
    )
    const out = await se.sign(ED, enc('m'))
    vault.done()
    assert.deepEqual(out, new Uint8Array(Buffer.from(signature.slice('vault:v1:'.length), 'base64')))
    assert.equal(out.length, 64)
  })

  it('verify: jws vault:v1 signature; the documented {valid: true}; a wrong length is false without a request', async () => {
    const sig = randomBytes(64)
    const path = `/v1/transit/verify/${NAME('p256')}`
    vault.script(
      expect(
        'POST',
        path,
        (req) =>
          assert.deepEqual(req.body, {
            input: b64(enc('m')),
            signature: `vault:v1:${sig.toString('base64url')}`,
            hash_algorithm: 'sha2-256',
            marshaling_algorithm: 'jws',
          }),
        { body: samples['verifyResponse'] },
      ),
      expect('POST', path, undefined, { body: { data: { valid: false } } }),
      expect(
        'POST',
        `/v1/transit/verify/${NAME('ed25519')}`,
        (req) => assert.deepEqual(req.body, { input: b64(enc('m')), signature: `vault:v1:${sig.toString('base64')}` }),
        { body: { data: { valid: true } } },
      ),
    )
    assert.equal(await se.verify(P256, enc('m'), sig), true)
    assert.equal(await se.verify(P256, enc('m'), sig), false)
    assert.equal(await se.verify(ED, enc('m'), sig), true)
    assert.equal(await se.verify(P256, enc('m'), sig.subarray(0, 63)), false)
    vault.done()
  })

  it('mac: POST hmac/:name/sha2-256 with key_version 1; the vault:v1 HMAC is returned raw', async () => {
    const mac = randomBytes(32)
    vault.script(
      expect(
        'POST',
        `/v1/transit/hmac/${NAME('hmac')}/sha2-256`,
        (req) => assert.deepEqual(req.body, { input: b64(enc('d')), key_version: 1 }),
        {
          body: { data: { hmac: `vault:v1:${b64(mac)}` } },
        },
      ),
      // The documented HMAC sample is not 32 bytes long: refused.
      expect('POST', `/v1/transit/hmac/${NAME('hmac')}/sha2-256`, undefined, {
        body: { data: (samples['hmacBatchResponse']?.data['batch_results'] as unknown[])[0] },
      }),
    )
    assert.deepEqual(await se.mac(HMAC, enc('d')), new Uint8Array(mac))
    await assert.rejects(se.mac(HMAC, enc('d')), { code: 'ERR_SE_UNAVAILABLE' })
    vault.done()
  })

  it('importKey: ciphertext = RSA-OAEP-SHA256(ephemeral AES key) || AES-KWP(material); wrapping key read once', async () => {
    const pem = wrapping.publicKey.export({ format: 'pem', type: 'spki' }).toString()
    const unwrap = (ciphertext: string): Buffer => {
      const raw = Buffer.from(ciphertext, 'base64')
      const ephemeral = privateDecrypt(
        { key: wrapping.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        raw.subarray(0, 512),
      )
      assert.equal(ephemeral.length, 32)
      const d = createDecipheriv('id-aes256-wrap-pad', ephemeral, KWP_AIV)
      return Buffer.concat([d.update(raw.subarray(512)), d.final()])
    }
    const secret = randomBytes(48)
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const pkcs8 = ec.privateKey.export({ format: 'der', type: 'pkcs8' })
    vault.script(
      expect('GET', '/v1/transit/wrapping_key', undefined, { body: { data: { public_key: pem } } }),
      expect('POST', /^\/v1\/transit\/keys\/m2msec\.imp\.hmac\.[0-9a-f]{16}\/import$/, (req) => {
        assert.equal(req.body?.['type'], 'hmac')
        assert.equal(req.body?.['hash_function'], 'SHA256')
        assert.equal(req.body?.['exportable'], false)
        assert.deepEqual(unwrap(String(req.body?.['ciphertext'])), secret)
      }),
      // Second import: the wrapping key is cached.
      expect('POST', /^\/v1\/transit\/keys\/m2msec\.imp\.p256\.[0-9a-f]{16}\/import$/, (req) => {
        assert.equal(req.body?.['type'], 'ecdsa-p256')
        assert.deepEqual(unwrap(String(req.body?.['ciphertext'])), pkcs8)
      }),
      expect(
        'GET',
        /^\/v1\/transit\/keys\/m2msec\.imp\.p256\.[0-9a-f]{16}$/,
        undefined,
        readAsymmetric(ec.publicKey.export({ format: 'pem', type: 'spki' }).toString(), 'ecdsa-p256'),
      ),
    )
    const h = await se.importKey({ algorithm: 'HMAC_SHA256', label: 'imp', material: new Uint8Array(secret) })
    assert.match(h.ref, /^vault:transit\/m2msec\.imp\.hmac\.[0-9a-f]{16}$/)
    const e = await se.importKey({ algorithm: 'EC_P256_SIGN', label: 'imp', material: new Uint8Array(pkcs8) })
    vault.done()
    assert.deepEqual(e.publicKey, new Uint8Array(ec.publicKey.export({ format: 'der', type: 'spki' })))
  })

  it('importKey of malformed material is ERR_INVALID_ARGUMENT without a request', async () => {
    await assert.rejects(se.importKey({ algorithm: 'AES_256_GCM', label: 'x', material: new Uint8Array(31) }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    await assert.rejects(se.importKey({ algorithm: 'EC_P256_SIGN', label: 'x', material: new Uint8Array(64) }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    vault.done()
  })

  it('destroyKey: GET, config deletion_allowed, DELETE; a missing key and a foreign ref are no-ops', async () => {
    const path = `/v1/transit/keys/${NAME('hmac')}`
    vault.script(
      expect('GET', path, undefined, { body: samples['readKeyResponse'] }),
      expect('POST', `${path}/config`, (req) => assert.deepEqual(req.body, samples['updateKeyConfigPayload'])),
      expect('DELETE', path),
      expect('GET', path, undefined, { status: 404, body: { errors: [] } }),
    )
    await se.destroyKey(HMAC)
    await se.destroyKey(HMAC)
    await se.destroyKey({ ref: 'vault:other-mount/m2msec.x.hmac.0123456789abcdef', algorithm: 'HMAC_SHA256' })
    await se.destroyKey({ ref: 'awskms:arn:aws:kms:eu-west-1:1:key/x', algorithm: 'HMAC_SHA256' })
    vault.done()
  })

  it('ref checks: a handle whose algorithm differs from the ref type tag is ERR_KEY_TYPE_MISMATCH; bad refs ERR_INVALID_ARGUMENT', async () => {
    // transit's /hmac would MAC with any key type, so the tag check is what stops this.
    await assert.rejects(se.mac({ ref: AES.ref, algorithm: 'HMAC_SHA256' }, enc('x')), {
      code: 'ERR_KEY_TYPE_MISMATCH',
    })
    await assert.rejects(se.sign({ ref: ED.ref, algorithm: 'EC_P256_SIGN' }, enc('x')), {
      code: 'ERR_KEY_TYPE_MISMATCH',
    })
    for (const ref of [
      '',
      'garbage',
      `${HMAC.ref}x`,
      HMAC.ref.slice(0, -5),
      'vault:other/m2msec.x.hmac.0123456789abcdef',
    ]) {
      await assert.rejects(se.mac({ ref, algorithm: 'HMAC_SHA256' }, enc('x')), { code: 'ERR_INVALID_ARGUMENT' }, ref)
    }
    await assert.rejects(se.mac({ ref: HMAC.ref, algorithm: 'MILENAGE' }, enc('x')), { code: 'ERR_SE_NOT_SUPPORTED' })
    vault.done()
  })

  it('403 is ERR_SE_UNAVAILABLE without the token in the message; a rotated token file is re-read once', async () => {
    const path = `/v1/transit/hmac/${NAME('hmac')}/sha2-256`
    vault.script(expect('POST', path, undefined, { status: 403, body: { errors: ['permission denied'] } }))
    const err = await se.mac(HMAC, enc('x')).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e as Error & { code: string },
    )
    assert.equal(err.code, 'ERR_SE_UNAVAILABLE')
    assert.ok(!err.message.includes(TOKEN) && !JSON.stringify(err).includes(TOKEN))

    // A separate instance, so the main one keeps the first token.
    const rotating = await create('vault-rotating', { address: vault.url, tokenFile, namespace: NAMESPACE })
    const rotated = 'hvs.unit-test-token-B'
    await writeFile(tokenFile, rotated)
    vault.script(
      expect('POST', path, undefined, { status: 403, body: { errors: ['permission denied'] } }),
      expect('POST', path, undefined, { body: { data: { hmac: `vault:v1:${b64(new Uint8Array(32))}` } } }, rotated),
      // The new token stays in use.
      expect('POST', path, undefined, { body: { data: { hmac: `vault:v1:${b64(new Uint8Array(32))}` } } }, rotated),
    )
    assert.equal((await rotating.mac(HMAC, enc('x'))).length, 32)
    assert.equal((await rotating.mac(HMAC, enc('x'))).length, 32)
    await rotating.close()
    vault.done()
  })

  it('a sealed Vault (503) and other 5xx are ERR_SE_UNAVAILABLE', async () => {
    const path = `/v1/transit/hmac/${NAME('hmac')}/sha2-256`
    vault.script(
      expect('POST', path, undefined, { status: 503, body: { errors: ['Vault is sealed'] } }),
      expect('POST', path, undefined, { status: 500, body: { errors: ['internal error'] } }),
    )
    await assert.rejects(se.mac(HMAC, enc('x')), { code: 'ERR_SE_UNAVAILABLE', message: /sealed/ })
    await assert.rejects(se.mac(HMAC, enc('x')), { code: 'ERR_SE_UNAVAILABLE' })
    vault.done()
  })

  it('an unreachable address and a server that never answers are ERR_SE_UNAVAILABLE', async () => {
    const closedPort = await freePort()
    const unreachable = await create('vault-down', {
      address: `http://127.0.0.1:${closedPort}`,
      tokenFile,
      timeoutMs: 2000,
    })
    await assert.rejects(unreachable.mac(HMAC, enc('x')), { code: 'ERR_SE_UNAVAILABLE', message: /connection failed/ })
    await unreachable.close()

    const silent = createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const stalled = await create('vault-stalled', {
      address: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      tokenFile,
      timeoutMs: 300,
    })
    const started = Date.now()
    await assert.rejects(stalled.mac(HMAC, enc('x')), {
      code: 'ERR_SE_UNAVAILABLE',
      message: /no answer within 300 ms/,
    })
    assert.ok(Date.now() - started < 2000)
    await stalled.close()
    silent.closeAllConnections()
    await new Promise<void>((resolve) => silent.close(() => resolve()))
  })

  it('after close() every operation is ERR_SE_UNAVAILABLE, without a request', async () => {
    const closed = await create('vault-closed', { address: vault.url, tokenFile, namespace: NAMESPACE })
    await closed.close()
    await assert.rejects(closed.generateKey({ algorithm: 'AES_256_GCM', label: 'x' }), { code: 'ERR_SE_UNAVAILABLE' })
    await assert.rejects(closed.mac({ ref: 'x', algorithm: 'HMAC_SHA256' }, enc('x')), { code: 'ERR_SE_UNAVAILABLE' })
    await assert.rejects(closed.destroyKey(HMAC), { code: 'ERR_SE_UNAVAILABLE' })
    vault.done()
  })

  it('options: unknown or bad fields and an unreadable token file are ERR_CONFIG_INVALID', async () => {
    await assert.rejects(create('v', { address: 'not a url', tokenFile }), {
      code: 'ERR_CONFIG_INVALID',
      message: /address/,
    })
    await assert.rejects(create('v', { address: vault.url, tokenFile, mount: '../sys' }), {
      code: 'ERR_CONFIG_INVALID',
      message: /mount/,
    })
    await assert.rejects(create('v', { address: vault.url, tokenFile, tokn: 'x' }), { code: 'ERR_CONFIG_INVALID' })
    await assert.rejects(create('v', { address: vault.url, tokenFile: join(dir.path, 'missing') }), {
      code: 'ERR_CONFIG_INVALID',
    })
    await writeFile(join(dir.path, 'empty'), '\n')
    await assert.rejects(create('v', { address: vault.url, tokenFile: join(dir.path, 'empty') }), {
      code: 'ERR_CONFIG_INVALID',
    })
  })

  it('capabilities: what transit can do, nothing more', () => {
    assert.equal(se.type, 'vault')
    assert.equal(se.protectionLevel, 2)
    assert.deepEqual([...se.capabilities.algorithms].sort(), [
      'AES_256_GCM',
      'EC_P256_SIGN',
      'ED25519_SIGN',
      'HMAC_SHA256',
    ])
    assert.deepEqual([...se.capabilities.operations].sort(), [
      'decrypt',
      'destroy',
      'encrypt',
      'generate',
      'import',
      'mac',
      'sign',
      'verify',
    ])
  })
})

describe('AES key wrap with padding (RFC 5649 §6 test vectors)', () => {
  const kek = Buffer.from('5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8', 'hex')

  it('wraps the 20-byte and the 7-byte example keys (192-bit KEK via the same OpenSSL mode)', () => {
    // RFC 5649 uses a 192-bit KEK; byok.ts uses AES-256 (Vault's ephemeral key), same construction.
    const wrap = (data: Buffer): Buffer => {
      const c = createCipheriv('id-aes192-wrap-pad', kek, KWP_AIV)
      return Buffer.concat([c.update(data), c.final()])
    }
    assert.equal(
      wrap(Buffer.from('c37b7e6492584340bed12207808941155068f738', 'hex')).toString('hex'),
      '138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a',
    )
    assert.equal(wrap(Buffer.from('466f7250617369', 'hex')).toString('hex'), 'afbeb0f07dfbf5419200f2ccb50bb24f')
  })

  it('kwpWrap (AES-256) round-trips through OpenSSL unwrap and pads to 8 bytes', () => {
    const key = randomBytes(32)
    for (const length of [1, 7, 8, 32, 138]) {
      const data = randomBytes(length)
      const wrapped = kwpWrap(key, data)
      assert.equal(wrapped.length, Math.ceil(length / 8) * 8 + 8)
      const d = createDecipheriv('id-aes256-wrap-pad', key, KWP_AIV)
      assert.deepEqual(Buffer.concat([d.update(wrapped), d.final()]), data)
    }
  })
})
