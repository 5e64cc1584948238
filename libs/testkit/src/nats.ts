import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { M2msecError } from '@m2msec/errors'
import { dockerAvailable } from './docker.ts'
import { freePort } from './net.ts'
import { exited, findExecutable, tail, terminate, track } from './processes.ts'
import { tmpDir, type TmpDir } from './tmp-dir.ts'

/** A running nats-server for one test file or suite. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string
  /** The client port on 127.0.0.1. */
  readonly port: number
  /** The JetStream store directory (kept across `kill()`/`restart()`). */
  readonly storeDir: string
  /** SIGTERM, wait for the exit, then remove the store if the testkit created it. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL (a crash): the store stays, so `restart()` can bring the same data back. */
  kill(): Promise<void>
  /** Stops the server if it runs (SIGTERM), then starts it again on the same port and store. */
  restart(): Promise<void>
}

/** Options of {@link startNats}. */
export interface StartNatsOptions {
  /** Enable JetStream (`-js`). Default true. */
  jetstream?: boolean
  /** JetStream store directory. Default: a new temp dir, removed by `stop()`. */
  storeDir?: string
  /** How long to wait for the server to report healthy. Default 10 s. */
  startTimeoutMs?: number
}

const NATS_IMAGE = 'nats:2.9'
const STOP_GRACE_MS = 5_000

/**
 * Starts a real nats-server on 127.0.0.1 on free ports, with JetStream storing into a temp
 * dir, and resolves once its `/healthz` monitor endpoint answers 200 (which, with JetStream
 * on, means JetStream is ready too).
 *
 * The local binary (`apt-get install nats-server`) is used when it is installed. Only when it
 * is missing and a container runtime is available (see {@link dockerAvailable}) does the
 * testkit fall back to testcontainers with the `nats:2.9` image; otherwise it throws
 * `ERR_UNAVAILABLE` saying how to install it. The local binary is preferred because it starts
 * in ~50 ms and `kill()` is a real SIGKILL of the server process.
 *
 * Always stop the server, also when the test fails (`after(() => nats.stop())`); a process
 * exit hook SIGKILLs any local server that is left over.
 *
 * @example
 * ```ts
 * const nats = await startNats()
 * after(() => nats.stop())
 * const nc = await connect({ servers: nats.url })
 * ```
 */
export async function startNats(opts: StartNatsOptions = {}): Promise<NatsServer> {
  const jetstream = opts.jetstream ?? true
  const timeoutMs = opts.startTimeoutMs ?? 10_000
  const owned: TmpDir | undefined = opts.storeDir === undefined ? await tmpDir('m2msec-nats') : undefined
  const storeDir = opts.storeDir ?? (owned as TmpDir).path
  await mkdir(storeDir, { recursive: true })
  const port = await freePort()
  const monitorPort = await freePort()
  try {
    const binary = process.env['NATS_SERVER_BIN'] ?? (await findExecutable('nats-server'))
    if (binary !== undefined) {
      return await startLocal({ binary, jetstream, storeDir, port, monitorPort, timeoutMs, owned })
    }
    if (await dockerAvailable()) {
      return await startContainer({ jetstream, storeDir, port, monitorPort, timeoutMs, owned })
    }
  } catch (err) {
    await owned?.cleanup()
    throw err
  }
  await owned?.cleanup()
  throw new M2msecError(
    'ERR_UNAVAILABLE',
    'nats-server is not installed and no container runtime is available; install it: apt-get install nats-server',
  )
}

interface LaunchOptions {
  jetstream: boolean
  storeDir: string
  port: number
  monitorPort: number
  timeoutMs: number
  owned: TmpDir | undefined
}

async function startLocal(o: LaunchOptions & { binary: string }): Promise<NatsServer> {
  const args = ['-a', '127.0.0.1', '-p', String(o.port), '-m', String(o.monitorPort)]
  if (o.jetstream) args.push('-js', '-sd', o.storeDir)
  let child: ChildProcess | undefined
  let stopped = false

  const launch = async (): Promise<void> => {
    const log = tail(20)
    const proc = spawn(o.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    track(proc)
    proc.stdout?.on('data', (d: Buffer) => log.push(d))
    proc.stderr?.on('data', (d: Buffer) => log.push(d))
    let failed = false
    const spawnError = new Promise<Error>((resolve) =>
      proc.once('error', (err) => {
        failed = true
        resolve(err)
      }),
    )
    child = proc
    const dead = (): boolean => failed || proc.exitCode !== null || proc.signalCode !== null
    const ready = waitHealthy(o.monitorPort, o.timeoutMs, dead)
    const outcome = await Promise.race([ready.then(() => undefined), spawnError])
    if (outcome instanceof Error) {
      throw new M2msecError(
        'ERR_UNAVAILABLE',
        `cannot run ${o.binary}; install it: apt-get install nats-server`,
        {},
        { cause: outcome },
      )
    }
    if (dead() || !(await ready)) {
      await terminate(proc, 'SIGKILL', 1_000)
      throw new M2msecError('ERR_UNAVAILABLE', `nats-server did not become healthy on port ${o.port}:\n${log.text()}`)
    }
  }

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    if (child !== undefined) await terminate(child, signal, STOP_GRACE_MS)
  }

  await launch()
  return {
    url: `nats://127.0.0.1:${o.port}`,
    port: o.port,
    storeDir: o.storeDir,
    async stop() {
      if (stopped) return
      stopped = true
      await halt('SIGTERM')
      await o.owned?.cleanup()
    },
    async kill() {
      if (child !== undefined) {
        child.kill('SIGKILL')
        await exited(child)
      }
    },
    async restart() {
      if (stopped) throw new M2msecError('ERR_FAILED_PRECONDITION', 'nats-server was stopped; start a new one')
      await halt('SIGTERM')
      await launch()
    },
  }
}

/**
 * Polls `/healthz` until it answers 200. Resolves false when the process died or the time ran
 * out, so the caller can report the server log.
 */
async function waitHealthy(monitorPort: number, timeoutMs: number, dead: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (dead()) return false
    try {
      const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, {
        signal: AbortSignal.timeout(1_000),
      })
      await res.body?.cancel()
      if (res.status === 200) return true
    } catch {
      // not listening yet
    }
    await sleep(20)
  }
  return false
}

/**
 * The container fallback. Host ports are bound explicitly so that `restart()` (a new container
 * on the same bind-mounted store) keeps the URL that clients were given.
 */
async function startContainer(o: LaunchOptions): Promise<NatsServer> {
  const { GenericContainer, Wait } = await import('testcontainers')
  type Started = Awaited<ReturnType<InstanceType<typeof GenericContainer>['start']>>
  const command = ['-m', '8222', ...(o.jetstream ? ['-js', '-sd', '/data'] : [])]
  const launch = (): Promise<Started> =>
    new GenericContainer(NATS_IMAGE)
      .withCommand(command)
      .withExposedPorts({ container: 4222, host: o.port }, { container: 8222, host: o.monitorPort })
      .withBindMounts([{ source: o.storeDir, target: '/data', mode: 'rw' }])
      .withWaitStrategy(Wait.forHttp('/healthz', 8222).forStatusCode(200))
      .withStartupTimeout(o.timeoutMs)
      .start()
  let container: Started | undefined = await launch()
  let stopped = false
  const halt = async (timeoutMs: number): Promise<void> => {
    const c = container
    container = undefined
    await c?.stop({ timeout: timeoutMs })
  }
  return {
    url: `nats://127.0.0.1:${o.port}`,
    port: o.port,
    storeDir: o.storeDir,
    async stop() {
      if (stopped) return
      stopped = true
      await halt(STOP_GRACE_MS)
      await o.owned?.cleanup()
    },
    kill: () => halt(0),
    async restart() {
      if (stopped) throw new M2msecError('ERR_FAILED_PRECONDITION', 'nats-server was stopped; start a new one')
      await halt(STOP_GRACE_MS)
      container = await launch()
    },
  }
}
