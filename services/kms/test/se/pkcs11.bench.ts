/**
 * Throughput of the pkcs11 SE (worker threads) against raw pkcs11js calls on the main thread,
 * same process, same SoftHSM2 token, same token objects (raw Milenage keeps OPc in memory; the
 * SE also decrypts the sealed OPc in the token per call). Prints ops/s (median of 3 one-second runs) and the
 * main-thread event-loop delay while each runs: the point of the workers is that the loop
 * stays free while the token works.
 *
 * Run: node --import tsx services/kms/test/se/pkcs11.bench.ts
 */
import { createHash, randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import pkcs11js from 'pkcs11js'
import { hexToBytes, milenage } from '@m2msec/crypto'
import { startSoftHsm } from '@m2msec/testkit'
import type { SecureEnvironment } from '../../src/se/api.ts'
import { isMilenageCapable } from '../../src/se/api.ts'
import { create } from '../../src/se/pkcs11/index.ts'

const P = pkcs11js
const RUN_MS = 1000
const RUNS = 3

interface Result {
  opsPerSecond: number
  /** Longest main-thread stall seen by a 5 ms interval timer during the run. */
  maxTimerLagMs: number
}

async function measure(fn: () => Promise<unknown> | unknown, inFlight: number): Promise<Result> {
  const results: Result[] = []
  for (let r = 0; r < RUNS; r++) {
    // A 5 ms interval timer measures how long the main thread was unavailable; a raw
    // synchronous PKCS#11 loop blocks it for the whole run.
    let maxLag = 0
    let last = performance.now()
    const timer = setInterval(() => {
      const now = performance.now()
      maxLag = Math.max(maxLag, now - last - 5)
      last = now
    }, 5)
    let count = 0
    const end = performance.now() + RUN_MS
    const lane = async (): Promise<void> => {
      while (performance.now() < end) {
        await fn()
        count++
      }
    }
    const start = performance.now()
    await Promise.all(Array.from({ length: inFlight }, lane))
    const elapsed = performance.now() - start
    clearInterval(timer)
    maxLag = Math.max(maxLag, performance.now() - last - 5)
    results.push({ opsPerSecond: (count * 1000) / elapsed, maxTimerLagMs: maxLag })
  }
  results.sort((a, b) => a.opsPerSecond - b.opsPerSecond)
  return results[Math.floor(RUNS / 2)] as Result
}

/** Raw pkcs11js on the main thread: the same mechanisms, no worker, no validation. */
function rawSession(modulePath: string, label: string, pin: string) {
  const p11 = new P.PKCS11()
  p11.load(modulePath)
  try {
    p11.C_Initialize({ flags: P.CKF_OS_LOCKING_OK })
  } catch {
    // Already initialised by the SE's workers in this process.
  }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === label) as pkcs11js.Handle
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION)
  try {
    p11.C_Login(session, P.CKU_USER, pin)
  } catch {
    // Already logged in through another session of this process.
  }
  /** The SE's own token object for `ref` (same key, so the comparison is like for like). */
  const byRef = (ref: string, cls: number): pkcs11js.Handle => {
    const id = Buffer.from(ref.slice(4, 36), 'hex')
    p11.C_FindObjectsInit(session, [
      { type: P.CKA_ID, value: id },
      { type: P.CKA_CLASS, value: cls },
    ])
    const [handle] = p11.C_FindObjects(session, 1)
    p11.C_FindObjectsFinal(session)
    if (handle === undefined) throw new Error('object not found')
    return handle
  }
  return { p11, session, byRef }
}

async function main(): Promise<void> {
  const token = await startSoftHsm({ label: 'm2msec-bench' })
  const se1 = await create('bench-1', {
    modulePath: token.modulePath,
    tokenLabel: token.tokenLabel,
    pin: token.pin,
    protectionLevel: 1,
  })
  const se2 = await create('bench-2', {
    modulePath: token.modulePath,
    tokenLabel: token.tokenLabel,
    pin: token.pin,
    protectionLevel: 1,
    workers: 2,
  })
  const raw = rawSession(token.modulePath, token.tokenLabel, token.pin)

  const message = new Uint8Array(randomBytes(64))
  const kilobyte = new Uint8Array(randomBytes(1024))
  const aad = new Uint8Array(16)
  const hmacKey = new Uint8Array(randomBytes(32))
  const aesKey = new Uint8Array(randomBytes(32))
  const k = hexToBytes('465b5ce8b199b49faa5f0a2ee238a6bc')
  const opc = hexToBytes('cd63cb71954a9f4e48a5994e37a02baf')
  const mIn = {
    rand: hexToBytes('23553cbe9637a89d218ae64dae47bf35'),
    sqn: hexToBytes('ff9bb4d0b607'),
    amf: hexToBytes('b9b9'),
  }

  // SE handles; the raw session uses the very same token objects.
  const sign = await se1.generateKey({ algorithm: 'EC_P256_SIGN', label: 'bench/ec' })
  const aes = await se1.importKey({ algorithm: 'AES_256_GCM', label: 'bench/aes', material: aesKey })
  const hmac = await se1.importKey({ algorithm: 'HMAC_SHA256', label: 'bench/hmac', material: hmacKey })
  const mil = await se1.importKey({
    algorithm: 'MILENAGE',
    label: 'bench/milenage',
    material: new Uint8Array([...k, ...opc]),
  })
  const h = {
    sign: { ref: sign.ref, algorithm: 'EC_P256_SIGN' as const },
    aes: { ref: aes.ref, algorithm: 'AES_256_GCM' as const },
    hmac: { ref: hmac.ref, algorithm: 'HMAC_SHA256' as const },
    mil: { ref: mil.ref, algorithm: 'MILENAGE' as const },
  }
  const { p11, session } = raw
  const rawEc = raw.byRef(sign.ref, P.CKO_PRIVATE_KEY)
  const rawAes = raw.byRef(aes.ref, P.CKO_SECRET_KEY)
  const rawHmac = raw.byRef(hmac.ref, P.CKO_SECRET_KEY)
  const rawK = raw.byRef(mil.ref, P.CKO_SECRET_KEY)

  const rawOps: Record<string, () => unknown> = {
    'ECDSA P-256 sign (64 B)': () => {
      p11.C_SignInit(session, { mechanism: P.CKM_ECDSA }, rawEc)
      return p11.C_Sign(session, createHash('sha256').update(message).digest(), Buffer.alloc(64))
    },
    'AES-256-GCM encrypt 1 KiB': () => {
      const parameter: pkcs11js.AesGCM = {
        type: P.CK_PARAMS_AES_GCM,
        iv: randomBytes(12),
        aad: Buffer.from(aad),
        ivBits: 96,
        tagBits: 128,
      }
      p11.C_EncryptInit(session, { mechanism: P.CKM_AES_GCM, parameter }, rawAes)
      return p11.C_Encrypt(session, Buffer.from(kilobyte), Buffer.alloc(1024 + 16))
    },
    'HMAC-SHA-256 (64 B)': () => {
      p11.C_SignInit(session, { mechanism: P.CKM_SHA256_HMAC }, rawHmac)
      return p11.C_Sign(session, Buffer.from(message), Buffer.alloc(32))
    },
    'Milenage f1-f5* (set)': () =>
      milenage(
        async (block) => {
          p11.C_EncryptInit(session, { mechanism: P.CKM_AES_ECB }, rawK)
          return new Uint8Array(p11.C_Encrypt(session, Buffer.from(block), Buffer.alloc(16)))
        },
        opc,
        mIn,
      ),
  }
  const seOps = (se: SecureEnvironment): Record<string, () => Promise<unknown>> => ({
    'ECDSA P-256 sign (64 B)': () => se.sign(h.sign, message),
    'AES-256-GCM encrypt 1 KiB': () => se.encrypt(h.aes, kilobyte, aad),
    'HMAC-SHA-256 (64 B)': () => se.mac(h.hmac, message),
    'Milenage f1-f5* (set)': () => (isMilenageCapable(se) ? se.milenage(h.mil, mIn) : Promise.resolve()),
  })

  const rows: string[] = [
    `ops/s, median of ${RUNS} runs of ${RUN_MS} ms; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  ]
  rows.push(
    '| Operation | raw pkcs11js, main thread | SE 1 worker, 1 in flight | SE 1 worker, 32 in flight | SE 2 workers, 32 in flight | SE/raw (1 worker, 32) |',
  )
  rows.push('|---|---|---|---|---|---|')
  const fmt = (r: Result): string =>
    `${Math.round(r.opsPerSecond).toLocaleString('en')} (max stall ${Math.round(r.maxTimerLagMs)} ms)`
  for (const name of Object.keys(rawOps)) {
    const rawFn = rawOps[name] as () => unknown
    const r = await measure(rawFn, 1)
    const s1 = await measure(seOps(se1)[name] as () => Promise<unknown>, 1)
    const s32 = await measure(seOps(se1)[name] as () => Promise<unknown>, 32)
    const s2 = await measure(seOps(se2)[name] as () => Promise<unknown>, 32)
    rows.push(
      `| ${name} | ${fmt(r)} | ${fmt(s1)} | ${fmt(s32)} | ${fmt(s2)} | ${(s32.opsPerSecond / r.opsPerSecond).toFixed(2)} |`,
    )
  }
  console.log(rows.join('\n'))

  p11.C_CloseSession(session)
  await se2.close()
  await se1.close()
  await token.stop()
}

await main()
