/**
 * Load generators and a table printer for benchmarks (not tests).
 *
 * - {@link measure}: closed loop, `concurrency` workers call an async `op` back to back for
 *   `durationMs` after a warm-up, recording each call's latency. Bounded in count and time.
 * - {@link measureSync}: one synchronous function called in a tight loop on this thread (the
 *   raw rate of a native library, with no event loop in between).
 * - {@link printTable}: one markdown table with each row's ratio to a baseline row.
 */
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
}

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
}

function summarize(name: string, latencies: number[], errors: number, elapsedMs: number, opsPerCall: number): Measurement {
  latencies.sort((a, b) => a - b)
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN
  return {
    name,
    calls: latencies.length,
    errors,
    perSecond: (latencies.length * opsPerCall * 1000) / elapsedMs,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    opsPerCall,
  }
}

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
  const warmup = opts.warmupCalls ?? Math.min(500, opts.concurrency * 20)
  for (let i = 0; i < warmup; i += opts.concurrency) {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, warmup - i) }, () => op()))
  }
  const latencies: number[] = []
  let errors = 0
  let firstError: unknown
  const maxCalls = opts.maxCalls ?? 2_000_000
  const start = performance.now()
  const deadline = start + opts.durationMs
  async function worker(): Promise<void> {
    while (performance.now() < deadline && latencies.length + errors < maxCalls) {
      const t0 = performance.now()
      try {
        await op()
        latencies.push(performance.now() - t0)
      } catch (err) {
        errors++
        firstError ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  const elapsed = performance.now() - start
  if (errors > 0 && latencies.length === 0) throw new Error(`${name}: every call failed`, { cause: firstError })
  return summarize(name, latencies, errors, elapsed, opts.opsPerCall ?? 1)
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
 * Errors are not caught: a raw library call that fails is a broken benchmark.
 *
 * @example
 * ```ts
 * const m = measureSync('C_Sign ECDSA', () => p11.C_Sign(session, digest, out), { durationMs: 3000 })
 * ```
 */
export function measureSync(name: string, op: () => unknown, opts: MeasureSyncOptions): Measurement {
  for (let i = 0; i < (opts.warmupCalls ?? 200); i++) op()
  const latencies: number[] = []
  const maxCalls = opts.maxCalls ?? 2_000_000
  const start = performance.now()
  const deadline = start + opts.durationMs
  let now = start
  while (now < deadline && latencies.length < maxCalls) {
    op()
    const t = performance.now()
    latencies.push(t - now)
    now = t
  }
  return summarize(name, latencies, 0, now - start, 1)
}

/** One row of {@link printTable}. */
export interface TableRow {
  readonly m: Measurement
  /** The row this one is compared with (ratio = ops/s of this row / ops/s of `vs`). */
  readonly vs?: Measurement
  /** Shown in the first column, e.g. `RPC software`. */
  readonly group?: string
}

const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmtMs = (n: number): string => (Number.isFinite(n) ? (n < 1 ? n.toFixed(3) : n.toFixed(2)) : 'n/a')

/** Formats rows as one markdown table (ops/s are per operation, latencies per call). */
export function formatTable(rows: readonly TableRow[]): string {
  const lines = [
    '| group | operation | ops/s | p50 ms | p99 ms | calls | errors | ratio | vs |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ]
  for (const { m, vs, group } of rows) {
    const ratio = vs === undefined ? '' : (m.perSecond / vs.perSecond).toFixed(2)
    lines.push(
      `| ${group ?? ''} | ${m.name} | ${fmtInt(m.perSecond)} | ${fmtMs(m.p50Ms)} | ${fmtMs(m.p99Ms)} | ${fmtInt(m.calls)} | ${m.errors} | ${ratio} | ${vs?.name ?? ''} |`,
    )
  }
  return lines.join('\n')
}

/** Prints `## title` and the rows as a markdown table (see {@link formatTable}). */
export function printTable(title: string, rows: readonly TableRow[]): void {
  console.log(`\n## ${title}\n\n${formatTable(rows)}`)
}
