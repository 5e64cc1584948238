/**
 * Runs the KMS service (`services/kms/src/main.ts`) in a child process, configured through its
 * environment variables exactly as an operator would, so a benchmark's load generator and the
 * server do not share one event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import * as grpc from '@grpc/grpc-js'
import { grpcHealthCheck } from '@m2msec/testkit'

/** The repository root (bench/lib/ is two levels down). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** What {@link startKmsProcess} needs. Secrets are passed as file paths only. */
export interface KmsProcessOptions {
  readonly port: number
  readonly natsUrl: string
  /** The `secureEnvironments` setting (serialised to JSON). */
  readonly secureEnvironments: readonly unknown[]
  /** A file holding the development admin bearer token. */
  readonly devAdminTokenFile: string
  /** Extra environment (e.g. SOFTHSM2_CONF); the bench process's environment is inherited. */
  readonly env?: Readonly<Record<string, string>>
  /** Write a V8 CPU profile of the server into this folder (written when it exits). */
  readonly cpuProfDir?: string
  /** How long to wait for the health check to say SERVING. Default 30 s. */
  readonly startTimeoutMs?: number
}

/** A running KMS child process. */
export interface KmsProcess {
  /** `127.0.0.1:<port>`. */
  readonly target: string
  readonly pid: number
  /** SIGTERM (graceful: the CPU profile is written), SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void>
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/**
 * Spawns `node --import tsx services/kms/src/main.ts` and resolves once its standard health
 * check answers SERVING. The child is SIGKILLed if this process exits without stopping it.
 */
export async function startKmsProcess(o: KmsProcessOptions): Promise<KmsProcess> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...o.env,
    M2MSEC_KMS_GRPC__PORT: String(o.port),
    M2MSEC_KMS_NATS__SERVERS: JSON.stringify([o.natsUrl]),
    M2MSEC_KMS_SECURE_ENVIRONMENTS: JSON.stringify(o.secureEnvironments),
    M2MSEC_KMS_AUTH__DEV_ADMIN_TOKEN_FILE: o.devAdminTokenFile,
    M2MSEC_KMS_LOG__LEVEL: 'warn',
  }
  const args = ['--import', 'tsx']
  if (o.cpuProfDir !== undefined) args.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`)
  args.push('services/kms/src/main.ts')
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const killOnExit = (): void => void child.kill('SIGKILL')
  process.once('exit', killOnExit)
  let output = ''
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let spawnError: Error | undefined
  child.once('error', (err) => (spawnError = err))

  const target = `127.0.0.1:${o.port}`
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit)
    const done = exited(child)
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await done
    clearTimeout(timer)
  }

  const deadline = Date.now() + (o.startTimeoutMs ?? 30_000)
  const insecure = grpc.credentials.createInsecure()
  for (;;) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      await stop()
      throw new Error(`the KMS process failed to start:\n${output}`, { cause: spawnError })
    }
    const status = await grpcHealthCheck(target, insecure).catch(() => 'DOWN')
    if (status === 'SERVING') break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`the KMS process did not become SERVING on ${target}:\n${output}`)
    }
    await sleep(100)
  }
  return { target, pid: child.pid ?? -1, stop }
}
