/**
 * EST enrolment benchmark on its own (not a test): `npm run bench -- bootstrap-est` or
 * `node --import tsx bench/bootstrap-est.ts [--seconds 5] [--concurrency 16] [--tokens 6000]`.
 * See bench/lib/est-bench.ts for what is measured.
 */
import { parseArgs } from 'node:util'
import { runEstBench } from './lib/est-bench.ts'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '6000' },
  },
})
const result = await runEstBench({
  durationMs: Number(values.seconds) * 1000,
  concurrency: Number(values.concurrency),
  tokens: Number(values.tokens),
})
console.log(`\nratio EST / (sign + verify): ${result.ratio.toFixed(3)} (target >= 0.5)`)
