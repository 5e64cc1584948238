/**
 * GBA bootstraps and EST enrolments per second against the cost of their crypto, measured in
 * the same run (issue 4). Each service row has two bounds:
 * - raw in process: the bare crypto on one thread of this process, no I/O: Milenage + the
 *   TS 33.220 KDF (@m2msec/crypto) for GBA; one ECDSA P-256 sign + verify (node:crypto) for EST.
 *   This is what the issue calls "the raw cost of their crypto".
 * - KMS-RPC bound: the same crypto through the KMS RPCs the service cannot avoid, because K/OPc,
 *   Ks and the CA keys never leave the KMS: Milenage keeping Ks + DeriveKey (GBA); one KMS Sign
 *   with the issuing CA key + a local verify (EST). Each call crosses gRPC/mTLS, and the KMS
 *   creates a key (Ks, Ks_NAF) in its own KV store and audits every call.
 *
 * Setup: nats-server, the KMS as a child process (software SE, mTLS), one bootstrap replica in
 * this process (Ub HTTP, gRPC, EST HTTPS), the simulated devices and NAF in this process too.
 * All rows run in interleaved rounds (A B C … A B C …), so background load on the shared machine
 * hits every row alike. "bench" CPU = this process (replica + clients); "kms" = the KMS process.
 *
 * Usage: `npm run bench -- bootstrap [--seconds 6] [--concurrency 16] [--tokens 8000]
 * [--rounds 3] [--cpu-prof file.cpuprofile] [--only est,estKms,...]`: the profile covers only
 * the measured rounds; `--only` times the named rows (gbaRaw, gbaKms, ub, ubZn, estRaw, estKms,
 * est), e.g. to profile one of them.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import { createLogger } from '@m2msec/runtime'
import { createDevPki, startKmsProcess, startNats, tmpDir } from '@m2msec/testkit'
import { bootstrapConfigSchema } from '../services/bootstrap/src/config.ts'
import { startBootstrap } from '../services/bootstrap/src/app.ts'
import { formatBoundTable, type BoundRow } from './lib/bound-table.ts'
import { startCpuProfile } from './lib/cpu-profile.ts'
import { setupEstLoad } from './lib/est-load.ts'
import { setupGbaLoad } from './lib/gba-load.ts'
import { cpuProbe, machineCpuProbe, measureRounds, type Job, type Measurement } from './lib/measure.ts'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    concurrency: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '8000' },
    rounds: { type: 'string', default: '3' },
    'cpu-prof': { type: 'string' },
    only: { type: 'string' },
  },
})
const SECONDS = Number(values.seconds)
const CONCURRENCY = Number(values.concurrency)
const TOKENS = Number(values.tokens)
const ROUNDS = Number(values.rounds)
const TENANT = 'acme'
const DOMAIN = 'acme.m2m.example'
const BSF_HOST = 'bsf.bench.example'
const NAF = 'naf.bench.example'

const dir = await tmpDir('bench-bootstrap')
const nats = await startNats()
const pki = await createDevPki(join(dir.path, 'pki'))
const kms = await startKmsProcess({ natsUrl: nats.url, pki })
const cleanups: Array<() => unknown> = []
const creds = async (principal: string, roles: string[]) => {
  const c = await pki.issueClientCert({ tenant: TENANT, principal, roles })
  return grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(c.keyPem), Buffer.from(c.certPem))
}
try {
  const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'bootstrap', roles: ['service'] })
  const certFile = join(dir.path, 'bsf.pem')
  const keyFile = join(dir.path, 'bsf.key')
  await writeFile(certFile, svc.certPem)
  await writeFile(keyFile, svc.keyPem, { mode: 0o600 })
  const kmsTls = { caFile: pki.paths.caCert, certFile, keyFile }
  const serverTls = { certFile: pki.paths.serverCert, keyFile: pki.paths.serverKey }
  const app = await startBootstrap(
    bootstrapConfigSchema.parse({
      instanceId: `bootstrap-bench-${randomBytes(3).toString('hex')}`,
      grpc: { port: 0, tls: { ...serverTls, caFile: pki.paths.caCert, requireClientCert: false } },
      auth: { mtls: true },
      ub: { port: 0 },
      // Every simulated device and EST client comes from 127.0.0.1: no per-source limit here.
      limits: { sourcePerSec: 0 },
      // No expiry sweep during the run: it lists and reads every session and challenge record
      // (thousands after a few rounds) and would land on whichever row runs at that moment.
      gba: { bsfHost: BSF_HOST, sweepMs: 3_600_000 },
      zn: { nafs: [{ principal: 'role:naf', fqdns: [NAF] }] },
      pki: { est: { port: 0, tls: serverTls }, revocation: { port: 0 } },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: kmsTls },
      log: { level: 'warn' },
    }),
    createLogger({ level: 'warn', service: 'bootstrap-bench' }),
  )
  cleanups.push(() => app.shutdown())
  if (app.pki === undefined) throw new Error('the replica started without its PKI part')
  const grpcTarget = `localhost:${app.address.port}`
  const kmsClient = { target: kms.target, tls: kmsTls, timeoutMs: 10_000 }

  const gba = await setupGbaLoad({
    tenant: TENANT,
    bsfHost: BSF_HOST,
    nafFqdn: NAF,
    ubUrl: app.ubUrl,
    grpcTarget,
    kmsTarget: kms.target,
    kmsClient,
    credentials: creds,
    devices: CONCURRENCY,
  })
  cleanups.push(() => gba.close())
  const est = await setupEstLoad({
    tenant: TENANT,
    domain: DOMAIN,
    estUrl: app.pki.estUrl,
    estCaPem: pki.caCertPem,
    grpcTarget,
    adminCredentials: await creds('ops', ['admin']),
    kmsClient,
    connections: CONCURRENCY,
    tokens: TOKENS,
  })
  cleanups.push(() => est.close())

  const cpu = { bench: cpuProbe(), kms: cpuProbe(kms.pid), machine: machineCpuProbe() }
  const durationMs = SECONDS * 1000
  const loaded = { concurrency: CONCURRENCY, durationMs, warmupCalls: CONCURRENCY * 2, cpu }
  const single = { concurrency: 1, durationMs, warmupCalls: 200, cpu }
  // Every round re-warms each job with up to 16 calls; the EST row stops when its tokens run out.
  const estCalls = TOKENS - CONCURRENCY * 2 - ROUNDS * 16 - CONCURRENCY
  const rows = {
    gbaRaw: { name: 'Milenage + KDF (@m2msec/crypto, 1 thread)', op: gba.inProcess, opts: single },
    gbaKms: { name: 'KMS Milenage (keep Ks) + DeriveKey KDF_3GPP', op: gba.kmsBound, opts: loaded },
    ub: { name: 'GBA bootstrap (Ub over HTTP)', op: gba.bootstrap, opts: loaded },
    ubZn: { name: 'GBA bootstrap + Zn Ks_NAF handle', op: gba.bootstrapAndZn, opts: loaded },
    estRaw: { name: 'ECDSA P-256 sign + verify (node:crypto, 1 thread)', op: est.inProcess, opts: single },
    estKms: { name: 'KMS Sign (issuing CA key) + local verify', op: est.kmsBound, opts: loaded },
    est: { name: 'EST simpleenroll (token, HTTPS keep-alive)', op: est.enrol, opts: { ...loaded, maxCalls: estCalls } },
  } satisfies Record<string, Job>
  type RowKey = keyof typeof rows
  const keys = (values.only?.split(',') ?? Object.keys(rows)) as RowKey[]
  for (const k of keys) if (!(k in rows)) throw new Error(`--only takes row keys: ${Object.keys(rows).join(', ')}`)
  const profile = values['cpu-prof'] === undefined ? undefined : await startCpuProfile(values['cpu-prof'])
  const measured = await measureRounds(
    keys.map((k) => rows[k]),
    ROUNDS,
    (round) => console.error(`round ${round}/${ROUNDS} done`),
  )
  if (profile !== undefined) console.error(`CPU profile: ${await profile.stop()}`)
  const m = Object.fromEntries(keys.map((k, i) => [k, measured[i]])) as Partial<Record<RowKey, Measurement>>
  const table: BoundRow[] = []
  const add = (group: string, row: Measurement | undefined, raw?: Measurement, kms?: Measurement) => {
    if (row !== undefined)
      table.push({ group, m: row, ...(raw === undefined ? {} : { raw }), ...(kms === undefined ? {} : { kms }) })
  }
  add('GBA raw', m.gbaRaw)
  add('GBA KMS-RPC', m.gbaKms, m.gbaRaw)
  add('GBA', m.ub, m.gbaRaw, m.gbaKms)
  add('GBA', m.ubZn, m.gbaRaw, m.gbaKms)
  add('EST raw', m.estRaw)
  add('EST KMS-RPC', m.estKms, m.estRaw)
  add('EST', m.est, m.estRaw, m.estKms)
  console.log(
    `\n## GBA and EST vs their crypto (concurrency ${CONCURRENCY}, ${SECONDS} s per row in ${ROUNDS} interleaved rounds)\n`,
  )
  console.log(formatBoundTable(table, ['bench', 'kms']))
  const verdict = (label: string, row: Measurement | undefined, bound: Measurement | undefined, boundName: string) => {
    if (row === undefined || bound === undefined) return []
    const r = row.perSecond / bound.perSecond
    return [
      `- ${label} / ${boundName}: ${row.perSecond.toFixed(0)} / ${bound.perSecond.toFixed(0)} = ${r.toFixed(3)} -> ${r >= 0.5 ? 'met' : 'NOT met'}`,
    ]
  }
  const machine = m.est?.cpu['machine']
  console.log(
    [
      '',
      'Target (issue 4): >= 0.5 x the raw cost of the crypto. Judged as the issue words it, against the',
      'raw crypto in process; the KMS-RPC bound is shown too because it is the physical minimum of this',
      'design (keys never leave the KMS), and against the in-process bound 0.5 is out of reach here.',
      ...verdict('GBA bootstrap + Zn', m.ubZn, m.gbaRaw, 'raw in process'),
      ...verdict('GBA bootstrap + Zn', m.ubZn, m.gbaKms, 'KMS-RPC bound'),
      ...verdict('EST simpleenroll', m.est, m.estRaw, 'raw in process'),
      ...verdict('EST simpleenroll', m.est, m.estKms, 'KMS-RPC bound'),
      ...(machine === undefined
        ? []
        : [`- machine CPU busy during the EST row: ${machine.toFixed(2)} cores (all processes on this machine).`]),
    ].join('\n'),
  )
} finally {
  for (const c of cleanups.reverse()) {
    try {
      await c()
    } catch {
      // keep cleaning up
    }
  }
  await kms.stop()
  await nats.stop()
  await dir.cleanup()
}
