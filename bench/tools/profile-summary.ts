/**
 * Summarises a V8 CPU profile of the KMS server (`npm run bench -- kms --cpu-prof DIR`, or
 * `node --cpu-prof`) by component: each busy sample goes to the innermost stack frame that
 * belongs to a known component (SE, audit, NATS, pino, OpenTelemetry, grpc-js, …).
 *
 *   node --import tsx bench/tools/profile-summary.ts FILE.cpuprofile [--skip 5] [--tail 2] [--us 300]
 *
 * `--skip`/`--tail` drop the first/last seconds (start-up, shutdown); `--us` scales the shares
 * to a measured CPU cost per operation.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

// AsyncLocalStorage / async_hooks bookkeeping (OpenTelemetry's context manager turns it on).
const ASYNC_HOOK_FUNCTIONS = new Set([
  'promiseInitHook',
  'promiseBeforeHook',
  'promiseAfterHook',
  'promiseResolveHook',
  'lookupPublicResource',
  '_propagate',
  'emitInitNative',
  'emitInitScript',
  'init',
  'emitBeforeScript',
  'emitAfterScript',
  'executionAsyncResource',
  'getStore',
])

/** Components, most specific first; a frame belongs to the first that matches. */
const COMPONENTS: ReadonlyArray<readonly [string, (fn: string, url: string) => boolean]> = [
  ['async_hooks / AsyncLocalStorage', (fn, url) => url.includes('async_hooks') && ASYNC_HOOK_FUNCTIONS.has(fn)],
  ['SE modules (crypto, RNG)', (_, u) => u.includes('services/kms/src/se/')],
  [
    'audit (bus audit.ts, audit-sink, domain/audit.ts)',
    (_, u) => /libs\/bus\/src\/audit\.ts|events\/audit-sink\.ts|domain\/audit\.ts/.test(u),
  ],
  ['NATS client', (_, u) => u.includes('@nats-io')],
  [
    'key lookup and access checks',
    (_, u) => /domain\/access\.ts|store\/key-store\.ts|libs\/bus\/src\/tokens\.ts/.test(u),
  ],
  ['other KMS domain', (_, u) => u.includes('services/kms/src/domain')],
  ['KMS gRPC handlers and mapping', (_, u) => u.includes('services/kms/src/grpc')],
  ['protobuf codec', (_, u) => u.includes('libs/proto/src') || u.includes('@bufbuild/protobuf')],
  ['pino (child loggers, redaction)', (_, u) => u.includes('/pino/') || u.includes('@pinojs')],
  ['OpenTelemetry', (_, u) => u.includes('@opentelemetry')],
  ['authentication (runtime auth.ts)', (_, u) => u.includes('libs/runtime/src/grpc/auth.ts')],
  ['runtime call wrapper (server.ts, errors.ts)', (_, u) => /libs\/runtime\/src\/grpc\/(server|errors)\.ts/.test(u)],
  ['grpc-js', (_, u) => u.includes('@grpc/grpc-js')],
  [
    'node http2 / net / streams',
    (_, u) => /^node:(internal\/)?(http2|net|streams?|stream_base)/.test(u) || u.includes('stream_base'),
  ],
]

/** Shares of busy samples per component, largest first. */
export function summarizeProfile(
  profile: Profile,
  skipUs = 0,
  tailUs = 0,
): { busy: number; total: number; shares: [string, number][] } {
  let t = 0
  const times = profile.timeDeltas.map((d) => (t += d))
  const end = times.at(-1) ?? 0
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const counts = new Map<string, number>()
  let busy = 0
  let total = 0
  profile.samples.forEach((leafId, i) => {
    const at = times[i] ?? 0
    if (at < skipUs || at > end - tailUs) return
    total++
    const leaf = byId.get(leafId)
    const leafName = leaf?.callFrame.functionName ?? ''
    if (leafName === '(idle)') return
    busy++
    let component = leafName === '(garbage collector)' ? 'GC' : leafName === '(program)' ? 'V8 (program)' : undefined
    for (let id: number | undefined = leafId; component === undefined && id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame
      if (frame !== undefined) component = COMPONENTS.find(([, test]) => test(frame.functionName, frame.url))?.[0]
    }
    component ??= 'other'
    counts.set(component, (counts.get(component) ?? 0) + 1)
  })
  const shares = [...counts].map(([k, v]): [string, number] => [k, v / Math.max(1, busy)]).sort((a, b) => b[1] - a[1])
  return { busy, total, shares }
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { skip: { type: 'string', default: '0' }, tail: { type: 'string', default: '0' }, us: { type: 'string' } },
})
const file = positionals[0]
if (file === undefined) {
  console.error('usage: profile-summary.ts FILE.cpuprofile [--skip s] [--tail s] [--us µs-per-op]')
  process.exitCode = 2
} else {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const { busy, total, shares } = summarizeProfile(profile, Number(values.skip) * 1e6, Number(values.tail) * 1e6)
  const us = values.us === undefined ? undefined : Number(values.us)
  console.log(`${busy} busy of ${total} samples (${((100 * busy) / Math.max(1, total)).toFixed(0)}% busy)`)
  for (const [name, share] of shares) {
    console.log(
      `${(100 * share).toFixed(1).padStart(5)}%${us === undefined ? '' : `${(share * us).toFixed(0).padStart(5)} µs`}  ${name}`,
    )
  }
}
