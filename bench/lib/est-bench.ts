/**
 * EST enrolment throughput against its cryptographic floor (not a test). The lead calls
 * {@link runEstBench} from bench/bootstrap.ts; bench/bootstrap-est.ts runs it alone.
 *
 * Setup (real processes, 127.0.0.1): nats-server, the KMS as a child process (software SE,
 * mTLS), the PKI component of the bootstrap service in this process (EST over HTTPS, state in
 * JetStream KV). One enrolment = POST simpleenroll with a one-time token over a kept-alive
 * HTTPS connection: token check, CSR checks (parse, P-256, proof of possession = one ECDSA
 * verify), token consumption (revision-checked KV update), certificate signing by the issuing
 * CA key IN THE KMS (one gRPC Sign), certificate record (KV create), PKCS#7 response.
 * Tokens and the CSR are made before the clock starts (a device makes its own key and CSR).
 *
 * Baseline, measured in the same run: one ECDSA P-256 sign plus one verify with node:crypto
 * on this thread, i.e. the bare cryptography of an enrolment without any I/O. Target: EST
 * enrolments per second >= 0.5 x that rate.
 */
import { createSign, createVerify, generateKeyPairSync } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:https'
import { join } from 'node:path'
import { connectNats } from '@m2msec/bus'
import { createLogger } from '@m2msec/runtime'
import { createDevPki, startKmsProcess, startNats, tmpDir } from '@m2msec/testkit'
import { createKeyAndCsr } from '@m2msec/sdk/pki'
import { createPkiComponent, createPkiKmsClient, pkiConfigSchema } from '../../services/bootstrap/src/pki/index.ts'
import { cpuProbe, measure, measureSync, printTable, type Measurement } from './measure.ts'

/** Options of {@link runEstBench}. */
export interface EstBenchOptions {
  /** Measured time per row, ms. Default 5000. */
  readonly durationMs?: number
  /** Enrolments in flight. Default 16. */
  readonly concurrency?: number
  /** Enrolment tokens made up front (bounds the EST row's call count). Default 6000. */
  readonly tokens?: number
}

/** What {@link runEstBench} measured. */
export interface EstBenchResult {
  readonly raw: Measurement
  readonly est: Measurement
  /** est ops/s divided by raw ops/s. */
  readonly ratio: number
}

const TENANT = 'bench'
const DOMAIN = 'bench.m2m.example'
const AE = `m2m://${DOMAIN}/in-cse/Cae-bench`

/**
 * Runs the benchmark, prints one markdown table and returns the measurements.
 *
 * @example
 * ```ts
 * const { ratio } = await runEstBench({ durationMs: 5000 })
 * ```
 */
export async function runEstBench(opts: EstBenchOptions = {}): Promise<EstBenchResult> {
  const durationMs = opts.durationMs ?? 5000
  const concurrency = opts.concurrency ?? 16
  const tokenCount = opts.tokens ?? 6000

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const message = Buffer.alloc(300, 7)
  const raw = measureSync(
    'ECDSA P-256 sign + verify (node:crypto, 1 thread)',
    () => {
      const sig = createSign('sha256').update(message).sign(privateKey)
      if (!createVerify('sha256').update(message).verify(publicKey, sig)) throw new Error('verify failed')
    },
    { durationMs },
  )

  const dir = await tmpDir('bench-est')
  const stops: Array<() => unknown> = [() => dir.cleanup()]
  try {
    const nats = await startNats()
    stops.push(() => nats.stop())
    const pki = await createDevPki(join(dir.path, 'pki'))
    const kmsProcess = await startKmsProcess({ natsUrl: nats.url, pki })
    stops.push(() => kmsProcess.stop())
    const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'bootstrap', roles: ['service'] })
    await writeFile(join(dir.path, 'svc.pem'), svc.certPem)
    await writeFile(join(dir.path, 'svc.key'), svc.keyPem, { mode: 0o600 })
    const kms = createPkiKmsClient({
      target: kmsProcess.target,
      tls: { caFile: pki.paths.caCert, certFile: join(dir.path, 'svc.pem'), keyFile: join(dir.path, 'svc.key') },
      timeoutMs: 10_000,
    })
    stops.push(() => kms.close())
    const nc = await connectNats({ servers: [nats.url], name: 'bench-est' })
    stops.push(() => nc.drain())
    const log = createLogger({ level: 'warn', service: 'bench-est' }, { write: () => undefined })
    const config = pkiConfigSchema.parse({
      est: { port: 0, tls: { certFile: pki.paths.serverCert, keyFile: pki.paths.serverKey } },
      revocation: { port: 0 },
    })
    const component = await createPkiComponent({ config, nc, kms, log })
    const { estUrl } = await component.est.start()
    stops.push(() => component.est.stop())

    const admin = { tenant: TENANT, id: 'bench-admin', roles: ['admin'] }
    await component.ops.createCa(admin, { domain: DOMAIN, claimTrustAnchorsPem: [] })
    const tokens: string[] = []
    for (let i = 0; i < tokenCount; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, tokenCount - i) }, () =>
          component.ops.createEnrolmentAuthorization(admin, { names: { uris: [AE], dnsNames: [] }, ttlSec: 3600 }),
        ),
      )
      tokens.push(...batch.map((b) => b.token))
    }
    const body = Buffer.from((await createKeyAndCsr({ uris: [AE] })).csrDer).toString('base64')
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca: pki.caCertPem })
    stops.push(() => agent.destroy())
    const url = `${estUrl}/.well-known/est/${TENANT}/simpleenroll`
    const enrol = () =>
      new Promise<void>((resolve, reject) => {
        const token = tokens.pop()
        if (token === undefined) return reject(new Error('out of enrolment tokens: raise --tokens'))
        const req = request(
          url,
          {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/pkcs10', authorization: `Bearer ${token}` },
          },
          (res) => {
            res.resume()
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))))
          },
        )
        req.on('error', reject)
        req.end(body)
      })
    const warmupCalls = Math.min(200, Math.floor(tokenCount / 10))
    const est = await measure('EST simpleenroll (token, HTTPS keep-alive, KMS sign, KV)', enrol, {
      concurrency,
      durationMs,
      warmupCalls,
      maxCalls: tokenCount - warmupCalls - concurrency,
      cpu: { bench: cpuProbe(), kms: cpuProbe(kmsProcess.pid) },
    })
    const ratio = est.perSecond / raw.perSecond
    printTable(`EST enrolment vs one ECDSA sign + verify (target ratio >= 0.5; ${concurrency} in flight)`, [
      { m: raw, group: 'floor' },
      { m: est, vs: raw, group: 'EST' },
    ])
    return { raw, est, ratio }
  } finally {
    for (const s of stops.reverse()) {
      try {
        await s()
      } catch {
        // keep cleaning up
      }
    }
  }
}
