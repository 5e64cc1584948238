/**
 * Runs the real KMS service (`services/kms/src/main.ts`) as a child process, configured
 * through its environment variables exactly as an operator would, for tests of services that
 * call the KMS over gRPC (authn, bootstrap, groups).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { M2msecError } from '@m2msec/errors'
import type { DevPki } from './dev-pki.ts'
import { exited, tail, terminate, track } from './processes.ts'
import { tmpDir } from './tmp-dir.ts'

/** The repository root (libs/testkit/src is three levels down). */
const REPO_ROOT = join(import.meta.dirname, '..', '..', '..')

/** Options of {@link startKmsProcess}. */
export interface StartKmsProcessOptions {
  /** NATS server URL (e.g. `startNats().url`). */
  readonly natsUrl: string
  /**
   * Serve TLS with the development PKI's server certificate and accept client certificates
   * signed by its CA as callers (`auth.mtls`; certificates optional, so bearer tokens work
   * too). Without it the KMS serves plaintext on 127.0.0.1.
   */
  readonly pki?: DevPki
  /** File with the software SE's base64 master key. Default: a new random key in a temp dir. */
  readonly masterKeyFile?: string
  /** File with a development admin bearer token (`auth.devAdminTokenFile`). */
  readonly devAdminTokenFile?: string
  /** Tenant of that token. Default `demo`. */
  readonly devTenant?: string
  /** gRPC port; 0 (default) lets the KMS pick one, read back from its `kms ready` log line. */
  readonly port?: number
  /** Extra environment (e.g. `M2MSEC_KMS_LOG__LEVEL`); this process's environment is inherited. */
  readonly env?: Readonly<Record<string, string>>
  /** How long to wait for `kms ready`. Default 30 s. */
  readonly startTimeoutMs?: number
}

/** A running KMS child process. */
export interface KmsProcess {
  /** `localhost:<port>` (the name the development server certificate carries; the KMS listens on 127.0.0.1). */
  readonly target: string
  readonly port: number
  readonly pid: number
  /** The last 200 lines the process wrote (JSON log lines). */
  output(): string
  /** SIGTERM, SIGKILL after 10 s, then removes the temp dir. Idempotent. */
  stop(): Promise<void>
}

/** The `host:port` of a `kms ready` JSON log line, or undefined for any other line. */
function readyAddress(line: string): string | undefined {
  if (!line.includes('kms ready')) return undefined
  try {
    const entry = JSON.parse(line) as { msg?: unknown; grpc?: unknown }
    return entry.msg === 'kms ready' && typeof entry.grpc === 'string' ? entry.grpc : undefined
  } catch {
    return undefined
  }
}

/**
 * Spawns `node --import tsx services/kms/src/main.ts` with the `software` secure environment,
 * and resolves once it logged `kms ready` (its gRPC port is taken from that line). The child
 * is SIGKILLed if this process exits without stopping it.
 *
 * @example
 * ```ts
 * const nats = await startNats()
 * const pki = await createDevPki(join(dir.path, 'pki'))
 * const kms = await startKmsProcess({ natsUrl: nats.url, pki })
 * after(() => kms.stop())
 * const creds = grpc.credentials.createSsl(Buffer.from(pki.caCertPem), clientKey, clientCert)
 * const client = new KeyManagementClient(kms.target, creds)
 * ```
 */
export async function startKmsProcess(opts: StartKmsProcessOptions): Promise<KmsProcess> {
  const dir = await tmpDir('m2msec-kms-process')
  try {
    const masterKeyFile = opts.masterKeyFile ?? join(dir.path, 'master.key')
    if (opts.masterKeyFile === undefined) {
      await writeFile(masterKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 })
    }
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      M2MSEC_KMS_GRPC__PORT: String(opts.port ?? 0),
      M2MSEC_KMS_NATS__SERVERS: JSON.stringify([opts.natsUrl]),
      M2MSEC_KMS_SECURE_ENVIRONMENTS: JSON.stringify([
        { name: 'software', type: 'software', options: { masterKeyFile } },
      ]),
      M2MSEC_KMS_INSTANCE_ID: `kms-test-${randomBytes(3).toString('hex')}`,
      M2MSEC_KMS_LOG__LEVEL: 'info',
      ...(opts.pki === undefined
        ? {}
        : {
            M2MSEC_KMS_GRPC__TLS__CERT_FILE: opts.pki.paths.serverCert,
            M2MSEC_KMS_GRPC__TLS__KEY_FILE: opts.pki.paths.serverKey,
            M2MSEC_KMS_GRPC__TLS__CA_FILE: opts.pki.paths.caCert,
            M2MSEC_KMS_GRPC__TLS__REQUIRE_CLIENT_CERT: 'false',
            M2MSEC_KMS_AUTH__MTLS: 'true',
          }),
      ...(opts.devAdminTokenFile === undefined
        ? {}
        : { M2MSEC_KMS_AUTH__DEV_ADMIN_TOKEN_FILE: opts.devAdminTokenFile }),
      ...(opts.devTenant === undefined ? {} : { M2MSEC_KMS_AUTH__DEV_TENANT: opts.devTenant }),
      ...opts.env,
    }
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/kms/src/main.ts'], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    track(child)
    const log = tail(200)
    let stopped = false
    const stop = async (): Promise<void> => {
      if (stopped) return
      stopped = true
      await terminate(child, 'SIGTERM', 10_000)
      await dir.cleanup()
    }

    const address = await new Promise<string>((resolve, reject) => {
      let partial = ''
      const timer = setTimeout(
        () => reject(new M2msecError('ERR_UNAVAILABLE', `the KMS did not log "kms ready" in time:\n${log.text()}`)),
        opts.startTimeoutMs ?? 30_000,
      )
      const onData = (d: Buffer) => {
        log.push(d)
        const lines = (partial + d.toString()).split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) {
          const found = readyAddress(line)
          if (found !== undefined) {
            clearTimeout(timer)
            resolve(found)
          }
        }
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', (d: Buffer) => log.push(d))
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(new M2msecError('ERR_UNAVAILABLE', 'cannot start the KMS process', {}, { cause: err }))
      })
      void exited(child).then(() => {
        clearTimeout(timer)
        reject(new M2msecError('ERR_UNAVAILABLE', `the KMS process exited during start:\n${log.text()}`))
      })
    }).catch(async (err: unknown) => {
      await stop()
      throw err
    })
    const port = Number(/:(\d+)$/.exec(address)?.[1] ?? NaN)
    return { target: `localhost:${port}`, port, pid: child.pid ?? -1, output: () => log.text(), stop }
  } catch (err) {
    await dir.cleanup()
    throw err
  }
}
