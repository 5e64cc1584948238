/**
 * Authz benchmark (not a test): Check and BatchCheck throughput and latency through the gRPC
 * API with 1k and with 100k policies in the tenant, compared with an empty call on the same
 * server, and the embedded engine (`@m2msec/acp` decide()) in this process. Prints one
 * markdown table and whether the targets are met.
 *
 *   npm run bench -- authz [--seconds 3] [--rounds 3] [--concurrency 64] [--batch 100] [--policies 100000] [--cpu-prof DIR]
 *
 * `--cpu-prof DIR` writes a V8 CPU profile of the server process into DIR when it stops
 * (summarise it with `bench/tools/profile-summary.ts`). `--only check` (comma list of health,
 * get, check, batch, handler) measures only those rows, e.g. for a profile of Check alone; the targets
 * are then not evaluated.
 *
 * Set-up: nats-server (JetStream) from @m2msec/testkit; the authz service runs in its own
 * process (`services/authz/src/main.ts`, configured by environment, plaintext on loopback,
 * development admin token of tenant `demo`). Policies are loaded with PutPolicy (64 in flight;
 * each PutPolicy returns once the service's KV watch applied it). The tenant holds 1k policies
 * for the first set of rows, then is filled up to `--policies` for the second set: the index is
 * per tenant and the development token names one tenant, so the two sets cannot interleave;
 * each set has its own empty-call rows, and the 100k/1k comparison uses rates normalised by them.
 *
 * Empty-call baselines: Health/Check (the target's "empty call": same server, same channel,
 * no work) and GetPolicy of a one-rule policy (authenticated, no decision). GetPolicy turned out
 * to cost the server several times a Check (it reads the policy and its revision from the
 * store, a NATS round trip, like ListPolicies), so it is shown but not used for the targets.
 */
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import { compilePolicies, decide, type AccessControlPolicy, type AccessRequest } from '@m2msec/acp'
import * as pb from '@m2msec/proto/authz/v1'
import { createLogger, promiseClient, systemClock, type CallContext, type PromiseClient } from '@m2msec/runtime'
import { freePort, grpcHealthCheck, startNats, tmpDir } from '@m2msec/testkit'
import { createAuthzOperations } from '../services/authz/src/domain/operations/index.ts'
import { createAuthzGrpcService } from '../services/authz/src/grpc/service.ts'
import { REPO_ROOT } from './lib/kms-process.ts'
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

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    batch: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    policies: { type: 'string', default: '100000' },
    'cpu-prof': { type: 'string' },
    only: { type: 'string' },
  },
})
const SECONDS = Number(args.seconds)
const CONCURRENCY = Number(args.concurrency)
const BATCH = Number(args.batch)
const ROUNDS = Number(args.rounds)
const BIG = Number(args.policies)
const SMALL = 1000
const ONLY = args.only?.split(',')
for (const [name, v] of Object.entries({ SECONDS, CONCURRENCY, BATCH, ROUNDS, BIG })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bad --${name.toLowerCase()}`)
}
const RPC_MS = SECONDS * 1000
const MAX_CALLS = 1_000_000

type Authz = PromiseClient<typeof pb.AuthorizationService>

/** Policy i: RETRIEVE for one AE, CREATE for gateways from 10/8; admins manage it. */
function makePolicy(i: number): AccessControlPolicy {
  return {
    id: `acp-${i}`,
    privileges: {
      accessControlRule: [
        { accessControlOriginators: [`//sp.example/in-cse/Cae${i}`], accessControlOperations: 2 },
        {
          accessControlOriginators: [`/in-cse/Cgw*`],
          accessControlOperations: 1,
          accessControlContexts: [{ accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'] } }],
        },
      ],
    },
    selfPrivileges: {
      accessControlRule: [{ accessControlOriginators: ['/in-cse/admin'], accessControlOperations: 63 }],
    },
  }
}

/** Requests listing 2 policies of `count`; even ones permit (the second policy's AE), odd ones deny. */
function makeRequests(count: number, n: number): AccessRequest[] {
  const time = new Date()
  return Array.from({ length: n }, (_, j): AccessRequest => {
    const a = (j * 7919) % count
    const b = (j * 104_729 + 13) % count
    return {
      originator: j % 2 === 0 ? `//sp.example/in-cse/Cae${b}` : `//other.example/x/C${j}`,
      operation: 'retrieve',
      targetPolicyIds: [`acp-${a}`, `acp-${b}`],
      authenticated: true,
      context: { time },
      host: { spId: 'sp.example', cseId: 'in-cse' },
    }
  })
}

const toPbCheck = (r: AccessRequest): pb.CheckRequest =>
  pb.CheckRequest.fromPartial({
    originator: r.originator,
    operation: pb.Operation.OPERATION_RETRIEVE,
    targetPolicyIds: [...r.targetPolicyIds],
    authenticated: true,
    host: { spId: 'sp.example', cseId: 'in-cse' },
  })

/**
 * The authz-owned part of a Check in this process: decode the request bytes, the gRPC handler
 * (mapping, validation, decision, audit sampling; the audit sink is a no-op, so DENY records
 * cost nothing here), encode the response. Everything the runtime and grpc-js add around it
 * (authentication, tracing, metrics, HTTP/2) is not in this row.
 */
async function measureHandler(count: number, durationMs: number): Promise<Measurement> {
  const index = compilePolicies(Array.from({ length: count }, (_, i) => makePolicy(i)))
  const unused = (): never => {
    throw new Error('not used by Check')
  }
  const ops = createAuthzOperations({
    store: { get: unused, create: unused, update: unused, delete: unused, list: unused },
    index: { forTenant: () => index },
    audit: { append: () => Promise.resolve() },
    clock: systemClock,
    sampler: { next: Math.random },
    allowSampleRate: 0.01,
  })
  const handlers = createAuthzGrpcService(ops)
  const ctx = {
    principal: { tenant: 'demo', id: 'dev-admin', roles: ['admin'], via: 'dev' },
    requestId: 'bench',
    peer: 'ipv4:127.0.0.1:50000',
    method: '/m2msec.authz.v1.Authorization/Check',
    signal: new AbortController().signal,
    log: createLogger({ level: 'silent', service: 'bench' }),
    metadata: new grpc.Metadata(),
  } as unknown as CallContext
  const wire = makeRequests(count, 10_000).map((r) => Buffer.from(pb.CheckRequest.encode(toPbCheck(r)).finish()))
  let n = 0
  return measure(
    `Check handler in process (decode, handler, encode; no audit I/O), ${count.toLocaleString('en-US')} policies`,
    async () => {
      const res = await handlers.check(pb.CheckRequest.decode(wire[n++ % wire.length] as Buffer), ctx)
      pb.CheckResponse.encode(res).finish()
    },
    { concurrency: 1, durationMs },
  )
}

const toPbPolicy = (p: AccessControlPolicy): pb.AccessControlPolicy =>
  pb.AccessControlPolicy.fromPartial(p as unknown as Parameters<typeof pb.AccessControlPolicy.fromPartial>[0])

/** Cleanup steps, run in reverse order at the end and on failure. */
const cleanups: Array<{ name: string; run: () => unknown }> = []

async function startAuthzProcess(env: Record<string, string>, port: number): Promise<number> {
  const profile = args['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof']}`]
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', 'services/authz/src/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...(process.env as Record<string, string>), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (d: Buffer): void => void (output = (output + d.toString()).slice(-4000))
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const killOnExit = (): void => void child.kill('SIGKILL')
  process.once('exit', killOnExit)
  cleanups.push({
    name: 'authz process',
    run: async () => {
      process.off('exit', killOnExit)
      if (child.exitCode !== null || child.signalCode !== null) return
      const done = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await done
      clearTimeout(timer)
    },
  })
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`authz exited:\n${output}`)
    const status = await grpcHealthCheck(`127.0.0.1:${port}`, grpc.credentials.createInsecure()).catch(() => 'DOWN')
    if (status === 'SERVING') return child.pid ?? -1
    if (Date.now() > deadline) throw new Error(`authz did not become SERVING:\n${output}`)
    await sleep(100)
  }
}

/** Runs `op(i)` for i in [from, to) with `concurrency` in flight. */
async function pool(from: number, to: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = from
  const worker = async (): Promise<void> => {
    while (next < to) await op(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

async function main(): Promise<void> {
  const started = Date.now()
  const dir = await tmpDir('m2msec-bench-authz')
  cleanups.push({ name: 'temp dir', run: () => dir.cleanup() })
  const nats = await startNats()
  cleanups.push({ name: 'nats', run: () => nats.stop() })
  const devToken = randomBytes(24).toString('base64url')
  const tokenFile = join(dir.path, 'admin.token')
  await writeFile(tokenFile, devToken, { mode: 0o600 })
  const port = await freePort()
  const pid = await startAuthzProcess(
    {
      M2MSEC_AUTHZ_GRPC__PORT: String(port),
      M2MSEC_AUTHZ_NATS__SERVERS: JSON.stringify([nats.url]),
      M2MSEC_AUTHZ_AUTH__DEV_ADMIN_TOKEN_FILE: tokenFile,
      M2MSEC_AUTHZ_LOG__LEVEL: 'warn',
    },
    port,
  )
  const target = `127.0.0.1:${port}`
  const channel = new pb.AuthorizationClient(target, grpc.credentials.createInsecure())
  cleanups.push({ name: 'client', run: () => channel.close() })
  const authz: Authz = promiseClient(pb.AuthorizationService, channel)
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${devToken}`)
  const auth = { metadata }
  const healthCheck = (): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      channel.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        undefined,
        new grpc.Metadata(),
        {},
        (err, res) => (err || res === undefined ? reject(err ?? new Error('no response')) : resolve(res)),
      )
    })

  const cpu = { server: cpuProbe(pid), client: cpuProbe(), machine: machineCpuProbe() }
  const rpc = { concurrency: CONCURRENCY, durationMs: RPC_MS, maxCalls: MAX_CALLS, cpu }
  const rpcBatch = { ...rpc, opsPerCall: BATCH, maxCalls: Math.ceil(MAX_CALLS / BATCH), warmupCalls: CONCURRENCY * 2 }
  const load = async (from: number, to: number): Promise<number> => {
    const t0 = performance.now()
    await pool(from, to, CONCURRENCY, (i) =>
      authz.putPolicy(pb.PutPolicyRequest.fromPartial({ policy: toPbPolicy(makePolicy(i)) }), auth),
    )
    return ((to - from) * 1000) / (performance.now() - t0)
  }

  const phase = async (count: number): Promise<Measurement[]> => {
    const requests = makeRequests(count, 10_000).map(toPbCheck)
    let n = 0
    const checkOp = async (): Promise<void> => {
      const res = await authz.check(requests[n++ % requests.length] as pb.CheckRequest, auth)
      if (res.decision === pb.Decision.DECISION_UNSPECIFIED) throw new Error('no decision')
    }
    const batches = Array.from({ length: 50 }, (_, k) =>
      pb.BatchCheckRequest.fromPartial({ items: requests.slice(k * BATCH, (k + 1) * BATCH) }),
    )
    let nb = 0
    const batchOp = async (): Promise<void> => {
      const res = await authz.batchCheck(batches[nb++ % batches.length] as pb.BatchCheckRequest, auth)
      if (res.results.length !== BATCH || res.results.some((r) => r.outcome?.$case !== 'result')) {
        throw new Error('BatchCheck: an item failed')
      }
    }
    // The decisions must be what the requests were built for: permit, deny, permit, ...
    const first = await authz.check(requests[0] as pb.CheckRequest, auth)
    const second = await authz.check(requests[1] as pb.CheckRequest, auth)
    if (first.decision !== pb.Decision.DECISION_PERMIT || second.decision !== pb.Decision.DECISION_DENY) {
      throw new Error(`unexpected decisions at ${count} policies`)
    }
    const getReq = pb.GetPolicyRequest.fromPartial({ policyId: 'acp-0' })
    const k = count >= 100_000 ? `${count / 1000}k` : count.toLocaleString('en-US')
    const jobs: Job[] = [
      { name: `Health/Check (no auth), ${k} policies`, op: healthCheck, opts: rpc },
      { name: `GetPolicy (auth, no decision), ${k} policies`, op: () => authz.getPolicy(getReq, auth), opts: rpc },
      { name: `Check, ${k} policies`, op: checkOp, opts: rpc },
      { name: `BatchCheck x${BATCH}, ${k} policies`, op: batchOp, opts: rpcBatch },
    ]
    process.stderr.write(`measuring with ${count} policies in ${ROUNDS} interleaved rounds\n`)
    if (ONLY !== undefined) {
      const keep = ['health', 'get', 'check', 'batch'].map((name) => ONLY.includes(name))
      return measureRounds(
        jobs.filter((_, i) => keep[i]),
        ROUNDS,
        (round, partial) =>
          process.stderr.write(`  round ${round}: ${partial.map((m) => Math.round(m.perSecond)).join(', ')}\n`),
      )
    }
    return measureRounds(jobs, ROUNDS, (round, partial) => {
      process.stderr.write(`  round ${round}: ${partial.map((m) => Math.round(m.perSecond)).join(', ')}\n`)
    })
  }

  process.stderr.write(`authz pid ${pid} on ${target}; loading ${SMALL} policies\n`)
  const loadSmall = await load(0, SMALL)
  const small = await phase(SMALL)
  if (ONLY !== undefined) {
    if (ONLY.includes('handler')) small.push(await measureHandler(SMALL, RPC_MS))
    console.log(
      formatTable(
        small.map((m) => ({ group: '1k policies', m })),
        { cores: ['server', 'client', 'machine'], perOp: ['server', 'client'] },
      ),
    )
    return
  }
  const [h1, g1, c1, b1] = small as [Measurement, Measurement, Measurement, Measurement]
  process.stderr.write(`loading ${BIG - SMALL} more policies\n`)
  const loadBig = await load(SMALL, BIG)
  const [h2, g2, c2, b2] = (await phase(BIG)) as [Measurement, Measurement, Measurement, Measurement]

  process.stderr.write('measuring the embedded engine in process\n')
  const embedded = (count: number): Measurement => {
    const index = compilePolicies(Array.from({ length: count }, (_, i) => makePolicy(i)))
    const requests = makeRequests(count, 10_000)
    let n = 0
    const m = measureSync(
      `decide() in process, ${count.toLocaleString('en-US')} policies`,
      () => decide(index, requests[n++ % requests.length] as AccessRequest),
      { durationMs: Math.max(1000, RPC_MS * 0.75) },
    )
    return m
  }
  const e1 = embedded(SMALL)
  const e2 = embedded(BIG)
  const hd1 = await measureHandler(SMALL, Math.max(1000, RPC_MS * 0.75))
  const hd2 = await measureHandler(BIG, Math.max(1000, RPC_MS * 0.75))

  const rows: TableRow[] = [
    { group: '1k policies', m: h1 },
    { group: '1k policies', m: g1, vs: h1 },
    { group: '1k policies', m: c1, vs: h1 },
    { group: '1k policies', m: b1, vs: c1 },
    { group: `${BIG} policies`, m: h2 },
    { group: `${BIG} policies`, m: g2, vs: h2 },
    { group: `${BIG} policies`, m: c2, vs: h2 },
    { group: `${BIG} policies`, m: b2, vs: c2 },
    { group: 'in process', m: e1 },
    { group: 'in process', m: e2, vs: e1 },
    { group: 'in process', m: hd1 },
    { group: 'in process', m: hd2, vs: hd1 },
  ]
  const verdict = (ok: boolean): string => (ok ? 'met' : '**NOT MET**')
  const rate = (m: Measurement): string => `${Math.round(m.perSecond).toLocaleString('en-US')}/s`
  const r1 = c1.perSecond / h1.perSecond
  const r2 = c2.perSecond / h2.perSecond
  const raw = c2.perSecond / c1.perSecond
  const norm = r2 / r1
  const serverUs = (m: Measurement): number => ((m.cpu['server'] ?? NaN) * 1e6) / m.perSecond
  const targets = [
    `- Check >= 0.85 x empty call (Health/Check), 1k policies: ${rate(c1)} / ${rate(h1)} = ${r1.toFixed(2)} -> ${verdict(r1 >= 0.85)} (vs GetPolicy ${(c1.perSecond / g1.perSecond).toFixed(2)})`,
    `- same at ${BIG} policies: ${rate(c2)} / ${rate(h2)} = ${r2.toFixed(2)} -> ${verdict(r2 >= 0.85)} (vs GetPolicy ${(c2.perSecond / g2.perSecond).toFixed(2)})`,
    `- Check at ${BIG} policies no more than 10% slower than at 1k: raw ${rate(c2)} / ${rate(c1)} = ${raw.toFixed(2)}; normalised by each set's empty call ${norm.toFixed(2)} -> ${verdict(norm >= 0.9)}` +
      ` (p50 ${c1.p50Ms.toFixed(2)} -> ${c2.p50Ms.toFixed(2)} ms, p99 ${c1.p99Ms.toFixed(2)} -> ${c2.p99Ms.toFixed(2)} ms; server µs per Check ${serverUs(c1).toFixed(0)} -> ${serverUs(c2).toFixed(0)})`,
    `- (embedded decide(): ${rate(e1)} at 1k, ${rate(e2)} at ${BIG}, ratio ${(e2.perSecond / e1.perSecond).toFixed(2)}; BatchCheck x${BATCH} / Check: ${(b1.perSecond / c1.perSecond).toFixed(1)} at 1k, ${(b2.perSecond / c2.perSecond).toFixed(1)} at ${BIG})`,
  ]
  console.log(`# Authz benchmark

Load: closed loop, ${CONCURRENCY} calls in flight over one HTTP/2 connection (grpc-js via promiseClient), plaintext gRPC on loopback with the development bearer token; RPC rows ${SECONDS} s each in ${ROUNDS} interleaved rounds per policy count, after warm-ups. The authz service runs in its own process (NATS JetStream policy bucket and audit log, no OTLP endpoint, so no OpenTelemetry SDK). Check requests list 2 policies each (half permit, half deny, spread over all policies). Policies loaded with PutPolicy at ${CONCURRENCY} in flight: ${Math.round(loadSmall)}/s for the first ${SMALL}, ${Math.round(loadBig)}/s for the next ${BIG - SMALL}. ops/s count decisions (a batch of ${BATCH} counts ${BATCH}); p50/p99 are per call. Ratio = ops/s of the row / ops/s of "vs".

${formatTable(rows, { cores: ['server', 'client', 'machine'], perOp: ['server', 'client'] })}

## Targets

${targets.join('\n')}

Node ${process.version}, ${cpus().length} cores, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} at the end; run took ${Math.round((Date.now() - started) / 1000)} s.`)
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
