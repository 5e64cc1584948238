import type { ChildProcess } from 'node:child_process'
import { access, constants } from 'node:fs/promises'
import { delimiter, join } from 'node:path'

const live = new Set<ChildProcess>()
let exitHookInstalled = false

/**
 * Remembers a spawned child so that it is killed when this process exits, also when a test
 * crashes before its `after` hook runs: a leaked nats-server would keep its port and store.
 */
export function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL')
    })
  }
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** Resolves when `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * Sends `signal`, waits up to `graceMs` for the exit, then sends SIGKILL and waits again.
 */
export async function terminate(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  const done = exited(child)
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill(signal)
  let timer: NodeJS.Timeout | undefined
  const timedOut = await Promise.race([
    done.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
  ])
  clearTimeout(timer)
  if (timedOut) {
    child.kill('SIGKILL')
    await done
  }
}

/**
 * Finds an executable by name on PATH, then in the sbin folders that Debian uses for daemons
 * (they are often missing from a non-root PATH).
 */
export async function findExecutable(name: string): Promise<string | undefined> {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs) {
    if (dir === '') continue
    const candidate = join(dir, name)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {
      // not here; try the next folder
    }
  }
  return undefined
}

/** Keeps the last `max` lines of a stream, for error messages when a child dies. */
export function tail(max: number): { push(chunk: Buffer | string): void; text(): string } {
  const lines: string[] = []
  let partial = ''
  return {
    push(chunk) {
      const parts = (partial + chunk.toString()).split('\n')
      partial = parts.pop() ?? ''
      lines.push(...parts)
      if (lines.length > max) lines.splice(0, lines.length - max)
    },
    text: () => [...lines, partial].filter((l) => l !== '').join('\n'),
  }
}
