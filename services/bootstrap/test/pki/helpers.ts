/**
 * Test setup of the PKI component on real processes: nats-server, the KMS as a child process
 * (mTLS with the development PKI; the component reaches it as `m2msec://_platform/bootstrap`
 * with role `service`), the component's gRPC service on a real server, and its EST/CRL/OCSP
 * listeners on 127.0.0.1.
 */
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { PkiClient, PkiService } from '@m2msec/proto/bootstrap/v1'
import {
  createGrpcServer,
  createLogger,
  createServiceAuthenticator,
  fromGrpcError,
  grpcServerConfigSchema,
  promiseClient,
  serviceAuthConfigSchema,
  systemClock,
  type GrpcServer,
  type PromiseClient,
} from '@m2msec/runtime'
import { jetstreamManager } from '@nats-io/jetstream'
import { AUDIT_STREAM, connectNats, createAuditLog, createAuditSink, type NatsConnection } from '@m2msec/bus'
import {
  createDevPki,
  startKmsProcess,
  startNats,
  tmpDir,
  type DevPki,
  type KmsProcess,
  type NatsServer,
  type TmpDir,
} from '@m2msec/testkit'
import {
  createPkiComponent,
  createPkiKmsClient,
  pkiConfigSchema,
  type EstGbaAuthenticator,
  type PkiComponent,
  type PkiKmsClient,
} from '../../src/pki/index.ts'
import type { SourceLimit } from '../../src/http/source-limit.ts'

export type Pki = PromiseClient<typeof PkiService>

/** A running PKI test platform. */
export interface PkiPlatform {
  readonly dir: TmpDir
  readonly pki: DevPki
  readonly component: PkiComponent
  readonly kms: PkiKmsClient
  readonly estUrl: string
  readonly revocationUrl: string
  /** A Pki client authenticated as `m2msec://<tenant>/<principal>` with roles. */
  client(tenant: string, principal: string, roles: string[]): Promise<Pki>
  /** The `pki.*` audit records written so far (parsed stored lines). */
  auditRecords(): Promise<Array<Record<string, unknown>>>
  /** Writes a file into the temp dir; returns its path. */
  file(name: string, data: string | Uint8Array): string
  read(name: string): Buffer
  stop(): Promise<void>
}

/** Options of {@link startPkiPlatform}. */
export interface PkiPlatformOptions {
  readonly maxCsrBytes?: number
  readonly gba?: EstGbaAuthenticator
  readonly limit?: SourceLimit
}

export async function startPkiPlatform(opts: PkiPlatformOptions = {}): Promise<PkiPlatform> {
  const stops: Array<() => unknown> = []
  const stop = async () => {
    for (const s of stops.reverse()) {
      try {
        await s()
      } catch {
        // keep stopping the rest
      }
    }
    stops.length = 0
  }
  try {
    const dir = await tmpDir('bootstrap-pki')
    stops.push(() => dir.cleanup())
    const nats: NatsServer = await startNats()
    stops.push(() => nats.stop())
    const pki = await createDevPki(join(dir.path, 'dev-pki'))
    const kmsProcess: KmsProcess = await startKmsProcess({ natsUrl: nats.url, pki })
    stops.push(() => kmsProcess.stop())
    const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'bootstrap', roles: ['service'] })
    const certFile = join(dir.path, 'bootstrap-kms.pem')
    const keyFile = join(dir.path, 'bootstrap-kms.key')
    await writeFile(certFile, svc.certPem)
    await writeFile(keyFile, svc.keyPem, { mode: 0o600 })
    const kms = createPkiKmsClient({
      target: kmsProcess.target,
      tls: { caFile: pki.paths.caCert, certFile, keyFile },
      timeoutMs: 10_000,
    })
    stops.push(() => kms.close())
    const nc: NatsConnection = await connectNats({ servers: [nats.url], name: 'pki-test' })
    stops.push(() => nc.drain())
    const log = createLogger({ level: 'warn', service: 'pki-test' }, { write: () => undefined })
    const config = pkiConfigSchema.parse({
      est: {
        port: 0,
        tls: { certFile: pki.paths.serverCert, keyFile: pki.paths.serverKey },
        ...(opts.maxCsrBytes === undefined ? {} : { maxCsrBytes: opts.maxCsrBytes }),
      },
      revocation: { port: 0 },
    })
    const auditLog = await createAuditLog(nc, { source: 'pki-test' })
    stops.push(() => auditLog.close())
    const component = await createPkiComponent({
      config,
      nc,
      kms,
      log,
      audit: createAuditSink(auditLog, systemClock),
      ...(opts.gba === undefined ? {} : { gba: opts.gba }),
      ...(opts.limit === undefined ? {} : { limit: opts.limit }),
    })
    const { estUrl, revocationUrl } = await component.est.start()
    stops.push(() => component.est.stop())
    const server: GrpcServer = createGrpcServer(
      grpcServerConfigSchema({ port: 0 }).parse({
        port: 0,
        tls: {
          certFile: pki.paths.serverCert,
          keyFile: pki.paths.serverKey,
          caFile: pki.paths.caCert,
          requireClientCert: false,
        },
      }),
      { log, authenticator: createServiceAuthenticator(serviceAuthConfigSchema.parse({ mtls: true }), log) },
    )
    server.addUnaryService(PkiService, component.grpc)
    const address = await server.listen()
    stops.push(() => server.shutdown())
    const channels: grpc.Client[] = []
    stops.push(() => channels.forEach((c) => c.close()))
    return {
      dir,
      pki,
      component,
      kms,
      estUrl,
      revocationUrl,
      async client(tenant, principal, roles) {
        const cert = await pki.issueClientCert({ tenant, principal, roles })
        const creds = grpc.credentials.createSsl(
          Buffer.from(pki.caCertPem),
          Buffer.from(cert.keyPem),
          Buffer.from(cert.certPem),
        )
        const c = new PkiClient(`localhost:${address.port}`, creds)
        channels.push(c)
        return promiseClient(PkiService, c)
      },
      async auditRecords() {
        const jsm = await jetstreamManager(nc)
        const info = await jsm.streams.info(AUDIT_STREAM)
        const out: Array<Record<string, unknown>> = []
        for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
          const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq }).catch(() => null)
          if (m === null) continue
          for (const line of m.string().split('\n')) {
            const r = JSON.parse(line) as Record<string, unknown>
            if (String(r.action).startsWith('pki.')) out.push(r)
          }
        }
        return out
      },
      file(name, data) {
        const p = join(dir.path, name)
        writeFileSync(p, data)
        return p
      },
      read: (name) => readFileSync(join(dir.path, name)),
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** The M2msecError code of a rejected gRPC call, or `resolved`. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    const e = err as { code?: unknown }
    return typeof e.code === 'string' ? e.code : fromGrpcError(err as grpc.ServiceError).code
  }
  return 'resolved'
}

/**
 * Runs a program in `cwd`; stdout+stderr and exit status. Asynchronous on purpose: the servers
 * under test run in this process, so a synchronous spawn would block them.
 */
export function run(cmd: string, args: string[], cwd: string): Promise<{ out: string; status: number }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('close', (code) => resolve({ out, status: code ?? 1 }))
    child.on('error', (err) => resolve({ out: String(err), status: 1 }))
  })
}

/**
 * POSTs a file to an EST operation with curl; returns the HTTP status, the error code header
 * and the body file name (`<out>`).
 */
export async function curlEst(
  cwd: string,
  url: string,
  bodyFile: string,
  out: string,
  extra: string[] = [],
): Promise<{ http: number; code: string; headers: string }> {
  const r = await run(
    'curl',
    [
      '-sS',
      '--max-time',
      '30',
      '--cacert',
      'ca.pem',
      '-o',
      out,
      '-D',
      `${out}.headers`,
      '-w',
      '%{http_code}',
      '-H',
      'Content-Type: application/pkcs10',
      '--data-binary',
      `@${bodyFile}`,
      ...extra,
      url,
    ],
    cwd,
  )
  const headers = readFileSync(join(cwd, `${out}.headers`), 'utf8')
  const code = /^m2msec-error-code:\s*(\S+)/im.exec(headers)?.[1] ?? ''
  return { http: Number(r.out.trim().slice(-3)), code, headers }
}
