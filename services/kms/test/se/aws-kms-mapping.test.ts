/**
 * Unit tests of the aws-kms SE's request/response mapping against the documented KMS JSON 1.1
 * API (fixtures/aws/kms-api-samples.json, the examples of the KMS API Reference).
 *
 * A scripted node:http server on 127.0.0.1 stands in for KMS inside this file only. For every
 * request it checks the protocol (POST /, Content-Type, X-Amz-Target), recomputes the SigV4
 * signature from what it received, then asserts the operation's body and answers with a
 * documented output shape. What real KMS (LocalStack) does is checked by aws-kms.test.ts.
 */
import assert from 'node:assert/strict'
import type { KeyObject } from 'node:crypto'
import {
  constants,
  createHash,
  generateKeyPair,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
  sign,
  verify,
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
import { createCredentialSource } from '../../src/se/aws-kms/credentials.ts'
import { derToP1363, p1363ToDer } from '../../src/se/aws-kms/ecdsa-der.ts'
import { create } from '../../src/se/aws-kms/index.ts'
import { signSigV4 } from '../../src/se/aws-kms/sigv4.ts'

type Sample = { input: Record<string, unknown>; output: Record<string, unknown> }
const samples = loadJson<Record<string, Sample>>(new URL('./fixtures/aws/kms-api-samples.json', import.meta.url))
const sample = (name: string): Sample => {
  const s = samples[name]
  assert.ok(s !== undefined, name)
  return structuredClone(s)
}

const REGION = 'eu-west-1'
const CREDS = { accessKeyId: 'AKIDUNITTEST', secretAccessKey: 'unit/test/secret/key/0123456789abcdefghij' }
const ARN = 'arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'

interface Seen {
  readonly operation: string
  readonly headers: IncomingHttpHeaders
  readonly body: Record<string, unknown>
}
interface Reply {
  readonly status?: number
  readonly body?: unknown
  readonly raw?: string
}
type Step = (req: Seen) => Reply

/** Recomputes the request's SigV4 signature from what arrived (headers as signed, raw body). */
function checkSignature(
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  body: string,
  creds: typeof CREDS,
): void {
  const auth = String(headers['authorization'] ?? '')
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/kms\/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$/.exec(
      auth,
    )
  assert.ok(m, `authorization header shape: ${auth.slice(0, 40)}`)
  assert.equal(m[1], creds.accessKeyId)
  assert.equal(m[3], REGION)
  const signed = (m[4] ?? '').split(';')
  const expected = ['content-type', 'host', 'x-amz-date', 'x-amz-target']
  if (headers['x-amz-security-token'] !== undefined) expected.push('x-amz-security-token')
  assert.deepEqual(signed, expected.sort())
  const amzDate = String(headers['x-amz-date'])
  assert.equal(amzDate.slice(0, 8), m[2])
  const date = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  )
  const subset = Object.fromEntries(signed.map((h) => [h, String(headers[h])]))
  const again = signSigV4(
    { method, url: new URL(path, `http://${String(headers['host'])}`), headers: subset, body },
    {
      region: REGION,
      service: 'kms',
      credentials: {
        ...creds,
        ...(headers['x-amz-security-token'] ? { sessionToken: String(headers['x-amz-security-token']) } : {}),
      },
      date,
    },
  )
  assert.equal(auth, again['authorization'], 'the signature covers exactly what was sent')
}

/** A KMS stand-in that answers each request with the next scripted step. */
async function startScripted(): Promise<{
  url: string
  creds: typeof CREDS
  script(...steps: Step[]): void
  reset(): void
  done(): void
  close(): Promise<void>
}> {
  const steps: Step[] = []
  const failures: unknown[] = []
  const state = { creds: { ...CREDS } }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      let reply: Reply
      try {
        assert.equal(req.method, 'POST')
        assert.equal(req.url, '/')
        assert.equal(req.headers['content-type'], 'application/x-amz-json-1.1')
        const target = String(req.headers['x-amz-target'] ?? '')
        assert.match(target, /^TrentService\.[A-Za-z]+$/)
        checkSignature('POST', '/', req.headers, text, state.creds)
        const step = steps.shift()
        if (step === undefined) throw new Error(`unscripted request ${target}`)
        reply = step({
          operation: target.slice('TrentService.'.length),
          headers: req.headers,
          body: JSON.parse(text) as Record<string, unknown>,
        })
      } catch (err) {
        failures.push(err)
        reply = { status: 500, body: { __type: 'KMSInternalException', message: 'scripted step failed' } }
      }
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/x-amz-json-1.1' })
      res.end(reply.raw ?? JSON.stringify(reply.body ?? {}))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get creds() {
      return state.creds
    },
    set creds(c) {
      state.creds = c
    },
    script: (...s) => void steps.push(...s),
    reset: () => {
      steps.length = 0
      failures.length = 0
      state.creds = { ...CREDS }
    },
    done: () => {
      if (failures.length > 0) throw failures[0]
      assert.equal(steps.length, 0, 'every scripted request was made')
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

function op(
  operation: string,
  check: (body: Record<string, unknown>) => void = () => undefined,
  reply: Reply = {},
): Step {
  return (req) => {
    assert.equal(req.operation, operation)
    check(req.body)
    return reply
  }
}
const fail = (type: string, status = 400, message = 'scripted'): Reply => ({ status, body: { __type: type, message } })

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
const enc = (text: string): Uint8Array => new TextEncoder().encode(text)
const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest()
const REF = `awskms:${ARN}`
const HMAC: SeKeyHandle = { ref: REF, algorithm: 'HMAC_SHA256' }
const P256: SeKeyHandle = { ref: REF, algorithm: 'EC_P256_SIGN' }
const AES: SeKeyHandle = { ref: REF, algorithm: 'AES_256_GCM' }

describe('aws-kms SE: request/response mapping (scripted KMS on 127.0.0.1)', () => {
  let kms: Awaited<ReturnType<typeof startScripted>>
  let dir: TmpDir
  let credentialsFile: string
  let se: SecureEnvironment
  let withAes: SecureEnvironment
  let wrapping: { publicKey: KeyObject; privateKey: KeyObject }
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })

  const writeCredentials = (c: { accessKeyId: string; secretAccessKey: string }, extra = ''): Promise<void> =>
    writeFile(
      credentialsFile,
      `# test profile\n[other]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n[m2msec]\naws_access_key_id = ${c.accessKeyId}\naws_secret_access_key = ${c.secretAccessKey}\n${extra}`,
    )

  before(async () => {
    kms = await startScripted()
    dir = await tmpDir('aws-kms-mapping')
    credentialsFile = join(dir.path, 'credentials')
    await writeCredentials(CREDS)
    const options = { region: REGION, endpoint: kms.url, credentialsFile, profile: 'm2msec', timeoutMs: 2000 }
    se = await create('aws-unit', options)
    withAes = await create('aws-unit-aes', { ...options, kmsCiphertext: true })
    wrapping = await new Promise((resolve, reject) =>
      generateKeyPair('rsa', { modulusLength: 4096 }, (err, publicKey, privateKey) =>
        err ? reject(err) : resolve({ publicKey, privateKey }),
      ),
    )
  })
  after(async () => {
    await se.close()
    await withAes.close()
    await kms.close()
    await dir.cleanup()
  })
  beforeEach(() => kms.reset())

  it('capabilities: HMAC and P-256 signing; AES_256_GCM only with kmsCiphertext', async () => {
    assert.equal(se.type, 'aws-kms')
    assert.equal(se.protectionLevel, 3)
    assert.deepEqual(se.capabilities.algorithms, ['HMAC_SHA256', 'EC_P256_SIGN'])
    assert.ok(!se.capabilities.operations.includes('encrypt'))
    assert.ok(withAes.capabilities.algorithms.includes('AES_256_GCM'))
    assert.ok(withAes.capabilities.operations.includes('decrypt'))
    for (const algorithm of ['AES_256_GCM', 'ED25519_SIGN', 'EC_P256_ECDH', 'MILENAGE'] as const) {
      await assert.rejects(se.generateKey({ algorithm, label: 'x' }), { code: 'ERR_SE_NOT_SUPPORTED' })
    }
    await assert.rejects(se.encrypt(AES, enc('x'), enc('')), { code: 'ERR_SE_NOT_SUPPORTED' })
    await assert.rejects(se.generateKey({ algorithm: 'HMAC_SHA256', label: 'x', exportable: true }), {
      code: 'ERR_SE_NOT_SUPPORTED',
    })
    kms.done()
  })

  it('generateKey HMAC_SHA256: CreateKey HMAC_256 / GENERATE_VERIFY_MAC; the ref is awskms:<Arn>', async () => {
    kms.script(
      op(
        'CreateKey',
        (b) =>
          assert.deepEqual(b, { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', Description: 'm2msec t1/k1/1' }),
        {
          body: sample('CreateKey.HMAC').output,
        },
      ),
    )
    const key = await se.generateKey({ algorithm: 'HMAC_SHA256', label: 't1/k1/1' })
    kms.done()
    assert.deepEqual(key, { ref: REF })
  })

  it('generateKey EC_P256_SIGN: CreateKey ECC_NIST_P256 / SIGN_VERIFY, then GetPublicKey (DER SPKI)', async () => {
    const getPublicKey = sample('GetPublicKey').output
    kms.script(
      op(
        'CreateKey',
        (b) => assert.deepEqual(b, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'm2msec x' }),
        {
          body: sample('CreateKey.ECC').output,
        },
      ),
      op('GetPublicKey', (b) => assert.deepEqual(b, { KeyId: ARN }), {
        body: {
          ...getPublicKey,
          KeyUsage: 'SIGN_VERIFY',
          KeySpec: 'ECC_NIST_P256',
          PublicKey: b64(ec.publicKey.export({ format: 'der', type: 'spki' })),
        },
      }),
    )
    const key = await se.generateKey({ algorithm: 'EC_P256_SIGN', label: 'x' })
    kms.done()
    assert.deepEqual(key.publicKey, new Uint8Array(ec.publicKey.export({ format: 'der', type: 'spki' })))
  })

  it('a GetPublicKey answer that is not P-256 schedules the new key for deletion and is ERR_SE_UNAVAILABLE', async () => {
    const rsa = wrapping.publicKey.export({ format: 'der', type: 'spki' })
    kms.script(
      op('CreateKey', undefined, { body: sample('CreateKey.ECC').output }),
      op('GetPublicKey', undefined, { body: { KeyId: ARN, PublicKey: b64(rsa) } }),
      op('ScheduleKeyDeletion', (b) => assert.deepEqual(b, { KeyId: ARN, PendingWindowInDays: 7 }), {
        body: sample('ScheduleKeyDeletion').output,
      }),
    )
    await assert.rejects(se.generateKey({ algorithm: 'EC_P256_SIGN', label: 'x' }), { code: 'ERR_SE_UNAVAILABLE' })
    kms.done()
  })

  it('sign: Sign DIGEST (SHA-256 of the message) with ECDSA_SHA_256; the DER signature comes back as r||s', async () => {
    const message = new Uint8Array(randomBytes(5000)) // beyond RAW's 4096-byte limit
    kms.script(
      op(
        'Sign',
        (b) =>
          assert.deepEqual(b, {
            KeyId: ARN,
            Message: b64(sha256(message)),
            MessageType: 'DIGEST',
            SigningAlgorithm: 'ECDSA_SHA_256',
          }),
        {
          body: {
            ...sample('Sign').output,
            SigningAlgorithm: 'ECDSA_SHA_256',
            Signature: b64(sign('sha256', message, ec.privateKey)),
          },
        },
      ),
    )
    const signature = await se.sign(P256, message)
    kms.done()
    assert.equal(signature.length, 64)
    assert.ok(verify('sha256', message, { key: ec.publicKey, dsaEncoding: 'ieee-p1363' }, signature))
  })

  it('verify: r||s goes out as DER; SignatureValid true, KMSInvalidSignatureException false; wrong length is false locally', async () => {
    const message = enc('oneM2M')
    const p1363 = sign('sha256', message, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' })
    kms.script(
      op(
        'Verify',
        (b) => {
          assert.equal(b['MessageType'], 'DIGEST')
          assert.equal(b['SigningAlgorithm'], 'ECDSA_SHA_256')
          assert.equal(b['Message'], b64(sha256(message)))
          // What KMS receives is a DER signature node:crypto accepts.
          assert.ok(verify('sha256', message, ec.publicKey, Buffer.from(String(b['Signature']), 'base64')))
        },
        { body: sample('Verify').output },
      ),
      op('Verify', undefined, fail('KMSInvalidSignatureException')),
      op('Verify', undefined, fail('com.amazonaws.kms#KMSInvalidSignatureException')),
    )
    assert.equal(await se.verify(P256, message, p1363), true)
    assert.equal(await se.verify(P256, message, p1363), false)
    assert.equal(await se.verify(P256, message, p1363), false)
    assert.equal(await se.verify(P256, message, p1363.subarray(0, 63)), false)
    kms.done()
  })

  it('mac: GenerateMac HMAC_SHA_256; the 32-byte Mac is returned; 0 or more than 4096 bytes is ERR_INVALID_ARGUMENT', async () => {
    const mac = randomBytes(32)
    kms.script(
      op(
        'GenerateMac',
        (b) => assert.deepEqual(b, { KeyId: ARN, Message: b64(enc('Hello World')), MacAlgorithm: 'HMAC_SHA_256' }),
        {
          body: { ...sample('GenerateMac').output, MacAlgorithm: 'HMAC_SHA_256', Mac: b64(mac) },
        },
      ),
    )
    assert.deepEqual(await se.mac(HMAC, enc('Hello World')), new Uint8Array(mac))
    await assert.rejects(se.mac(HMAC, new Uint8Array(0)), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(se.mac(HMAC, new Uint8Array(4097)), { code: 'ERR_INVALID_ARGUMENT' })
    kms.done()
  })

  it('importKey: CreateKey EXTERNAL, GetParametersForImport RSAES_OAEP_SHA_256 / RSA_4096, ImportKeyMaterial', async () => {
    const secret = randomBytes(32)
    const token = b64(randomBytes(64))
    kms.script(
      op(
        'CreateKey',
        (b) =>
          assert.deepEqual(b, {
            KeySpec: 'HMAC_256',
            KeyUsage: 'GENERATE_VERIFY_MAC',
            Description: 'm2msec imp',
            Origin: 'EXTERNAL',
          }),
        { body: sample('CreateKey.EXTERNAL').output },
      ),
      op(
        'GetParametersForImport',
        (b) =>
          assert.deepEqual(b, { KeyId: ARN, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_4096' }),
        {
          body: {
            ...sample('GetParametersForImport').output,
            ImportToken: token,
            PublicKey: b64(wrapping.publicKey.export({ format: 'der', type: 'spki' })),
          },
        },
      ),
      op('ImportKeyMaterial', (b) => {
        assert.equal(b['KeyId'], ARN)
        assert.equal(b['ImportToken'], token)
        assert.equal(b['ExpirationModel'], 'KEY_MATERIAL_DOES_NOT_EXPIRE')
        const material = privateDecrypt(
          { key: wrapping.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
          Buffer.from(String(b['EncryptedKeyMaterial']), 'base64'),
        )
        assert.deepEqual(material, secret)
      }),
    )
    const key = await se.importKey({ algorithm: 'HMAC_SHA256', label: 'imp', material: new Uint8Array(secret) })
    kms.done()
    assert.deepEqual(key, { ref: REF })
  })

  it('a failed import schedules the half-made key for deletion; malformed material never reaches KMS', async () => {
    kms.script(
      op('CreateKey', undefined, { body: sample('CreateKey.EXTERNAL').output }),
      op('GetParametersForImport', undefined, fail('ValidationException', 400, 'bad wrapping key spec')),
      op('ScheduleKeyDeletion', (b) => assert.deepEqual(b, { KeyId: ARN, PendingWindowInDays: 7 })),
    )
    await assert.rejects(se.importKey({ algorithm: 'HMAC_SHA256', label: 'x', material: new Uint8Array(32) }), {
      code: 'ERR_INVALID_ARGUMENT',
      message: /ValidationException: bad wrapping key spec/,
    })
    await assert.rejects(se.importKey({ algorithm: 'HMAC_SHA256', label: 'x', material: new Uint8Array(16) }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    kms.done()
  })

  it('destroyKey: ScheduleKeyDeletion; NotFound, already pending deletion and foreign refs are no-ops', async () => {
    kms.script(
      op('ScheduleKeyDeletion', (b) => assert.deepEqual(b, { KeyId: ARN, PendingWindowInDays: 7 }), {
        body: sample('ScheduleKeyDeletion').output,
      }),
      op('ScheduleKeyDeletion', undefined, fail('NotFoundException')),
      op('ScheduleKeyDeletion', undefined, fail('KMSInvalidStateException')),
      op('ScheduleKeyDeletion', undefined, fail('AccessDeniedException')),
    )
    await se.destroyKey(HMAC)
    await se.destroyKey(HMAC)
    await se.destroyKey(HMAC)
    await assert.rejects(se.destroyKey(HMAC), { code: 'ERR_SE_UNAVAILABLE' })
    await se.destroyKey({ ref: 'vault:transit/m2msec.x.hmac.0123456789abcdef', algorithm: 'HMAC_SHA256' })
    kms.done()
  })

  it('error mapping: __type (with or without namespace) and status decide the code', async () => {
    const cases: Array<[Reply, string]> = [
      [fail('NotFoundException'), 'ERR_INVALID_ARGUMENT'],
      [fail('com.amazonaws.kms#NotFoundException'), 'ERR_INVALID_ARGUMENT'],
      [fail('DisabledException'), 'ERR_INVALID_ARGUMENT'],
      [fail('KMSInvalidStateException'), 'ERR_INVALID_ARGUMENT'],
      [fail('InvalidKeyUsageException'), 'ERR_KEY_TYPE_MISMATCH'],
      [fail('UnsupportedOperationException'), 'ERR_SE_NOT_SUPPORTED'],
      [fail('ThrottlingException'), 'ERR_SE_UNAVAILABLE'],
      [fail('KMSInternalException', 500), 'ERR_SE_UNAVAILABLE'],
      [fail('DependencyTimeoutException', 503), 'ERR_SE_UNAVAILABLE'],
      [{ status: 502, raw: '<html>bad gateway</html>' }, 'ERR_SE_UNAVAILABLE'],
      [{ status: 200, raw: 'not json' }, 'ERR_SE_UNAVAILABLE'],
      [{ status: 200, body: { KeyId: ARN } }, 'ERR_SE_UNAVAILABLE'],
    ]
    for (const [reply] of cases) kms.script(op('GenerateMac', undefined, reply))
    for (const [reply, code] of cases) await assert.rejects(se.mac(HMAC, enc('x')), { code }, JSON.stringify(reply))
    kms.done()
  })

  it('refused credentials are ERR_SE_UNAVAILABLE without secrets; a rotated credentials file is re-read once', async () => {
    kms.script(
      op(
        'GenerateMac',
        undefined,
        fail('UnrecognizedClientException', 400, 'The security token included in the request is invalid.'),
      ),
    )
    const err = await se.mac(HMAC, enc('x')).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e as Error & { code: string },
    )
    assert.equal(err.code, 'ERR_SE_UNAVAILABLE')
    assert.ok(!JSON.stringify({ m: err.message, d: err }).includes(CREDS.secretAccessKey))

    const rotating = await create('aws-rotating', {
      region: REGION,
      endpoint: kms.url,
      credentialsFile,
      profile: 'm2msec',
    })
    const next = { accessKeyId: 'AKIDROTATED', secretAccessKey: 'rotated/secret/key/0123456789abcdefghijkl' }
    await writeCredentials(next, 'aws_session_token = rotated-session-token\n')
    kms.script(
      () => {
        // The first request was signed (and checked) with the old credentials; the retry must
        // be signed with the new ones.
        kms.creds = next
        return fail('ExpiredTokenException', 400, 'The security token included in the request is expired')
      },
      (req) => {
        assert.equal(req.headers['x-amz-security-token'], 'rotated-session-token')
        return { body: { KeyId: ARN, Mac: b64(new Uint8Array(32)), MacAlgorithm: 'HMAC_SHA_256' } }
      },
    )
    assert.equal((await rotating.mac(HMAC, enc('x'))).length, 32)
    await rotating.close()
    await writeCredentials(CREDS)
    kms.done()
  })

  it('kmsCiphertext: Encrypt/Decrypt SYMMETRIC_DEFAULT, AAD as the SHA-256 encryption context, the blob in ciphertext', async () => {
    const aad = enc('tenant-a/key-1/v1')
    const context = { 'm2msec-aad-sha256': sha256(aad).toString('base64url') }
    const blob = randomBytes(180)
    kms.script(
      op(
        'Encrypt',
        (b) =>
          assert.deepEqual(b, {
            KeyId: ARN,
            Plaintext: b64(enc('hi')),
            EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
            EncryptionContext: context,
          }),
        {
          body: { ...sample('Encrypt').output, CiphertextBlob: b64(blob) },
        },
      ),
      op('Encrypt', (b) => assert.equal('EncryptionContext' in b, false), { body: { CiphertextBlob: b64(blob) } }),
      op(
        'Decrypt',
        (b) =>
          assert.deepEqual(b, {
            KeyId: ARN,
            CiphertextBlob: b64(blob),
            EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
            EncryptionContext: context,
          }),
        {
          body: { ...sample('Decrypt').output, Plaintext: b64(enc('hi')) },
        },
      ),
      op('Decrypt', undefined, fail('InvalidCiphertextException')),
      op('Decrypt', undefined, fail('IncorrectKeyException')),
    )
    const sealed = await withAes.encrypt(AES, enc('hi'), aad)
    assert.deepEqual(sealed, { iv: new Uint8Array(0), ciphertext: new Uint8Array(blob), tag: new Uint8Array(0) })
    await withAes.encrypt(AES, enc('hi'), new Uint8Array(0))
    assert.deepEqual(await withAes.decrypt(AES, sealed, aad), enc('hi'))
    await assert.rejects(withAes.decrypt(AES, sealed, aad), { code: 'ERR_CIPHERTEXT_INVALID' })
    await assert.rejects(withAes.decrypt(AES, sealed, aad), { code: 'ERR_CIPHERTEXT_INVALID' })
    // Local checks: the blob-only shape, and KMS's 1..4096-byte plaintext limit.
    await assert.rejects(withAes.decrypt(AES, { ...sealed, iv: new Uint8Array(12) }, aad), {
      code: 'ERR_INVALID_ARGUMENT',
    })
    await assert.rejects(withAes.encrypt(AES, new Uint8Array(4097), aad), { code: 'ERR_INVALID_ARGUMENT' })
    await assert.rejects(withAes.encrypt(AES, new Uint8Array(0), aad), { code: 'ERR_INVALID_ARGUMENT' })
    kms.done()
  })

  it('refs: malformed refs are ERR_INVALID_ARGUMENT, unknown algorithms ERR_SE_NOT_SUPPORTED, without a request', async () => {
    for (const ref of ['', 'garbage', 'awskms:', 'x'.repeat(10_000)]) {
      await assert.rejects(
        se.mac({ ref, algorithm: 'HMAC_SHA256' }, enc('x')),
        { code: 'ERR_INVALID_ARGUMENT' },
        ref.slice(0, 10),
      )
    }
    await assert.rejects(se.sign({ ref: REF, algorithm: 'HMAC_SHA256' }, enc('x')), { code: 'ERR_KEY_TYPE_MISMATCH' })
    kms.done()
  })

  it('an unreachable endpoint, a server that never answers and a closed SE are ERR_SE_UNAVAILABLE', async () => {
    const down = await create('aws-down', {
      region: REGION,
      endpoint: `http://127.0.0.1:${await freePort()}`,
      credentialsFile,
      profile: 'm2msec',
    })
    await assert.rejects(down.mac(HMAC, enc('x')), { code: 'ERR_SE_UNAVAILABLE', message: /connection failed/ })
    await down.close()

    const silent = createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const stalled = await create('aws-stalled', {
      region: REGION,
      endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      credentialsFile,
      profile: 'm2msec',
      timeoutMs: 300,
    })
    await assert.rejects(stalled.mac(HMAC, enc('x')), {
      code: 'ERR_SE_UNAVAILABLE',
      message: /no answer within 300 ms/,
    })
    await stalled.close()
    silent.closeAllConnections()
    await new Promise<void>((resolve) => silent.close(() => resolve()))

    const closed = await create('aws-closed', { region: REGION, endpoint: kms.url, credentialsFile, profile: 'm2msec' })
    await closed.close()
    await assert.rejects(closed.generateKey({ algorithm: 'HMAC_SHA256', label: 'x' }), { code: 'ERR_SE_UNAVAILABLE' })
    await assert.rejects(closed.mac({ ref: 'x', algorithm: 'HMAC_SHA256' }, enc('x')), { code: 'ERR_SE_UNAVAILABLE' })
    kms.done()
  })

  it('options and credentials: bad fields, no region, no credentials are ERR_CONFIG_INVALID', async () => {
    await assert.rejects(create('a', { region: REGION, endpoint: 'ftp://x', credentialsFile }), {
      code: 'ERR_CONFIG_INVALID',
      message: /endpoint/,
    })
    await assert.rejects(create('a', { region: REGION, credentialsFile, pendingWindowInDays: 3 }), {
      code: 'ERR_CONFIG_INVALID',
      message: /pendingWindowInDays/,
    })
    await assert.rejects(create('a', { region: REGION, credentialsFile, regoin: 'x' }), { code: 'ERR_CONFIG_INVALID' })
    await assert.rejects(create('a', { region: REGION, credentialsFile, profile: 'absent' }), {
      code: 'ERR_CONFIG_INVALID',
      message: /absent/,
    })
    await assert.rejects(create('a', { region: REGION, credentialsFile: join(dir.path, 'missing') }), {
      code: 'ERR_CONFIG_INVALID',
    })
    const saved = { AWS_REGION: process.env['AWS_REGION'], AWS_DEFAULT_REGION: process.env['AWS_DEFAULT_REGION'] }
    delete process.env['AWS_REGION']
    delete process.env['AWS_DEFAULT_REGION']
    try {
      await assert.rejects(create('a', { credentialsFile }), { code: 'ERR_CONFIG_INVALID', message: /region/ })
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v
    }
    // Without a file: the standard environment variables.
    const fromEnv = await createCredentialSource({
      profile: 'default',
      env: { AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'env-secret', AWS_SESSION_TOKEN: 'env-token' },
    })
    assert.deepEqual(await fromEnv.get(), {
      accessKeyId: 'AKIDENV',
      secretAccessKey: 'env-secret',
      sessionToken: 'env-token',
    })
    await assert.rejects(createCredentialSource({ profile: 'default', env: { AWS_ACCESS_KEY_ID: 'AKIDENV' } }), {
      code: 'ERR_CONFIG_INVALID',
    })
  })
})

describe('ECDSA signature encodings (DER <-> IEEE P1363)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })

  it('round-trips 200 node:crypto signatures, including r or s with a leading zero or the high bit set', () => {
    let highBit = 0
    for (let i = 0; i < 200; i++) {
      const message = randomBytes(16)
      const der = sign('sha256', message, privateKey)
      const p1363 = derToP1363(der, 32)
      assert.ok(p1363 !== undefined)
      assert.ok(verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p1363))
      assert.deepEqual(Buffer.from(p1363ToDer(p1363)), der)
      if (((p1363[0] ?? 0) & 0x80) !== 0) highBit++
    }
    assert.ok(highBit > 0, 'some r had its high bit set')
  })

  it('encodes small integers minimally', () => {
    const sig = new Uint8Array(64)
    sig[31] = 1
    sig[63] = 0x80
    assert.deepEqual(Buffer.from(p1363ToDer(sig)).toString('hex'), '3007020101020200' + '80')
    assert.deepEqual(derToP1363(p1363ToDer(sig), 32), sig)
  })

  it('rejects malformed DER', () => {
    const good = sign('sha256', Buffer.from('x'), privateKey)
    for (const bad of [
      new Uint8Array(0),
      good.subarray(0, good.length - 1),
      Buffer.concat([good, Buffer.from([0])]),
      Buffer.from('3006020100020100', 'hex').subarray(0, 7),
      Buffer.from('30060201ff020101', 'hex'), // negative r
      Buffer.from('30260221' + '7f'.repeat(33) + '020101', 'hex'), // r longer than 32 bytes
    ]) {
      assert.equal(derToP1363(bad, 32), undefined, Buffer.from(bad).toString('hex'))
    }
  })
})
