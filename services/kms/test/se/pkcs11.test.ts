/**
 * The pkcs11 SE against the conformance suite on a real SoftHSM2 token (started by the
 * testkit in a temp dir), then checks of what the token holds, read back with OpenSC's
 * pkcs11-tool: every secret and private key is sensitive, and non-exportable keys are not
 * extractable, with least-privilege usages.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { generateKeyPairSync, verify as nodeVerify, createPublicKey } from 'node:crypto'
import { promisify } from 'node:util'
import { Worker } from 'node:worker_threads'
import { after, before, describe, it } from 'node:test'
import pkcs11js from 'pkcs11js'
import type { SoftHsmToken } from '@m2msec/testkit'
import { startSoftHsm } from '@m2msec/testkit'
import { mapError } from '../../src/se/pkcs11/errors.ts'
import { create } from '../../src/se/pkcs11/index.ts'
import { libraryState } from '../../src/se/pkcs11/library.ts'
import { runSecureEnvironmentSuite } from './conformance.ts'

const run = promisify(execFile)

type Se = Awaited<ReturnType<typeof create>>

let token: SoftHsmToken
before(async () => {
  token = await startSoftHsm({ label: 'm2msec-se-conformance' })
})
after(async () => {
  await token?.stop()
})

const makeSe = () =>
  create('softhsm', {
    modulePath: token.modulePath,
    tokenLabel: token.tokenLabel,
    pinFile: token.pinFile,
    protectionLevel: 1,
  })

// SoftHSM 2.6.1 cannot wrap Ed25519 private keys (CKR_KEY_NOT_WRAPPABLE), so they cannot be exportable.
runSecureEnvironmentSuite('pkcs11 (SoftHSM2)', makeSe, { notExportable: ['ED25519_SIGN'] })

describe('pkcs11 SE: configuration', () => {
  it('publishes the configured protection level, default 3', async () => {
    const se = await create('hsm', { modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin })
    try {
      assert.equal(se.protectionLevel, 3)
      assert.equal(se.type, 'pkcs11')
      assert.ok(!se.capabilities.operations.includes('derive-hkdf'), 'SoftHSM has no CKM_HKDF_DERIVE')
    } finally {
      await se.close()
    }
  })

  it('a wrong PIN is ERR_CONFIG_INVALID; an unknown token label is ERR_SE_UNAVAILABLE', async () => {
    await assert.rejects(
      create('hsm', { modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: 'wrong-pin' }),
      {
        code: 'ERR_CONFIG_INVALID',
      },
    )
    await assert.rejects(create('hsm', { modulePath: token.modulePath, tokenLabel: 'no-such-token', pin: token.pin }), {
      code: 'ERR_SE_UNAVAILABLE',
    })
    await assert.rejects(
      create('hsm', { modulePath: '/nonexistent/libpkcs11.so', tokenLabel: token.tokenLabel, pin: token.pin }),
      {
        code: 'ERR_CONFIG_INVALID',
      },
    )
    await assert.rejects(create('hsm', { modulePath: token.modulePath, tokenLabel: token.tokenLabel }), {
      code: 'ERR_CONFIG_INVALID',
    })
  })
})

describe('pkcs11 SE: MILENAGE refs', () => {
  it('the sealed OPc is bound to its K: swapping it between subscribers fails; the OPc KEK cannot be named', async () => {
    const se = await makeSe()
    try {
      const a = await se.importKey({ algorithm: 'MILENAGE', label: 'sub-a', material: new Uint8Array(32).fill(1) })
      const b = await se.importKey({ algorithm: 'MILENAGE', label: 'sub-b', material: new Uint8Array(32).fill(2) })
      const [prefix, kA, kekA, sealedA] = a.ref.split('.') as [string, string, string, string]
      const [, , , sealedB] = b.ref.split('.') as [string, string, string, string]
      assert.equal(prefix, 'p11')
      const input = { rand: new Uint8Array(16), sqn: new Uint8Array(6), amf: new Uint8Array(2) }
      await se.milenage({ ref: a.ref, algorithm: 'MILENAGE' }, input)
      await assert.rejects(se.milenage({ ref: `p11.${kA}.${kekA}.${sealedB}`, algorithm: 'MILENAGE' }, input), {
        code: 'ERR_INVALID_ARGUMENT',
      })
      await assert.rejects(se.milenage({ ref: `p11.${kA}`, algorithm: 'MILENAGE' }, input), {
        code: 'ERR_INVALID_ARGUMENT',
      })
      // K alone is an AES-128 token key, but not usable as any other key type.
      await assert.rejects(
        se.encrypt({ ref: `p11.${kA}`, algorithm: 'AES_256_GCM' }, new Uint8Array(1), new Uint8Array(0)),
        {
          code: 'ERR_KEY_TYPE_MISMATCH',
        },
      )
      // The KEK's own id is longer than any key id, so no ref can reach it.
      for (const ref of [`p11.${kekA}`, `p11.${kekA.slice(0, 32)}`]) {
        await assert.rejects(
          se.decrypt(
            { ref, algorithm: 'AES_256_GCM' },
            { iv: new Uint8Array(12), ciphertext: new Uint8Array(16), tag: new Uint8Array(16) },
            new Uint8Array(0),
          ),
          { code: 'ERR_INVALID_ARGUMENT' },
        )
      }
      assert.ok(sealedA.length > 0)
    } finally {
      await se.close()
    }
  })
})

describe('pkcs11 SE: several workers', () => {
  it('spreads 200 parallel signatures over 3 sessions; a destroy reaches every worker', async () => {
    const se = await create('hsm', {
      modulePath: token.modulePath,
      tokenLabel: token.tokenLabel,
      pin: token.pin,
      workers: 3,
    })
    try {
      const { ref, publicKey } = await se.generateKey({ algorithm: 'EC_P256_SIGN', label: 'workers' })
      const key = { ref, algorithm: 'EC_P256_SIGN' as const }
      const pub = createPublicKey({ key: Buffer.from(publicKey as Uint8Array), format: 'der', type: 'spki' })
      const messages = Array.from({ length: 200 }, (_, i) => new TextEncoder().encode(`m${i}`))
      const signatures = await Promise.all(messages.map((m) => se.sign(key, m)))
      signatures.forEach((s, i) =>
        assert.ok(nodeVerify('sha256', messages[i] as Uint8Array, { key: pub, dsaEncoding: 'ieee-p1363' }, s)),
      )
      await se.destroyKey(key)
      // Every worker had the handle cached; none may still use it.
      const after = await Promise.allSettled(Array.from({ length: 12 }, () => se.sign(key, new Uint8Array(1))))
      for (const r of after) {
        assert.equal(r.status, 'rejected')
        assert.equal((r as PromiseRejectedResult).reason.code, 'ERR_INVALID_ARGUMENT')
      }
    } finally {
      await se.close()
    }
  })
})

describe('pkcs11 SE: one library, several SEs', () => {
  it('SEs started and closed concurrently share C_Initialize and C_Finalize safely', async () => {
    const options = { modulePath: token.modulePath, tokenLabel: token.tokenLabel, pin: token.pin, workers: 2 }
    const signAll = async (ses: readonly Se[], key: { ref: string; algorithm: 'EC_P256_SIGN' }) => {
      const signatures = await Promise.all(
        ses.flatMap((se) => Array.from({ length: 20 }, () => se.sign(key, new Uint8Array(3)))),
      )
      for (const s of signatures) assert.equal(s.length, 64)
    }
    // No SE of this file is open here, so the library is finalised: four workers of two SEs
    // initialise it at once.
    const [a, b] = await Promise.all([create('a', options), create('b', options)])
    let c: Se | undefined
    try {
      const { ref } = await a.generateKey({ algorithm: 'EC_P256_SIGN', label: 'library' })
      const key = { ref, algorithm: 'EC_P256_SIGN' as const }
      await signAll([a, b], key)
      // A closes (B still uses the library, so nobody may C_Finalize) while C starts.
      ;[, c] = await Promise.all([a.close(), create('c', options)])
      await signAll([b, c], key)
      await c.destroyKey(key)
    } finally {
      await Promise.all([a.close(), b.close(), c?.close()])
    }
  })

  it('threads that initialise and finalise the library in lockstep never see each other (library.ts)', async () => {
    // SoftHSM's C_Initialize is not thread-safe: without the shared lock, threads released by
    // one barrier into C_Initialize all get CKR_OK and replace each other's slot and session
    // managers (CKR_SLOT_ID_INVALID, CKR_GENERAL_ERROR, invalid sessions).
    const threads = 4
    const cycles = 60
    const barrier = new SharedArrayBuffer(8)
    const source = `
      const { parentPort, workerData: d } = require('node:worker_threads')
      function barrier() {
        const b = new Int32Array(d.barrier)
        const generation = Atomics.load(b, 1)
        if (Atomics.add(b, 0, 1) === d.threads - 1) {
          Atomics.store(b, 0, 0)
          Atomics.add(b, 1, 1)
          Atomics.notify(b, 1)
        } else {
          while (Atomics.load(b, 1) === generation) Atomics.wait(b, 1, generation)
        }
      }
      import(d.tsx).then((m) => { m.register(); return Promise.all([import(d.pkcs11js), import(d.libraryTs)]) })
        .then(([{ default: P }, lib]) => {
          const p11 = new P.PKCS11()
          p11.load(d.modulePath)
          const failures = []
          for (let i = 0; i < d.cycles; i++) {
            barrier()
            let acquired = false
            try {
              lib.acquireLibrary(p11, d.library)
              acquired = true
              const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === d.tokenLabel)
              if (slot === undefined) throw new Error('token not found')
              const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION)
              p11.C_GetMechanismList(slot)
              p11.C_GetSessionInfo(session)
              p11.C_CloseSession(session)
            } catch (err) {
              failures.push(String(err.method ?? '') + ' ' + String(err.message))
            }
            barrier()
            if (acquired) lib.releaseLibrary(p11, d.library)
          }
          parentPort.postMessage(failures)
        })
        .catch((err) => parentPort.postMessage(['worker: ' + String(err)]))
    `
    const workerData = {
      barrier,
      threads,
      cycles,
      tsx: import.meta.resolve('tsx/esm/api'),
      pkcs11js: import.meta.resolve('pkcs11js'),
      libraryTs: new URL('../../src/se/pkcs11/library.ts', import.meta.url).href,
      library: libraryState(token.modulePath),
      modulePath: token.modulePath,
      tokenLabel: token.tokenLabel,
    }
    const results = await Promise.all(
      Array.from(
        { length: threads },
        () =>
          new Promise<string[]>((resolve, reject) => {
            const worker = new Worker(source, { eval: true, workerData })
            worker.once('message', (failures: string[]) => {
              resolve(failures)
              void worker.terminate()
            })
            worker.once('error', reject)
          }),
      ),
    )
    assert.deepEqual(results.flat(), [])
  })

  it('an unexpected CKR becomes ERR_INTERNAL naming the PKCS#11 function and the CKR', () => {
    const raw = new pkcs11js.Pkcs11Error('CKR_SLOT_ID_INVALID:3', 3, 'C_GetMechanismList')
    const err = mapError(raw)
    assert.ok(err instanceof Error)
    assert.equal((err as { code?: string }).code, 'ERR_INTERNAL')
    assert.match(err.message, /C_GetMechanismList returned CKR_SLOT_ID_INVALID/)
    assert.deepEqual((err as { details?: unknown }).details, {
      ckr: 'CKR_SLOT_ID_INVALID',
      function: 'C_GetMechanismList',
    })
    const session = mapError(new pkcs11js.Pkcs11Error('CKR_SESSION_CLOSED:176', 176, 'C_Sign')) as Error
    assert.equal((session as { code?: string }).code, 'ERR_SE_UNAVAILABLE')
    assert.match(session.message, /C_Sign returned CKR_SESSION_CLOSED/)
  })
})

interface ListedObject {
  kind: string
  label: string
  usage: string
  access: string
}

/** Parses `pkcs11-tool --list-objects` output into objects with their Usage and Access lines. */
function parseObjects(text: string): ListedObject[] {
  const objects: ListedObject[] = []
  let current: ListedObject | undefined
  for (const line of text.split('\n')) {
    const head = /^(Secret Key|Private Key|Public Key|Data|Certificate) Object/.exec(line)
    if (head !== null) {
      current = { kind: head[1] ?? '', label: '', usage: '', access: '' }
      objects.push(current)
      continue
    }
    if (current === undefined) continue
    const field = /^\s+(label|Usage|Access):\s*(.*)$/.exec(line)
    if (field === null) continue
    if (field[1] === 'label') current.label = field[2] ?? ''
    if (field[1] === 'Usage') current.usage = field[2] ?? ''
    if (field[1] === 'Access') current.access = field[2] ?? ''
  }
  return objects
}

describe('pkcs11 SE: token objects seen by pkcs11-tool', () => {
  it('every secret and private key is sensitive; non-exportable ones are never extractable; usages are minimal', async () => {
    // Make sure one key of each kind exists even if the suite above changed.
    const se = await makeSe()
    try {
      await se.generateKey({ algorithm: 'AES_256_GCM', label: 'tool/aes' })
      await se.generateKey({ algorithm: 'HMAC_SHA256', label: 'tool/hmac' })
      await se.generateKey({ algorithm: 'EC_P256_SIGN', label: 'tool/ec' })
      await se.generateKey({ algorithm: 'ED25519_SIGN', label: 'tool/ed' })
      await se.generateKey({ algorithm: 'EC_P256_ECDH', label: 'tool/ecdh' })
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'der', type: 'pkcs8' })
      await se.importKey({ algorithm: 'EC_P256_SIGN', label: 'tool/ec-imported', material: new Uint8Array(ec) })
      await se.importKey({ algorithm: 'MILENAGE', label: 'tool/milenage', material: new Uint8Array(32).fill(7) })
    } finally {
      await se.close()
    }
    // The PIN goes through the environment (pkcs11-tool --pin env:VAR), never the command line.
    const { stdout } = await run(
      'pkcs11-tool',
      [
        '--module',
        token.modulePath,
        '--token-label',
        token.tokenLabel,
        '--login',
        '--pin',
        'env:M2MSEC_TEST_PIN',
        '--list-objects',
      ],
      { env: { ...process.env, M2MSEC_TEST_PIN: token.pin, SOFTHSM2_CONF: token.confPath }, timeout: 30_000 },
    )
    const objects = parseObjects(stdout)
    const keys = objects.filter((o) => o.kind === 'Secret Key' || o.kind === 'Private Key')
    assert.ok(keys.length >= 20, `expected many keys, found ${keys.length}`)
    const extractable = /(^|,\s*)extractable/
    for (const key of keys) {
      const what = `${key.kind} ${key.label}`
      assert.match(key.access, /\bsensitive\b/, `${what} must be sensitive`)
      if (key.label.includes('/exportable')) {
        assert.match(key.access, extractable, `${what} was created exportable`)
        continue
      }
      assert.doesNotMatch(key.access, extractable, `${what} must not be extractable`)
      // Keys generated in the token also carry "never extractable" (imported ones cannot).
      if (key.label.startsWith('tool/') && !key.label.includes('imported') && key.label !== 'tool/milenage') {
        assert.match(key.access, /never extractable/, `${what} must be never extractable`)
      }
    }
    const usage = (label: string, kind: string): string =>
      objects.find((o) => o.label === label && o.kind === kind)?.usage ?? 'missing'
    assert.equal(usage('tool/aes', 'Secret Key'), 'encrypt, decrypt, wrap, unwrap')
    // pkcs11-tool 0.23 does not print sign/verify for secret keys: "none" shows that encrypt,
    // decrypt, wrap and unwrap are all off (SoftHSM would default them on).
    assert.equal(usage('tool/hmac', 'Secret Key'), 'none')
    assert.equal(usage('tool/milenage', 'Secret Key'), 'encrypt')
    assert.equal(usage('tool/ec', 'Private Key'), 'sign')
    assert.equal(usage('tool/ec', 'Public Key'), 'verify')
    assert.equal(usage('tool/ecdh', 'Private Key'), 'derive')
    assert.equal(usage('m2msec/opc-kek', 'Secret Key'), 'encrypt, decrypt')
    assert.ok(!stdout.includes(token.pin), 'the PIN must not appear in the listing')
  })
})
