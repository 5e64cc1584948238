/**
 * Process lifecycle for a service's main: run setup, then wait for SIGTERM/SIGINT and undo the
 * setup in reverse order (server first, then bus, then telemetry), each step with a timeout.
 */
import type { Logger } from './logger.ts'

/** Something to stop at shutdown: a function or an object with `shutdown()` (e.g. the gRPC server). */
export type ShutdownHook = (() => unknown) | { shutdown(): unknown }

/** Registers a hook; hooks run in reverse order of registration. */
export type OnShutdown = (hook: ShutdownHook, name?: string) => void

/** Where signals come from (the process, or an EventEmitter in tests). */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
  removeListener(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
}

/** Options of {@link runUntilSignal}; the defaults suit production. */
export interface RunUntilSignalOptions {
  /** Longest wait for one hook before moving on (default 15 s). */
  readonly hookTimeoutMs?: number
  /** Default SIGTERM and SIGINT. */
  readonly signals?: readonly NodeJS.Signals[]
  /** Test hooks: the signal source and the exit function (default: the process's). */
  readonly signalSource?: SignalSource
  readonly exit?: (code: number) => void
}

/**
 * Runs `setup`, then keeps the process alive until SIGTERM/SIGINT, runs the registered hooks
 * in reverse order (each bounded by `hookTimeoutMs`; failures are logged and skipped) and
 * exits 0. A setup failure is logged, the hooks registered so far run, and the process exits 1.
 * A second signal during shutdown exits 1 at once. Resolves with the exit code (tests).
 *
 * @example
 * ```ts
 * await runUntilSignal(log, async (onShutdown) => {
 *   onShutdown(startTelemetry({ serviceName: 'kms', ...config.telemetry }), 'telemetry')
 *   const server = createGrpcServer(config.grpc, { log, authenticator })
 *   onShutdown(server, 'grpc')
 *   await server.listen()
 * })
 * ```
 */
export async function runUntilSignal(
  log: Logger,
  setup: (onShutdown: OnShutdown) => Promise<void>,
  opts: RunUntilSignalOptions = {},
): Promise<number> {
  const hookTimeoutMs = opts.hookTimeoutMs ?? 15_000
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT']
  const source = opts.signalSource ?? process
  const exit = opts.exit ?? ((code: number) => process.exit(code))
  const hooks: { hook: ShutdownHook; name: string }[] = []
  let shuttingDown: Promise<void> | undefined
  let signalled!: (signal: NodeJS.Signals) => void
  const received = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve))

  const runHooks = async (): Promise<void> => {
    for (const { hook, name } of [...hooks].reverse()) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), hookTimeoutMs)))
      try {
        const run = Promise.resolve().then(() => (typeof hook === 'function' ? hook() : hook.shutdown()))
        const outcome = await Promise.race([run, timeout])
        if (outcome === 'timeout') log.warn({ hook: name, timeoutMs: hookTimeoutMs }, 'shutdown step timed out')
      } catch (err) {
        log.error({ hook: name, err }, 'shutdown step failed')
      } finally {
        clearTimeout(timer)
      }
    }
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown !== undefined) {
      log.warn({ signal }, 'second signal during shutdown, exiting now')
      exit(1)
      return
    }
    log.info({ signal }, 'shutting down')
    shuttingDown = runHooks()
    signalled(signal)
  }
  for (const s of signals) source.on(s, onSignal)
  // Keeps the event loop alive while waiting, even if setup opened nothing that does.
  const keepAlive = setInterval(() => {}, 1 << 30)
  const done = (code: number): number => {
    clearInterval(keepAlive)
    exit(code)
    // Only reached when `exit` returns (tests); in production a late signal meets our handler.
    for (const s of signals) source.removeListener(s, onSignal)
    return code
  }

  try {
    await setup((hook, name) => hooks.push({ hook, name: name ?? `hook ${hooks.length + 1}` }))
  } catch (err) {
    log.error({ err }, 'startup failed')
    shuttingDown ??= runHooks()
    await shuttingDown
    return done(1)
  }
  await received
  await shuttingDown
  return done(0)
}
