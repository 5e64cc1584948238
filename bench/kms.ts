/**
 * KMS benchmark (not a test): throughput and latency of the KMS through its gRPC API, compared
 * with an empty call on the same server, with the same operations in process, and with raw
 * PKCS#11 calls on a SoftHSM2 token. Prints one markdown table and whether the targets are met.
 *
 *   npm run bench -- kms [--seconds 4] [--rounds 4] [--concurrency 64] [--channels 1] [--batch 100] [--cpu-prof DIR]
 *   node --import tsx bench/kms.ts [same options]
 *
 * Set-up: nats-server (JetStream) and two SoftHSM2 tokens from @m2msec/testkit; the KMS runs
 * in its own process (`services/kms/src/main.ts`, configured by environment, plaintext on
 * loopback, development bearer token) with a `software` SE and a `pkcs11` SE named `hsm`
 * (SoftHSM2, 1 worker thread). This process is the load generator: a closed loop of
 * `concurrency` calls in flight over `channels` HTTP/2 connections (4 connections measured no
 * faster than 1 here: the client is CPU-bound, not connection-bound). RPC rows are measured in
 * `rounds` interleaved rounds so that background load on a shared machine hits all alike.
 * They use grpc-js via promiseClient; a few are repeated with a lean node:http2 client
 * (lib/h2-grpc.ts) that costs about half the client CPU per call, to show how much of a
 * ratio comes from the load generator. CPU columns tell which side was busy.
 *
 * The in-process rows run afterwards, in this process, while the server is idle: (a) the
 * software and pkcs11 SE modules called directly (no domain, store, audit or gRPC), (b) raw
 * pkcs11js calls on one session of the second token, synchronous on this thread (the token's
 * own rate, the bound of the pkcs11 target).
 *
 * `--cpu-prof DIR` writes a V8 CPU profile of the server process into DIR when it stops.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import * as pb from '@m2msec/proto/kms/v1'
import { promiseClient, type PromiseClient } from '@m2msec/runtime'
import { freePort, startNats, startSoftHsm, tmpDir } from '@m2msec/testkit'
import pkcs11js from 'pkcs11js'
import { create as createSoftwareSe } from '../services/kms/src/se/software/index.ts'
import { create as createPkcs11Se } from '../services/kms/src/se/pkcs11/index.ts'
import type { KeyAlgorithm, SecureEnvironment, SeKeyHandle } from '../services/kms/src/se/api.ts'
import { startKmsProcess } from './lib/kms-process.ts'
import {
  cpuProbe,
  formatTable,
  machineCpuProbe,
  measure,
  measureRounds,
  measureSync,
  type Job,
  type Measurement,
  type TableRow,
} from './lib/measure.ts'
import { idOfRef, openRawSession } from './lib/raw-pkcs11.ts'
import { connectH2Grpc } from './lib/h2-grpc.ts'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '64' },
    channels: { type: 'string', default: '1' },
    batch: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '4' },
    'cpu-prof': { type: 'string' },
  },
})
const SECONDS = Number(args.seconds)
const CONCURRENCY = Number(args.concurrency)
const CHANNELS = Number(args.channels)
const BATCH = Number(args.batch)
const ROUNDS = Number(args.rounds)
for (const [name, v] of Object.entries({ SECONDS, CONCURRENCY, CHANNELS, BATCH, ROUNDS })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bad --${name.toLowerCase()}`)
}
const RPC_MS = SECONDS * 1000
/** In-process rows are cheaper to measure precisely; they get 3/4 of the time. */
const LOCAL_MS = Math.max(1000, RPC_MS * 0.75)
const MAX_CALLS = 1_000_000

const PLAINTEXT = randomBytes(1024)
const AAD = randomBytes(32)
const MESSAGE = randomBytes(256)
const MAC_DATA = randomBytes(32)

type Kms = PromiseClient<typeof pb.KeyManagementService>
type Op = 'Encrypt' | 'Sign' | 'Mac'
const OPS: readonly Op[] = ['Encrypt', 'Sign', 'Mac']
const ALGORITHM: Record<Op, { pb: pb.KeyAlgorithm; se: KeyAlgorithm }> = {
  Encrypt: { pb: pb.KeyAlgorithm.KEY_ALGORITHM_AES_256_GCM, se: 'AES_256_GCM' },
  Sign: { pb: pb.KeyAlgorithm.KEY_ALGORITHM_EC_P256_SIGN, se: 'EC_P256_SIGN' },
  Mac: { pb: pb.KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256, se: 'HMAC_SHA256' },
}
const LABEL: Record<Op, string> = { Encrypt: 'Encrypt 1 KiB', Sign: 'Sign ES256 (256 B)', Mac: 'Mac (32 B)' }
const SES = ['software', 'hsm'] as const
type SeName = (typeof SES)[number]

/** What the lean client needs of a method: the grpc-js method definition has these fields. */
interface LeanMethod<Req, Res> {
  readonly path: string
  requestSerialize(req: Req): Buffer
  responseDeserialize(bytes: Buffer): Res
}

/** grpc.health.v1.Health/Check with service "": an empty request; the response 08 01 means SERVING. */
const HEALTH_CHECK: LeanMethod<undefined, Buffer> = {
  path: '/grpc.health.v1.Health/Check',
  requestSerialize: () => Buffer.alloc(0),
  responseDeserialize: (bytes) => bytes,
}

/** Cleanup steps, run in reverse order at the end and on failure. */
const cleanups: Array<{ name: string; run: () => unknown }> = []

async function main(): Promise<void> {
  const started = Date.now()
  const dir = await tmpDir('m2msec-bench-kms')
  cleanups.push({ name: 'temp dir', run: () => dir.cleanup() })
  const nats = await startNats()
  cleanups.push({ name: 'nats', run: () => nats.stop() })
  // startSoftHsm sets SOFTHSM2_CONF in this process; the server gets the same file.
  const serverToken = await startSoftHsm({ label: 'bench-kms-server' })
  cleanups.push({ name: 'server token', run: () => serverToken.stop() })
  const rawToken = await startSoftHsm({ label: 'bench-kms-raw' })
  cleanups.push({ name: 'raw token', run: () => rawToken.stop() })

  const masterKeyFile = join(dir.path, 'master.key')
  await writeFile(masterKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 })
  const devToken = randomBytes(24).toString('base64url')
  const tokenFile = join(dir.path, 'admin.token')
  await writeFile(tokenFile, devToken, { mode: 0o600 })

  const server = await startKmsProcess({
    port: await freePort(),
    natsUrl: nats.url,
    secureEnvironments: [
      { name: 'software', type: 'software', options: { masterKeyFile } },
      {
        name: 'hsm',
        type: 'pkcs11',
        options: {
          modulePath: serverToken.modulePath,
          tokenLabel: serverToken.tokenLabel,
          pinFile: serverToken.pinFile,
          protectionLevel: 1,
        },
      },
    ],
    devAdminTokenFile: tokenFile,
    env: { SOFTHSM2_CONF: serverToken.confPath },
    ...(args['cpu-prof'] === undefined ? {} : { cpuProfDir: args['cpu-prof'] }),
  })
  cleanups.push({ name: 'kms process', run: () => server.stop() })

  // Separate HTTP/2 connections: without a local subchannel pool, clients of one target share one.
  const channels = Array.from(
    { length: CHANNELS },
    () =>
      new pb.KeyManagementClient(server.target, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      }),
  )
  cleanups.push({ name: 'clients', run: () => channels.forEach((c) => c.close()) })
  const kmsClients = channels.map((c) => promiseClient(pb.KeyManagementService, c))
  let turn = 0
  const pick = <T>(list: readonly T[]): T => list[turn++ % list.length] as T
  const auth = (): { metadata: grpc.Metadata } => {
    const metadata = new grpc.Metadata()
    metadata.set('authorization', `Bearer ${devToken}`)
    return { metadata }
  }
  const kms = (): Kms => pick(kmsClients)
  // The lean client: node:http2 with gRPC framing, several times cheaper per call than grpc-js.
  const leanChannels = Array.from({ length: CHANNELS }, () => connectH2Grpc(server.target))
  cleanups.push({ name: 'lean clients', run: () => leanChannels.forEach((c) => c.close()) })
  const authHeaders = { authorization: `Bearer ${devToken}` }
  const lean =
    <Req, Res>(
      def: LeanMethod<Req, Res>,
      req: Req,
      headers: Readonly<Record<string, string>> = authHeaders,
    ): (() => Promise<Res>) =>
    async () =>
      def.responseDeserialize(await pick(leanChannels).unary(def.path, def.requestSerialize(req), headers))

  const healthCheck = (): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      pick(channels).makeUnaryRequest(
        HEALTH_CHECK.path,
        HEALTH_CHECK.requestSerialize,
        HEALTH_CHECK.responseDeserialize,
        undefined,
        new grpc.Metadata(),
        {},
        (err, res) => (err || res === undefined ? reject(err ?? new Error('no response')) : resolve(res)),
      )
    })
  if (!(await healthCheck()).equals(Buffer.from([0x08, 0x01]))) throw new Error('health check did not answer SERVING')

  const keyId = (op: Op, se: SeName): string => `bench-${op.toLowerCase()}-${se}`
  for (const se of SES) {
    for (const op of OPS) {
      await kms().createKey(
        pb.CreateKeyRequest.fromPartial({
          keySpec: { keyId: keyId(op, se), algorithm: ALGORITHM[op].pb },
          secureEnvironment: se,
        }),
        auth(),
      )
    }
  }

  const single = (op: Op, se: SeName): (() => Promise<unknown>) => {
    const id = keyId(op, se)
    if (op === 'Encrypt') {
      const req = pb.EncryptRequest.fromPartial({ keyId: id, plaintext: PLAINTEXT, associatedData: AAD })
      return () => kms().encrypt(req, auth())
    }
    if (op === 'Sign') {
      const req = pb.SignRequest.fromPartial({ keyId: id, message: MESSAGE })
      return () => kms().sign(req, auth())
    }
    const req = pb.MacRequest.fromPartial({ keyId: id, data: MAC_DATA })
    return () => kms().mac(req, auth())
  }
  const batched = (op: Op, se: SeName): (() => Promise<unknown>) => {
    const id = keyId(op, se)
    const items = Array.from({ length: BATCH })
    const check = (res: { results: readonly { outcome?: { $case: string } | undefined }[] }): void => {
      if (res.results.length !== BATCH || res.results.some((r) => r.outcome?.$case !== 'result')) {
        throw new Error(`Batch${op}: an item failed`)
      }
    }
    if (op === 'Encrypt') {
      const req = pb.BatchEncryptRequest.fromPartial({
        items: items.map(() => ({ keyId: id, plaintext: PLAINTEXT, associatedData: AAD })),
      })
      return async () => check(await kms().batchEncrypt(req, auth()))
    }
    if (op === 'Sign') {
      const req = pb.BatchSignRequest.fromPartial({ items: items.map(() => ({ keyId: id, message: MESSAGE })) })
      return async () => check(await kms().batchSign(req, auth()))
    }
    const req = pb.BatchMacRequest.fromPartial({ items: items.map(() => ({ keyId: id, data: MAC_DATA })) })
    return async () => check(await kms().batchMac(req, auth()))
  }

  const cpu = { server: cpuProbe(server.pid), client: cpuProbe(), machine: machineCpuProbe() }
  const rpc = { concurrency: CONCURRENCY, durationMs: RPC_MS, maxCalls: MAX_CALLS, cpu }
  const rpcBatch = { ...rpc, opsPerCall: BATCH, maxCalls: Math.ceil(MAX_CALLS / BATCH), warmupCalls: CONCURRENCY * 2 }
  const progress = (m: Measurement): Measurement => {
    process.stderr.write(`  ${m.name}: ${Math.round(m.perSecond)} ops/s\n`)
    return m
  }

  process.stderr.write(
    `KMS pid ${server.pid} on ${server.target}; measuring over RPC in ${ROUNDS} interleaved rounds\n`,
  )
  const listReq = pb.ListSecureEnvironmentsRequest.fromPartial({})
  const jobs: Job[] = [
    { name: 'Health/Check (no auth)', op: healthCheck, opts: rpc },
    {
      name: 'ListSecureEnvironments (auth, no crypto)',
      op: () => kms().listSecureEnvironments(listReq, auth()),
      opts: rpc,
    },
  ]
  const rpcKeys: string[] = []
  for (const se of SES) {
    for (const op of OPS) {
      rpcKeys.push(`${op}/${se}`)
      jobs.push({ name: LABEL[op], op: single(op, se), opts: rpc })
    }
    for (const op of OPS) {
      rpcKeys.push(`Batch${op}/${se}`)
      jobs.push({ name: `Batch${op} x${BATCH}`, op: batched(op, se), opts: rpcBatch })
    }
  }
  const KM = pb.KeyManagementService
  const leanJobs: Job[] = [
    { name: 'Health/Check (no auth)', op: lean(HEALTH_CHECK, undefined, {}), opts: rpc },
    { name: 'ListSecureEnvironments (auth, no crypto)', op: lean(KM.listSecureEnvironments, listReq), opts: rpc },
    {
      name: LABEL.Encrypt,
      op: lean(
        KM.encrypt,
        pb.EncryptRequest.fromPartial({
          keyId: keyId('Encrypt', 'software'),
          plaintext: PLAINTEXT,
          associatedData: AAD,
        }),
      ),
      opts: rpc,
    },
    {
      name: LABEL.Sign,
      op: lean(KM.sign, pb.SignRequest.fromPartial({ keyId: keyId('Sign', 'software'), message: MESSAGE })),
      opts: rpc,
    },
    {
      name: LABEL.Mac,
      op: lean(KM.mac, pb.MacRequest.fromPartial({ keyId: keyId('Mac', 'software'), data: MAC_DATA })),
      opts: rpc,
    },
  ]
  const firstLean = jobs.length
  jobs.push(...leanJobs)
  const short = (i: number): string =>
    i < 2
      ? (jobs[i]?.name.split(' ')[0] ?? '')
      : i < firstLean
        ? (rpcKeys[i - 2] ?? '')
        : `lean ${jobs[i]?.name.split(' ')[0] ?? ''}`
  const measured = await measureRounds(jobs, ROUNDS, (round, partial) => {
    process.stderr.write(
      `  round ${round}: ${partial.map((m, i) => `${short(i)} ${Math.round(m.perSecond)}`).join(', ')}\n`,
    )
  })
  const [health, empty] = measured as [Measurement, Measurement]
  const rpcRows = new Map<string, Measurement>(rpcKeys.map((k, i) => [k, measured[i + 2] as Measurement]))
  const [leanHealth, leanEmpty, ...leanOps] = measured.slice(firstLean) as [Measurement, Measurement, ...Measurement[]]

  process.stderr.write('measuring in process\n')
  const local = { concurrency: CONCURRENCY, durationMs: LOCAL_MS, maxCalls: MAX_CALLS, cpu: { client: cpu.client } }
  const seRows = new Map<string, Measurement>()
  const software = await createSoftwareSe('software', { masterKey: randomBytes(32) })
  cleanups.push({ name: 'software SE', run: () => software.close() })
  const hsm = await createPkcs11Se('hsm', {
    modulePath: rawToken.modulePath,
    tokenLabel: rawToken.tokenLabel,
    pin: rawToken.pin,
    protectionLevel: 1,
    workers: 1,
  })
  cleanups.push({ name: 'pkcs11 SE', run: () => hsm.close() })
  const refs = new Map<string, SeKeyHandle>()
  for (const [se, instance] of [
    ['software', software],
    ['hsm', hsm],
  ] as const) {
    for (const op of OPS) {
      const algorithm = ALGORITHM[op].se
      const { ref } = await instance.generateKey({ algorithm, label: `bench/${op}` })
      refs.set(`${op}/${se}`, { ref, algorithm })
      seRows.set(
        `${op}/${se}`,
        progress(await measure(`${LABEL[op]}, SE module`, seOp(instance, op, { ref, algorithm }), local)),
      )
    }
  }

  // The raw session shares the module initialised by the pkcs11 SE's worker; it is closed
  // before the SE, whose last worker calls C_Finalize.
  const raw = openRawSession(rawToken.modulePath, rawToken.tokenLabel, rawToken.pin)
  const rawRows = new Map<Op, Measurement>()
  try {
    const handle = (op: Op): Buffer =>
      raw.keyById(
        idOfRef(refs.get(`${op}/hsm`)?.ref ?? ''),
        op === 'Sign' ? pkcs11js.CKO_PRIVATE_KEY : pkcs11js.CKO_SECRET_KEY,
      )
    const aes = handle('Encrypt')
    const ec = handle('Sign')
    const hmac = handle('Mac')
    const sync = { durationMs: LOCAL_MS, maxCalls: MAX_CALLS }
    rawRows.set(
      'Encrypt',
      progress(measureSync('Encrypt 1 KiB, raw C_EncryptInit+C_Encrypt', () => raw.encrypt(aes, PLAINTEXT, AAD), sync)),
    )
    rawRows.set(
      'Sign',
      progress(measureSync('Sign ES256, raw SHA-256+C_SignInit+C_Sign', () => raw.signEs256(ec, MESSAGE), sync)),
    )
    rawRows.set('Mac', progress(measureSync('Mac, raw C_SignInit+C_Sign', () => raw.mac(hmac, MAC_DATA), sync)))
  } finally {
    raw.close()
  }

  const get = <K, V>(map: ReadonlyMap<K, V>, key: K): V => {
    const v = map.get(key)
    if (v === undefined) throw new Error(`no row ${String(key)}`)
    return v
  }
  const lower = (a: Measurement, b: Measurement): Measurement => (a.perSecond <= b.perSecond ? a : b)
  const rows: TableRow[] = [
    { group: 'RPC baseline', m: health },
    { group: 'RPC baseline', m: empty, vs: health },
  ]
  for (const se of SES) {
    for (const op of OPS) {
      const vs = se === 'software' ? empty : lower(empty, get(rawRows, op))
      rows.push({ group: `RPC ${se}`, m: get(rpcRows, `${op}/${se}`), vs })
    }
    for (const op of OPS)
      rows.push({ group: `RPC ${se}`, m: get(rpcRows, `Batch${op}/${se}`), vs: get(rpcRows, `${op}/${se}`) })
  }
  rows.push({ group: 'lean client', m: leanHealth }, { group: 'lean client', m: leanEmpty, vs: leanHealth })
  for (const m of leanOps) rows.push({ group: 'lean client, software', m, vs: leanEmpty })
  for (const op of OPS) rows.push({ group: 'in-process software SE', m: get(seRows, `${op}/software`) })
  for (const op of OPS) rows.push({ group: 'in-process pkcs11 SE', m: get(seRows, `${op}/hsm`), vs: get(rawRows, op) })
  for (const op of OPS) rows.push({ group: 'raw pkcs11js (1 session)', m: get(rawRows, op) })

  const targets: string[] = []
  const verdict = (ok: boolean): string => (ok ? 'met' : '**NOT MET**')
  const rate = (m: Measurement): string => `${Math.round(m.perSecond).toLocaleString('en-US')}/s`
  for (const [i, op] of OPS.entries()) {
    const m = get(rpcRows, `${op}/software`)
    const r = m.perSecond / empty.perSecond
    const l = leanOps[i] as Measurement
    targets.push(
      `- software ${op} RPC >= 0.8 x authenticated empty call: ${rate(m)} / ${rate(empty)} = ${r.toFixed(2)} -> ${verdict(r >= 0.8)}` +
        ` (vs Health/Check ${(m.perSecond / health.perSecond).toFixed(2)}; lean client ${(l.perSecond / leanEmpty.perSecond).toFixed(2)})`,
    )
  }
  const serverUs = (m: Measurement): number => ((m.cpu['server'] ?? NaN) * 1e6) / m.perSecond
  targets.push(
    `- (server CPU per operation, µs, independent of the client: empty call ${serverUs(empty).toFixed(0)}, ` +
      OPS.map((op) => `${op} ${serverUs(get(rpcRows, `${op}/software`)).toFixed(0)}`).join(', ') +
      `; if the server alone were the bottleneck the ratios would be ` +
      OPS.map((op) => (serverUs(empty) / serverUs(get(rpcRows, `${op}/software`))).toFixed(2)).join(', ') +
      ')',
  )
  for (const op of OPS) {
    const b = get(rpcRows, `Batch${op}/software`)
    const u = get(rpcRows, `${op}/software`)
    const r = b.perSecond / u.perSecond
    targets.push(
      `- software Batch${op} x${BATCH} >= 10 x unbatched (per operation): ${rate(b)} / ${rate(u)} = ${r.toFixed(1)} -> ${verdict(r >= 10)}`,
    )
  }
  for (const op of OPS) {
    const m = get(rpcRows, `${op}/hsm`)
    const bound = lower(empty, get(rawRows, op))
    const r = m.perSecond / bound.perSecond
    targets.push(
      `- pkcs11 ${op} RPC >= 0.8 x min(empty call ${rate(empty)}, raw PKCS#11 ${rate(get(rawRows, op))}): ${rate(m)} / ${rate(bound)} = ${r.toFixed(2)} -> ${verdict(r >= 0.8)}`,
    )
  }

  // CPU that neither the KMS process nor this one used during the RPC rows: NATS and other programs.
  const others = measured.map((m) => (m.cpu['machine'] ?? NaN) - (m.cpu['server'] ?? NaN) - (m.cpu['client'] ?? NaN))
  const othersMean = others.reduce((a, b) => a + b, 0) / others.length
  const noise =
    othersMean > 0.25
      ? ` Other programs (and NATS) used ${othersMean.toFixed(2)} cores on average during the RPC rows: on a shared machine ratios move by about ±0.1 between runs; the server µs/op column is the steadier measure.`
      : ` Other programs (and NATS) used ${othersMean.toFixed(2)} cores on average during the RPC rows.`
  console.log(`# KMS benchmark

Load: closed loop, ${CONCURRENCY} calls in flight over ${CHANNELS} HTTP/2 connection(s), plaintext gRPC on loopback with a bearer token; RPC rows ${SECONDS} s each in ${ROUNDS} interleaved rounds, in-process rows ${LOCAL_MS / 1000} s each, after warm-ups. The KMS runs in its own process (software SE + SoftHSM2 pkcs11 SE with 1 worker thread, NATS JetStream audit log and key store, no OTLP endpoint, so no OpenTelemetry SDK). RPC rows use grpc-js through promiseClient; "lean client" rows repeat some with a minimal node:http2 gRPC client that costs the load generator less CPU per call, so the server is more often the bottleneck.

ops/s count operations (a batch of ${BATCH} counts ${BATCH}); p50/p99 are per call, at ${CONCURRENCY} in flight (mostly queueing). "cores" = CPU used during the row (server = the KMS process with its threads, client = this process, machine = everything, other programs included); "µs/op" = CPU time per operation. Ratio = ops/s of the row / ops/s of "vs". The empty-call baseline of the targets is the authenticated ListSecureEnvironments (authentication, no crypto, no store); Health/Check is the same server without authentication.

${formatTable(rows, { cores: ['server', 'client', 'machine'], perOp: ['server', 'client'] })}

## Targets

${targets.join('\n')}

Node ${process.version}, ${cpus().length} cores, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} at the end; run took ${Math.round((Date.now() - started) / 1000)} s.${noise}`)
}

/** One SE operation as an async function, for {@link measure}. */
function seOp(se: SecureEnvironment, op: Op, key: SeKeyHandle): () => Promise<unknown> {
  if (op === 'Encrypt') return () => se.encrypt(key, PLAINTEXT, AAD)
  if (op === 'Sign') return () => se.sign(key, MESSAGE)
  return () => se.mac(key, MAC_DATA)
}

async function cleanup(): Promise<void> {
  for (const step of cleanups.reverse()) {
    try {
      await step.run()
    } catch (err) {
      process.stderr.write(`cleanup of ${step.name} failed: ${String(err)}\n`)
    }
  }
  cleanups.length = 0
}

process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)))
try {
  await main()
} catch (err) {
  process.exitCode = 1
  console.error(err)
} finally {
  await cleanup()
}
