/**
 * Closed-loop load generator for benchmarks: `concurrency` workers call `op` back to back for
 * `durationMs` after a warm-up, recording each call's latency. Bounded in count and time.
 */
import { performance } from 'node:perf_hooks'

export interface Measurement {
  readonly name: string
  readonly calls: number
  readonly errors: number
  readonly perSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Operations per call (batch size), so rates can be given per operation. */
  readonly opsPerCall: number
}

export interface MeasureOptions {
  readonly concurrency: number
  readonly durationMs: number
  readonly warmupCalls?: number
  readonly maxCalls?: number
  readonly opsPerCall?: number
}

export async function measure(name: string, op: () => Promise<unknown>, opts: MeasureOptions): Promise<Measurement> {
  const warmup = opts.warmupCalls ?? Math.min(500, opts.concurrency * 20)
  for (let i = 0; i < warmup; i += opts.concurrency) {
    await Promise.all(Array.from({ length: opts.concurrency }, () => op()))
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
  const elapsed = (performance.now() - start) / 1000
  if (errors > 0 && latencies.length === 0) throw new Error(`${name}: every call failed`, { cause: firstError })
  latencies.sort((a, b) => a - b)
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN
  const opsPerCall = opts.opsPerCall ?? 1
  return {
    name,
    calls: latencies.length,
    errors,
    perSecond: (latencies.length * opsPerCall) / elapsed,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    opsPerCall,
  }
}

/** Prints measurements as a table, with each row's ratio to a named baseline row. */
export function printTable(title: string, rows: readonly Measurement[], baseline?: (m: Measurement) => Measurement | undefined): void {
  const lines = [
    `\n## ${title}\n`,
    '| operation | ops/s | p50 ms | p99 ms | calls | errors | ratio | vs |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ]
  for (const r of rows) {
    const b = baseline?.(r)
    const ratio = b === undefined || b === r ? '' : (r.perSecond / b.perSecond).toFixed(2)
    lines.push(
      `| ${r.name} | ${Math.round(r.perSecond)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.calls} | ${r.errors} | ${ratio} | ${b === undefined || b === r ? '' : b.name} |`,
    )
  }
  console.log(lines.join('\n'))
}
