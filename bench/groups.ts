/**
 * Group credentials benchmark (not a test): the cost of a membership change with the logical
 * key hierarchy against a flat rekey, in the pure library and through the KMS GroupKeys API,
 * and of one group authentication against n individual ones.
 *
 *   npm run bench -- groups [--reps 100] [--flat-reps-100k 1] [--auth-reps 7]
 *     [--service-sizes 10,1000,100000] [--service-changes 100] [--service-block 10]
 *     [--tables library,service,auth,state] [--cpu-prof DIR]
 *
 * library: per n = 10, 1k, 100k, envelopes and milliseconds (CPU of this process and wall
 * time) per leave and per join, each including planning, member wrap-key derivation (KM =
 * HKDF, KW = HMAC) and sealing every envelope (AES-KW + AES-GCM JWE), all in this process.
 *
 * service: the same changes through the KMS GroupKeys gRPC API on a real nats-server and a
 * KMS child process with the software SE (bench/lib/groups-service.ts): member credentials are
 * KMS HMAC keys, the tree is built through ApplyMembershipChange (2,000 joins per call), then
 * single-member leaves and joins on the warm tree, each one RPC: envelopes, client wall time
 * and the KMS process's CPU (all threads, /proc/<pid>/stat, read per block of changes). At
 * n = 10 the credentials are imported with known bytes and every member opens the group key
 * from the service's envelopes with the library's `deriveMemberWrapKey` (before and after).
 * `--cpu-prof DIR` writes a V8 CPU profile of the KMS process into DIR.
 *
 * auth: for n = 1k, agent–server messages, server MAC computations and milliseconds of one
 * group authentication (all honest; one forged member found by bisection; fanout 16) against
 * n individual challenge–response authentications with the same primitives.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { constantTimeEqual } from '@m2msec/crypto'
import {
  answerChallenge,
  answerSubsetQuery,
  buildAggregate,
  buildVerdict,
  createFlatGroup,
  createGroupChallenge,
  createLkhTree,
  deriveGroupSessionKey,
  deriveMemberAuthKey,
  deriveMemberWrapKey,
  encodeFields,
  hmacSha256,
  LABELS,
  memberMacInput,
  restoreLkhTree,
  sealRekeyPlan,
  verifyAggregate,
  type LkhTree,
  type MemberAnswer,
} from '@m2msec/groupkeys'
import {
  buildTree,
  checkMembersOpen,
  createCredentials,
  importCredentials,
  measureChanges,
  startGroupsKms,
  type ChangeCost,
} from './lib/groups-service.ts'

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
function textOption(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback
}
const REPS = option('reps', 100)
const FLAT_REPS_100K = option('flat-reps-100k', 1)
const AUTH_REPS = option('auth-reps', 7)
const SERVICE_SIZES = textOption('service-sizes', '10,1000,100000').split(',').map(Number)
const SERVICE_CHANGES = option('service-changes', 100)
const SERVICE_BLOCK = option('service-block', 10)
const TABLES = new Set(textOption('tables', 'library,service,auth,state').split(','))
const CPU_PROF = textOption('cpu-prof', '')
for (const n of SERVICE_SIZES) if (!Number.isInteger(n) || n < 2) throw new Error('bad --service-sizes')

const GID = 'tenant-a/meters'
const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n))
/** Stands for the credential the KMS holds per member (a 32-byte key). */
const credentialOf = (id: string): Uint8Array => {
  const out = new Uint8Array(32)
  new TextEncoder().encodeInto(id.slice(-32).padEnd(32, '#'), out)
  return out
}
const memberId = (i: number): string => `//sp.example/cse-meters/Cmeter${i}`

interface Sample {
  envelopes: number
  cpuMs: number
  wallMs: number
}

/** One membership change as the server runs it: plan, derive member keys, seal everything. */
function change(tree: LkhTree, op: () => ReturnType<LkhTree['leave']>): Sample {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const plan = op()
  const sealed = sealRekeyPlan(plan, {
    keyOf: (r) => tree.keyOf(r),
    memberWrapKey: (m, e) => deriveMemberWrapKey(credentialOf(m), GID, e),
    random,
  })
  const wallMs = performance.now() - t0
  const c = process.cpuUsage(c0)
  return { envelopes: sealed.length, cpuMs: (c.user + c.system) / 1000, wallMs }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor((s.length - 1) / 2)] ?? NaN
}
const p95 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.95) - 1)] ?? NaN
}
const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0))
const int = (n: number): string => Math.round(n).toLocaleString('en-US')

interface Row {
  n: number
  scheme: string
  op: string
  reps: number
  envelopes: number
  cpuP50: number
  cpuP95: number
  wallP50: number
}

function measureScheme(n: number, scheme: 'LKH binary' | 'flat', reps: number): Row[] {
  const tree = scheme === 'flat' ? createFlatGroup({ groupId: GID, random }) : createLkhTree({ groupId: GID, random })
  const ids = Array.from({ length: n }, (_, i) => memberId(i))
  tree.batch({ joins: ids }) // initial distribution: not measured
  let next = n
  const leaves: Sample[] = []
  const joins: Sample[] = []
  // Warm-up (JIT, HKDF/cipher contexts), not recorded; a flat change at 100k warms itself.
  const warmUps = scheme === 'flat' && n >= 100_000 ? 0 : Math.min(5, reps)
  for (let i = 0; i < warmUps; i++) {
    const who = ids[(i * 7919) % ids.length]!
    change(tree, () => tree.leave(who))
    change(tree, () => tree.join(who))
  }
  for (let i = 0; i < reps; i++) {
    const members = tree.size
    const victim = ids[(i * 104_729 + 13) % ids.length]!
    if (!tree.has(victim)) continue
    leaves.push(change(tree, () => tree.leave(victim)))
    const joiner = memberId(next++)
    joins.push(change(tree, () => tree.join(joiner)))
    ids[(i * 104_729 + 13) % ids.length] = joiner
    if (tree.size !== members) throw new Error('size drifted')
  }
  const row = (op: string, s: Sample[]): Row => ({
    n,
    scheme,
    op,
    reps: s.length,
    envelopes: median(s.map((x) => x.envelopes)),
    cpuP50: median(s.map((x) => x.cpuMs)),
    cpuP95: p95(s.map((x) => x.cpuMs)),
    wallP50: median(s.map((x) => x.wallMs)),
  })
  return [row('leave', leaves), row('join', joins)]
}

function rekeyTable(): Row[] {
  const rows: Row[] = []
  for (const n of [10, 1_000, 100_000]) {
    const lkh = measureScheme(n, 'LKH binary', REPS)
    const flatReps = n >= 100_000 ? FLAT_REPS_100K : n >= 1_000 ? 20 : REPS
    const flat = measureScheme(n, 'flat', flatReps)
    rows.push(...lkh, ...flat)
  }
  console.log('\n## Rekey per membership change (plan + member-key HKDF + JWE A256KW sealing)\n')
  console.log(
    '| n | scheme | op | runs | envelopes | target 2·log2(n)+2 | CPU ms p50 | CPU ms p95 | wall ms p50 | flat / LKH (CPU p50) |',
  )
  console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) {
    const lkh = rows.find((x) => x.n === r.n && x.op === r.op && x.scheme === 'LKH binary')!
    const ratio = r.scheme === 'flat' ? (r.cpuP50 / lkh.cpuP50).toFixed(0) + '×' : ''
    const target = r.scheme === 'flat' ? '' : (2 * Math.log2(r.n) + 2).toFixed(1)
    console.log(
      `| ${int(r.n)} | ${r.scheme} | ${r.op} | ${r.reps} | ${int(r.envelopes)} | ${target} | ${fmt(r.cpuP50)} | ${fmt(r.cpuP95)} | ${fmt(r.wallP50)} | ${ratio} |`,
    )
  }
  return rows
}

/** Rekey through the KMS GroupKeys API, next to the library rows of the same run. */
async function serviceTable(library: readonly Row[]): Promise<void> {
  const log = (text: string): boolean => process.stderr.write(`${text}\n`)
  const kms = await startGroupsKms(CPU_PROF === '' ? {} : { cpuProfDir: CPU_PROF })
  const rows: { n: number; op: 'leave' | 'join'; cost: ChangeCost; buildS: number; rssMb: number }[] = []
  try {
    log(
      `service: KMS pid ${kms.pid}, software SE, ${SERVICE_CHANGES} leaves and joins per n, blocks of ${SERVICE_BLOCK}`,
    )
    // The first run only warms the KMS up (JIT, buckets, connections): not reported.
    const runs = [
      { n: 64, changes: 100, report: false },
      ...SERVICE_SIZES.map((n) => ({ n, changes: SERVICE_CHANGES, report: true })),
    ]
    for (const [run, { n, changes, report }] of runs.entries()) {
      const groupId = `bench-${run}-${n}`
      const warmup = Math.min(10, changes)
      const ids = Array.from({ length: n + changes + warmup }, (_, i) => `${memberId(i)}@${run}`)
      let t0 = performance.now()
      let credentials: Map<string, Uint8Array> | undefined
      let all
      if (n <= 100) {
        const imported = await importCredentials(kms, ids)
        all = imported.members
        credentials = imported.bytes
      } else {
        let last = 0
        all = await createCredentials(kms, ids, (done) => {
          if (done - last >= 10_000 || done === ids.length) {
            last = done
            log(
              `  n=${int(n)}: ${int(done)} / ${int(ids.length)} credential keys (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
            )
          }
        })
      }
      log(`  n=${int(n)}: credentials in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      const members = all.slice(0, n)
      const joiners = all.slice(n)
      t0 = performance.now()
      const built = await buildTree(kms, groupId, members, (done) => {
        if (n > 2000)
          log(`  n=${int(n)}: tree has ${int(done)} members (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
      })
      const buildS = (performance.now() - t0) / 1000
      log(`  n=${int(n)}: tree built in ${buildS.toFixed(1)} s (${built.epoch} changes)`)
      const current = () =>
        new Map(
          [...members].flatMap((m) =>
            credentials?.has(m.memberId) ? [[m.memberId, credentials.get(m.memberId)!]] : [],
          ),
        )
      if (credentials !== undefined)
        log(
          `  n=${int(n)}: ${await checkMembersOpen(kms, groupId, current())} members opened the group key (library KW)`,
        )
      const res = await measureChanges(kms, {
        groupId,
        epoch: built.epoch,
        members,
        joiners,
        changes,
        block: SERVICE_BLOCK,
        warmupChanges: warmup,
      })
      if (credentials !== undefined)
        log(
          `  n=${int(n)}: after the changes, ${await checkMembersOpen(kms, groupId, current())} members opened the group key (library KW)`,
        )
      const rssMb = kms.serverRssMb()
      if (report)
        rows.push({ n, op: 'leave', cost: res.leave, buildS, rssMb }, { n, op: 'join', cost: res.join, buildS, rssMb })
      log(`  n=${int(n)}: leave ${fmt(res.leave.serverCpuMs)} ms KMS CPU, join ${fmt(res.join.serverCpuMs)} ms`)
    }
  } finally {
    await kms.stop()
  }
  console.log('\n## Rekey through the KMS GroupKeys API (warm tree, software SE) vs the pure library\n')
  console.log(
    'One ApplyMembershipChange per single-member change. KMS CPU: CPU time of the KMS process (all threads) over the measured changes / changes; ' +
      'wall: at the gRPC client, including NATS KV writes. Library: the same plan + KW + sealing in this process (table above). ' +
      'Targets: envelopes ≤ 2·log2(n)+2, a leave at 100k under 10 ms of server compute.\n',
  )
  console.log(
    '| n | op | changes | envelopes p50 / max | target | KMS CPU ms / change | wall ms p50 | wall ms p95 | library envelopes | library CPU ms p50 | KMS / library CPU | tree build s | KMS RSS MB |',
  )
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) {
    const lib = library.find((x) => x.n === r.n && x.op === r.op && x.scheme === 'LKH binary')
    const target = 2 * Math.log2(r.n) + 2
    console.log(
      `| ${int(r.n)} | ${r.op} | ${r.cost.changes} | ${r.cost.envelopesP50} / ${r.cost.envelopesMax} | ${target.toFixed(1)} | ${fmt(r.cost.serverCpuMs)} | ${fmt(r.cost.wallP50Ms)} | ${fmt(r.cost.wallP95Ms)} | ${lib === undefined ? '' : int(lib.envelopes)} | ${lib === undefined ? '' : fmt(lib.cpuP50)} | ${lib === undefined ? '' : (r.cost.serverCpuMs / lib.cpuP50).toFixed(1) + '×'} | ${r.buildS.toFixed(1)} | ${r.rssMb.toFixed(0)} |`,
    )
  }
  for (const r of rows) {
    const target = 2 * Math.log2(r.n) + 2
    if (r.cost.envelopesMax > target)
      console.log(`\nNOT MET: n = ${int(r.n)} ${r.op}: ${r.cost.envelopesMax} envelopes > ${target.toFixed(1)}`)
  }
  const big = rows.find((r) => r.n === 100_000 && r.op === 'leave')
  if (big !== undefined) {
    console.log(
      `\nLeave at n = 100,000: ${fmt(big.cost.serverCpuMs)} ms KMS CPU per change: ${big.cost.serverCpuMs < 10 ? 'met' : 'NOT MET'} (target < 10 ms).`,
    )
  }
}

async function authTable(): Promise<void> {
  const n = 1_000
  const agentId = 'gw-1'
  const members = Array.from({ length: n }, (_, i) => memberId(i))
  const authKeys = new Map([...members, agentId].map((m) => [m, deriveMemberAuthKey(credentialOf(m), GID)]))
  const key = (id: string): Uint8Array => authKeys.get(id)!
  const group = new Set(members)
  // The KMS MAC call; the auth keys stand for key handles derived once per member.
  let macs = 0
  const macFor = (id: string, data: Uint8Array): Uint8Array => {
    macs++
    return hmacSha256(key(id), data)
  }

  interface AuthRun {
    messages: number
    macs: number
    accepted: number
    rejected: number
    cpuMs: number
  }
  /** One group authentication; members answer and the agent aggregates before the clock starts. */
  const groupRun = async (forged: number[], fanout: number): Promise<AuthRun> => {
    const challenge = createGroupChallenge({ groupId: GID, random, now: Date.now })
    const answers: MemberAnswer[] = members.map((m, i) => {
      const a = answerChallenge(challenge, m, key(m), random)
      return forged.includes(i) ? { ...a, mac: random(32) } : a
    })
    const response = buildAggregate(challenge, agentId, answers, key(agentId))
    let agentCpu = 0
    macs = 0
    const c0 = process.cpuUsage()
    const result = await verifyAggregate(challenge, response, {
      macFor,
      now: Date.now,
      isMember: (id) => group.has(id),
      fanout,
      querySubsets: (q) => {
        // The agent's work is not server CPU: take it out of the measurement.
        const a0 = process.cpuUsage()
        const reply = answerSubsetQuery(challenge, agentId, answers, q, key(agentId))
        const a = process.cpuUsage(a0)
        agentCpu += (a.user + a.system) / 1000
        return Promise.resolve(reply)
      },
    })
    const next = createGroupChallenge({ groupId: GID, random, now: Date.now })
    await buildVerdict(challenge, response, result, macFor, next)
    const accepted = new Set(result.accepted)
    for (const m of response.members) {
      if (accepted.has(m.memberId)) deriveGroupSessionKey(key(m.memberId), challenge, m.memberId, m.nonce)
    }
    const c = process.cpuUsage(c0)
    return {
      messages: result.messages,
      macs,
      accepted: result.accepted.length,
      rejected: result.rejected.length,
      cpuMs: (c.user + c.system) / 1000 - agentCpu,
    }
  }

  /** n challenge–response authentications, each with its own challenge, answer and verdict. */
  const individualRun = (): Promise<AuthRun> => {
    const challenges = members.map(() => createGroupChallenge({ groupId: GID, random, now: Date.now }))
    const answers = members.map((m, i) => answerChallenge(challenges[i]!, m, key(m), random))
    macs = 0
    let accepted = 0
    const c0 = process.cpuUsage()
    members.forEach((m, i) => {
      const challenge = challenges[i]!
      const answer = answers[i]!
      // Server: verify the MAC, prove the verdict, derive the session key, issue the next challenge.
      const ok = constantTimeEqual(macFor(m, memberMacInput(challenge, m, answer.nonce)), answer.mac)
      macFor(m, encodeFields(LABELS.serverVerdict, challenge.challenge, GID, m, ok ? 1 : 0))
      deriveGroupSessionKey(key(m), challenge, m, answer.nonce)
      createGroupChallenge({ groupId: GID, random, now: Date.now })
      if (ok) accepted++
    })
    const c = process.cpuUsage(c0)
    return Promise.resolve({
      messages: 2 * n,
      macs,
      accepted,
      rejected: n - accepted,
      cpuMs: (c.user + c.system) / 1000,
    })
  }

  const runs: [string, () => Promise<AuthRun>][] = [
    ['group, all honest', () => groupRun([], 2)],
    ['group, 1 forged, bisection', () => groupRun([537], 2)],
    ['group, 1 forged, fanout 16', () => groupRun([537], 16)],
    ['group, 4 forged, bisection', () => groupRun([3, 4, 500, 999], 2)],
    [`${int(n)} individual authentications`, individualRun],
  ]
  const results = new Map<string, AuthRun[]>()
  // Interleaved rounds, so background load on a shared machine hits every run alike; round 0 warms up.
  for (let round = 0; round <= AUTH_REPS; round++) {
    for (const [label, run] of runs) {
      const r = await run()
      if (round > 0) results.set(label, [...(results.get(label) ?? []), r])
    }
  }
  const rows = runs.map(([label]) => {
    const rs = results.get(label)!
    const r = rs[0]!
    return `| ${label} | ${int(r.messages)} | ${int(r.macs)} | ${r.accepted} | ${r.rejected} | ${fmt(median(rs.map((x) => x.cpuMs)))} |`
  })

  console.log(`\n## Authentication of n = ${int(n)} members behind one agent\n`)
  console.log(
    'Messages: agent–server messages from the members’ answers to the verdict (the challenge arrives in the previous verdict). ' +
      'Server MACs: HMAC calls into the KMS (member MACs, agent proofs, verdict proof; individual: member MAC and verdict proof each). ' +
      `Server CPU ms: median of ${AUTH_REPS} runs, server side only (members and agent excluded), including the session-key derivations.\n`,
  )
  console.log('| run | agent–server messages | server MACs | accepted | rejected | server CPU ms |')
  console.log('|---|---:|---:|---:|---:|---:|')
  for (const r of rows) console.log(r)
}

/** Size and cost of the stored state of a 100k tree (the service keeps it in KV). */
function stateTable(): void {
  const n = 100_000
  const ids = Array.from({ length: n }, (_, i) => memberId(i))
  const tree = createLkhTree({ groupId: GID, random })
  let t0 = performance.now()
  const first = tree.batch({ joins: ids })
  const buildMs = performance.now() - t0
  t0 = performance.now()
  const { state, secrets } = tree.toState()
  const stateJson = JSON.stringify(state)
  const secretsJson = JSON.stringify(secrets)
  const saveMs = performance.now() - t0
  t0 = performance.now()
  restoreLkhTree(JSON.parse(stateJson) as typeof state, JSON.parse(secretsJson) as typeof secrets, { random })
  const loadMs = performance.now() - t0
  console.log(`\n## State of a ${int(n)}-member tree\n`)
  console.log(
    '| initial batch join (plan only) | envelopes of the first distribution | structure JSON | node keys JSON | toState + stringify | parse + restore |',
  )
  console.log('|---:|---:|---:|---:|---:|---:|')
  console.log(
    `| ${fmt(buildMs)} ms | ${int(first.envelopes.length)} | ${(stateJson.length / 1e6).toFixed(1)} MB | ${(secretsJson.length / 1e6).toFixed(1)} MB | ${fmt(saveMs)} ms | ${fmt(loadMs)} ms |`,
  )
}

console.log(`bench/groups: node ${process.version}, ${REPS} LKH changes per n, flat at 100k: ${FLAT_REPS_100K}`)
const library = TABLES.has('library') ? rekeyTable() : []
if (TABLES.has('service')) await serviceTable(library)
if (TABLES.has('auth')) await authTable()
if (TABLES.has('state')) stateTable()
