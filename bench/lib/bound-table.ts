/**
 * A markdown table of measured rows against two bounds each (not a test): for bench/bootstrap.ts,
 * where every service row is compared with the raw crypto in process and with the same crypto
 * through the KMS RPCs the service cannot avoid.
 */
import type { Measurement } from './measure.ts'

/** One row: a measurement, its group label and the bounds it is compared with. */
export interface BoundRow {
  readonly group: string
  readonly m: Measurement
  /** Raw crypto in process. */
  readonly raw?: Measurement
  /** The same crypto through the KMS RPCs. */
  readonly kms?: Measurement
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const ms = (n: number): string => (Number.isFinite(n) ? (n < 1 ? n.toFixed(3) : n.toFixed(2)) : 'n/a')
const ratio = (m: Measurement, vs: Measurement | undefined): string =>
  vs === undefined ? '' : (m.perSecond / vs.perSecond).toFixed(3)
const perOp = (m: Measurement, probe: string): string => {
  const cores = m.cpu[probe]
  return cores === undefined || !Number.isFinite(cores) ? '' : ((cores * 1e6) / m.perSecond).toFixed(0)
}

/**
 * Formats the rows: ops/s, latency, CPU µs per operation of each probe in `probes`, and the
 * ratios to both bounds.
 *
 * @example
 * ```ts
 * console.log(formatBoundTable([{ group: 'EST', m: est, raw: ecdsa, kms: kmsSign }], ['bench', 'kms']))
 * ```
 */
export function formatBoundTable(rows: readonly BoundRow[], probes: readonly string[]): string {
  const lines = [
    `| group | operation | ops/s | p50 ms | p99 ms | calls | errors | ${probes.map((p) => `${p} µs/op | `).join('')}/ raw in process | / KMS-RPC bound |`,
    `|---|---|---:|---:|---:|---:|---:|${probes.map(() => '---:|').join('')}---:|---:|`,
  ]
  for (const { group, m, raw, kms } of rows) {
    lines.push(
      `| ${group} | ${m.name} | ${int(m.perSecond)} | ${ms(m.p50Ms)} | ${ms(m.p99Ms)} | ${int(m.calls)} | ${m.errors} | ${probes.map((p) => `${perOp(m, p)} | `).join('')}${ratio(m, raw)} | ${ratio(m, kms)} |`,
    )
  }
  return lines.join('\n')
}
