/**
 * Load generators and a table printer for benchmarks (not tests).
 *
 * - {@link measure}: closed loop, `concurrency` workers call an async `op` back to back for
 *   `durationMs` after a warm-up, recording each call's latency. Bounded in count and time.
 * - {@link measureRounds}: several such jobs measured in interleaved rounds (A B C A B C), so
 *   a change of background load on a shared machine hits every job alike and their ratios
 *   stay meaningful.
 * - {@link measureSync}: one synchronous function called in a tight loop on this thread (the
 *   raw rate of a native library, with no event loop in between).
 * - {@link cpuProbe}: CPU seconds used by a process, to show which side of a benchmark is busy.
 * - {@link formatTable} / {@link printTable}: one markdown table with ratios to baseline rows.
 */
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

/** The outcome of one measured row. Latencies are per call (a batch call counts once). */
export interface Measurement {
  readonly name: string
  readonly calls: number
  readonly errors: number
  /** Operations per second: calls per second times {@link Measurement.opsPerCall}. */
  readonly perSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Operations per call (batch size), so rates can be given per operation. */
  readonly opsPerCall: number
  /** CPU used while measuring, per probe, in cores (1 = one core busy all the time). */
  readonly cpu: Readonly<Record<string, number>>
}

/** Returns CPU seconds used so far by something (see {@link cpuProbe}). */
export type CpuProbe = () => number

/** Options of {@link measure}. */
export interface MeasureOptions {
  /** Calls in flight at any time (closed loop). */
  readonly concurrency: number
  readonly durationMs: number
  /** Calls before the clock starts. Default min(500, concurrency * 20). */
  readonly warmupCalls?: number
  /** Stop early after this many calls. Default 2 000 000. */
  readonly maxCalls?: number
  /** Operations per call, e.g. the batch size. Default 1. */
  readonly opsPerCall?: number
  /** CPU probes read before and after the timed phase, reported in {@link Measurement.cpu}. */
  readonly cpu?: Readonly<Record<string, CpuProbe>>
}

const CLOCK_TICKS_PER_SECOND = 100

/**
 * A probe of the CPU time of process `pid` (all its threads), from `/proc/<pid>/stat`
 * (Linux; 10 ms resolution), or of this process (`process.cpuUsage`) when `pid` is omitted.
 * Reads NaN when the process cannot be read.
 */
export function cpuProbe(pid?: number): CpuProbe {
  if (pid === undefined || pid === process.pid) {
    return () => {
      const u = process.cpuUsage()
      return (u.user + u.system) / 1e6
    }
  }
  return () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
    } catch {
      return NaN
    }
  }
}

/**
 * A probe of the CPU time used by the whole machine (all processes, all cores) from
 * `/proc/stat`: what other programs take shows up as the difference to the named probes.
 */
export function machineCpuProbe(): CpuProbe {
  return () => {
    try {
      const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
      const ticks = line.trim().split(/\s+/).slice(1).map(Number)
      // user nice system idle iowait irq softirq steal: busy = all but idle and iowait (guest time is inside user).
      const busy = ticks.slice(0, 8).reduce((a, b, i) => (i === 3 || i === 4 ? a : a + b), 0)
      return busy / CLOCK_TICKS_PER_SECOND
    } catch {
      return NaN
    }
  }
}

/** What one timed phase collected; phases of one job are added up. */
interface Sample {
  latencies: number[]
  errors: number
  firstError: unknown
  elapsedMs: number
  cpuSeconds: Record<string, number>
}

async function warmUp(op: () => Promise<unknown>, concurrency: number, calls: number): Promise<void> {
  for (let i = 0; i < calls; i += concurrency) {
    await Promise.all(Array.from({ length: Math.min(concurrency, calls - i) }, () => op()))
  }
}

/** Runs one timed phase of `op` and adds what it saw to `into`. */
async function timed(op: () => Promise<unknown>, opts: MeasureOptions, into: Sample): Promise<void> {
  const probes = Object.entries(opts.cpu ?? {})
  const cpuBefore = probes.map(([, read]) => read())
  const maxCalls = opts.maxCalls ?? 2_000_000
  const start = performance.now()
  const deadline = start + opts.durationMs
  const startCalls = into.latencies.length + into.errors
  async function worker(): Promise<void> {
    while (performance.now() < deadline && into.latencies.length + into.errors - startCalls < maxCalls) {
      const t0 = performance.now()
      try {
        await op()
        into.latencies.push(performance.now() - t0)
      } catch (err) {
        into.errors++
        into.firstError ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  into.elapsedMs += performance.now() - start
  probes.forEach(([label, read], i) => {
    into.cpuSeconds[label] = (into.cpuSeconds[label] ?? 0) + (read() - (cpuBefore[i] ?? NaN))
  })
}

function summarize(name: string, s: Sample, opsPerCall: number): Measurement {
  if (s.errors > 0 && s.latencies.length === 0) throw new Error(`${name}: every call failed`, { cause: s.firstError })
  const latencies = s.latencies.sort((a, b) => a - b)
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN
  const cpu: Record<string, number> = {}
  for (const [label, seconds] of Object.entries(s.cpuSeconds)) cpu[label] = seconds / (s.elapsedMs / 1000)
  return {
    name,
    calls: latencies.length,
    errors: s.errors,
    perSecond: (latencies.length * opsPerCall * 1000) / s.elapsedMs,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    opsPerCall,
    cpu,
  }
}

const emptySample = (): Sample => ({ latencies: [], errors: 0, firstError: undefined, elapsedMs: 0, cpuSeconds: {} })

/**
 * Runs `op` from `concurrency` workers for `durationMs` (after a warm-up) and returns its rate
 * and latency percentiles. Throws when every call failed; otherwise failed calls are counted.
 *
 * @example
 * ```ts
 * const m = await measure('Encrypt 1 KiB', () => kms.encrypt(req), { concurrency: 64, durationMs: 4000 })
 * ```
 */
export async function measure(name: string, op: () => Promise<unknown>, opts: MeasureOptions): Promise<Measurement> {
  await warmUp(op, opts.concurrency, opts.warmupCalls ?? Math.min(500, opts.concurrency * 20))
  const sample = emptySample()
  await timed(op, opts, sample)
  return summarize(name, sample, opts.opsPerCall ?? 1)
}

/** One job of {@link measureRounds}: `opts.durationMs` and `opts.maxCalls` are totals over all rounds. */
export interface Job {
  readonly name: string
  readonly op: () => Promise<unknown>
  readonly opts: MeasureOptions
}

/**
 * Measures every job in `rounds` interleaved rounds (each round gives each job
 * `durationMs / rounds`), after one warm-up per job, and returns one measurement per job in
 * order. `onRound` is told when a round ends (progress output).
 */
export async function measureRounds(
  jobs: readonly Job[],
  rounds: number,
  onRound?: (round: number, partial: readonly Measurement[]) => void,
): Promise<Measurement[]> {
  const samples = jobs.map(emptySample)
  for (const job of jobs) {
    await warmUp(job.op, job.opts.concurrency, job.opts.warmupCalls ?? Math.min(500, job.opts.concurrency * 20))
  }
  for (let r = 0; r < rounds; r++) {
    for (const [i, job] of jobs.entries()) {
      const slice: MeasureOptions = {
        ...job.opts,
        durationMs: job.opts.durationMs / rounds,
        maxCalls: Math.ceil((job.opts.maxCalls ?? 2_000_000) / rounds),
      }
      // A short re-warm after switching operations (other code paths, other caches).
      await warmUp(job.op, job.opts.concurrency, Math.min(job.opts.concurrency, 16))
      await timed(job.op, slice, samples[i] as Sample)
    }
    onRound?.(
      r + 1,
      jobs.map((job, i) =>
        summarize(
          job.name,
          { ...(samples[i] as Sample), latencies: [...(samples[i] as Sample).latencies] },
          job.opts.opsPerCall ?? 1,
        ),
      ),
    )
  }
  return jobs.map((job, i) => summarize(job.name, samples[i] as Sample, job.opts.opsPerCall ?? 1))
}

/** Options of {@link measureSync}. */
export interface MeasureSyncOptions {
  readonly durationMs: number
  /** Calls before the clock starts. Default 200. */
  readonly warmupCalls?: number
  /** Stop early after this many calls. Default 2 000 000. */
  readonly maxCalls?: number
}

/**
 * Calls the synchronous `op` back to back on this thread for `durationMs` (after a warm-up).
 * Errors are not caught: a raw library call that fails is a broken benchmark. Reports this
 * process's CPU as `client`.
 *
 * @example
 * ```ts
 * const m = measureSync('C_Sign ECDSA', () => p11.C_Sign(session, digest, out), { durationMs: 3000 })
 * ```
 */
export function measureSync(name: string, op: () => unknown, opts: MeasureSyncOptions): Measurement {
  for (let i = 0; i < (opts.warmupCalls ?? 200); i++) op()
  const sample = emptySample()
  const maxCalls = opts.maxCalls ?? 2_000_000
  const cpu = cpuProbe()
  const cpuBefore = cpu()
  const start = performance.now()
  const deadline = start + opts.durationMs
  let now = start
  while (now < deadline && sample.latencies.length < maxCalls) {
    op()
    const t = performance.now()
    sample.latencies.push(t - now)
    now = t
  }
  sample.elapsedMs = now - start
  sample.cpuSeconds['client'] = cpu() - cpuBefore
  return summarize(name, sample, 1)
}

/** One row of {@link formatTable}. */
export interface TableRow {
  readonly m: Measurement
  /** The row this one is compared with (ratio = ops/s of this row / ops/s of `vs`). */
  readonly vs?: Measurement
  /** Shown in the first column, e.g. `RPC software`. */
  readonly group?: string
}

const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtMs = (n: number): string => (Number.isFinite(n) ? (n < 1 ? n.toFixed(3) : n.toFixed(2)) : 'n/a')
const fmtNum = (n: number | undefined, digits: number): string =>
  n === undefined ? '' : Number.isFinite(n) ? n.toFixed(digits) : 'n/a'

/** Which CPU probes {@link formatTable} shows, and how. */
export interface TableColumns {
  /** Probes shown as cores busy (default: every probe of any row). */
  readonly cores?: readonly string[]
  /** Probes shown as CPU microseconds per operation (cores / ops per second). */
  readonly perOp?: readonly string[]
}

/**
 * Formats rows as one markdown table: ops/s per operation, latencies per call, CPU columns
 * (see {@link TableColumns}) and the ratio to each row's `vs`.
 */
export function formatTable(rows: readonly TableRow[], columns: TableColumns = {}): string {
  const cores = columns.cores ?? [...new Set(rows.flatMap((r) => Object.keys(r.m.cpu)))]
  const perOp = columns.perOp ?? []
  const heads = [...cores.map((p) => `${p} cores`), ...perOp.map((p) => `${p} µs/op`)]
  const lines = [
    `| group | operation | ops/s | p50 ms | p99 ms | calls | errors | ${heads.map((h) => `${h} | `).join('')}ratio | vs |`,
    `|---|---|---:|---:|---:|---:|---:|${heads.map(() => '---:|').join('')}---:|---|`,
  ]
  for (const { m, vs, group } of rows) {
    const ratio = vs === undefined ? '' : (m.perSecond / vs.perSecond).toFixed(2)
    const cells = [
      ...cores.map((p) => fmtNum(m.cpu[p], 2)),
      ...perOp.map((p) => {
        const c = m.cpu[p]
        return fmtNum(c === undefined ? undefined : (c * 1e6) / m.perSecond, 1)
      }),
    ]
    lines.push(
      `| ${group ?? ''} | ${m.name} | ${fmtInt(m.perSecond)} | ${fmtMs(m.p50Ms)} | ${fmtMs(m.p99Ms)} | ${fmtInt(m.calls)} | ${m.errors} | ${cells.map((c) => `${c} | `).join('')}${ratio} | ${vs?.name ?? ''} |`,
    )
  }
  return lines.join('\n')
}

/** Prints `## title` and the rows as a markdown table (see {@link formatTable}). */
export function printTable(title: string, rows: readonly TableRow[], columns?: TableColumns): void {
  console.log(`\n## ${title}\n\n${formatTable(rows, columns)}`)
}
