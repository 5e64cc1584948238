/**
 * CPU profiling of a benchmark's measured phase only (not a test): the V8 profiler of this
 * process through node:inspector, written as a `.cpuprofile` (open it in Chrome DevTools or
 * speedscope). Unlike `node --cpu-prof` it leaves out start-up, set-up and baselines.
 */
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'

/** A running profile; `stop()` writes it to `file` and returns the path. */
export interface CpuProfile {
  stop(): Promise<string>
}

/**
 * Starts the profiler (sampling every `intervalUs`, default 500 µs).
 *
 * @example
 * ```ts
 * const prof = await startCpuProfile('/tmp/bootstrap.cpuprofile')
 * await measureRounds(jobs, 3)
 * console.log(await prof.stop())
 * ```
 */
export async function startCpuProfile(file: string, intervalUs = 500): Promise<CpuProfile> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs })
  await session.post('Profiler.start')
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop')
      session.disconnect()
      await writeFile(file, JSON.stringify(profile))
      return file
    },
  }
}
