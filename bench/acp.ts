/**
 * Micro benchmark of the embedded decision engine (not a test).
 *
 *   node --import tsx bench/acp.ts [seconds-per-run]
 *
 * Builds indexes of 1k and 100k policies (3 rules each: an exact-id rule with a time window,
 * a wildcard rule with an IPv4 context, a role rule with a circle) and decides requests that
 * each list 2 policies, about half of which permit. Prints decisions per second, the ratio of
 * 100k to 1k, compile time and heap growth. Inputs come from a fixed-seed generator, so runs
 * differ only by machine noise.
 */
import { compilePolicies, decide, type AccessControlPolicy, type AccessRequest } from '@m2msec/acp'

const SECONDS = Number(process.argv[2] ?? '1.5')

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function makePolicy(i: number): AccessControlPolicy {
  return {
    id: `acp-${i}`,
    privileges: {
      accessControlRule: [
        {
          accessControlOriginators: [`//sp.example/cse${i % 50}/Cae${i}`],
          accessControlOperations: 2 | 4,
          accessControlContexts: [{ accessControlWindow: ['* * 0-23 * * * *'] }],
        },
        {
          accessControlOriginators: [`/cse${i % 50}/Cgw*`],
          accessControlOperations: 1,
          accessControlContexts: [{ accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'] } }],
          accessControlObjectDetails: [{ childResourceType: [4] }],
        },
        {
          accessControlOriginators: [`R-ops-${i % 10}`],
          accessControlOperations: 2,
          accessControlAuthenticationFlag: true,
          accessControlContexts: [{ accessControlLocationRegion: { circRegion: [48.85, 2.35, 50_000] } }],
        },
      ],
    },
    selfPrivileges: {
      accessControlRule: [{ accessControlOriginators: ['/cse0/admin'], accessControlOperations: 63 }],
    },
  }
}

function makeRequests(policyCount: number, n: number): AccessRequest[] {
  const next = rng(42)
  const time = new Date('2025-03-04T02:03:04Z')
  const out: AccessRequest[] = []
  for (let j = 0; j < n; j++) {
    const a = Math.floor(next() * policyCount)
    const b = Math.floor(next() * policyCount)
    const kind = Math.floor(next() * 4)
    const base = {
      targetPolicyIds: [`acp-${a}`, `acp-${b}`],
      authenticated: true,
      host: { spId: 'sp.example', cseId: `cse${b % 50}` },
    }
    if (kind === 0) {
      // Permit by the exact-id rule of policy b (after policy a did not apply).
      out.push({
        ...base,
        originator: `//sp.example/cse${b % 50}/Cae${b}`,
        operation: 'retrieve',
        context: { time },
      })
    } else if (kind === 1) {
      // CREATE by a gateway matching the wildcard, from 10/8.
      out.push({
        ...base,
        originator: `Cgw${j}`,
        operation: 'create',
        createdResourceType: 4,
        context: { time, ipAddress: '10.1.2.3' },
      })
    } else if (kind === 2) {
      // Role rule with a location: permit when the role matches.
      out.push({
        ...base,
        originator: `/cse7/Cx${j}`,
        operation: 'retrieve',
        roleIds: [`R-ops-${b % 10}`],
        context: { time, location: { lat: 48.9, lon: 2.4 } },
      })
    } else {
      // Deny: nothing matches, every rule of both policies is evaluated.
      out.push({
        ...base,
        originator: `//other.example/cseX/C${j}`,
        operation: 'delete',
        context: { time, ipAddress: '192.168.1.1' },
      })
    }
  }
  return out
}

interface Result {
  readonly policies: number
  readonly compileMs: number
  readonly heapMb: number
  readonly perSecond: number
  readonly explainPerSecond: number
  readonly permitShare: number
}

function run(policyCount: number): Result {
  globalThis.gc?.()
  const heapBefore = process.memoryUsage().heapUsed
  const policies = Array.from({ length: policyCount }, (_, i) => makePolicy(i))
  const t0 = performance.now()
  const index = compilePolicies(policies)
  const compileMs = performance.now() - t0
  policies.length = 0
  globalThis.gc?.()
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6

  const requests = makeRequests(policyCount, 20_000)
  let permits = 0
  for (const r of requests) if (decide(index, r).decision === 'permit') permits++

  const measure = (explain: boolean): number => {
    let count = 0
    let sink = 0
    const end = performance.now() + SECONDS * 1000
    const start = performance.now()
    while (performance.now() < end) {
      for (let i = 0; i < 1000; i++) {
        const d = decide(index, requests[(count + i) % requests.length] as AccessRequest, {
          explain,
        })
        sink += d.reasons.length
      }
      count += 1000
    }
    const elapsed = (performance.now() - start) / 1000
    if (sink < 0) console.log(sink)
    return count / elapsed
  }
  measure(false) // warm-up
  return {
    policies: policyCount,
    compileMs,
    heapMb,
    perSecond: measure(false),
    explainPerSecond: measure(true),
    permitShare: permits / requests.length,
  }
}

const results = [run(1_000), run(100_000)]
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
console.log(`@m2msec/acp decide(): 2 policies per request, 3 rules per policy, ${SECONDS}s per measurement`)
console.log('policies  compile(ms)  heap(MB)  permits  decisions/s  explain decisions/s')
for (const r of results) {
  console.log(
    `${fmt(r.policies).padStart(8)}  ${r.compileMs.toFixed(0).padStart(11)}  ${r.heapMb.toFixed(1).padStart(8)}  ${(r.permitShare * 100).toFixed(0).padStart(6)}%  ${fmt(r.perSecond).padStart(11)}  ${fmt(r.explainPerSecond).padStart(19)}`,
  )
}
const [small, large] = results as [Result, Result]
console.log(`ratio 100k/1k decisions/s: ${(large.perSecond / small.perSecond).toFixed(3)}`)
