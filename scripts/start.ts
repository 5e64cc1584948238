/**
 * `npm start`: the whole platform on this machine, for development.
 *
 * - keeps its state under `.data/` (JetStream store, development PKI, KMS master key, admin token);
 * - starts `nats-server` with JetStream on 127.0.0.1 (port 4222, or a free one if it is taken);
 * - starts every service that exists, each on its own port, with the development profile
 *   (plaintext gRPC on loopback, a static admin token, the `software` secure environment);
 * - prints where each API listens and how to call it; Ctrl-C stops everything cleanly.
 *
 * Options: --help, --data-dir DIR (default .data), --reset (wipe the data dir first).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { createDevPki } from '@m2msec/testkit'

const root = resolve(import.meta.dirname, '..')
const { values: args } = parseArgs({
  options: {
    help: { type: 'boolean', default: false },
    'data-dir': { type: 'string', default: join(root, '.data') },
    reset: { type: 'boolean', default: false },
  },
})
if (args.help) {
  console.log(`usage: npm start [-- --data-dir DIR] [-- --reset]

Runs nats-server (JetStream) and every m2msec service locally, development profile.
State lives in the data dir (default .data/); --reset wipes it first.`)
  process.exit(0)
}

/** The services `npm start` runs, with their default gRPC ports and service-specific settings. */
/** `env` gets the ports of the services started before it. */
const SERVICES: ReadonlyArray<{
  name: string
  port: number
  api: string
  env?: (ports: Readonly<Record<string, number>>) => Record<string, string>
}> = [
  {
    name: 'kms',
    port: 7001,
    api: 'm2msec.kms.v1.KeyManagement',
    env: () => ({
      M2MSEC_KMS_AUTH__DEV_ADMIN_TOKEN_FILE: join(dataDir, 'dev-admin.token'),
      ...acceptAuthnTokens('KMS'),
      M2MSEC_KMS_SECURE_ENVIRONMENTS: JSON.stringify([
        {
          name: 'software',
          type: 'software',
          options: { masterKeyFile: secretFile('kms-master.key', () => randomBytes(32).toString('base64')) },
        },
      ]),
    }),
  },
  {
    name: 'authz',
    port: 7002,
    api: 'm2msec.authz.v1.Authorization',
    env: () => ({
      M2MSEC_AUTHZ_AUTH__DEV_ADMIN_TOKEN_FILE: join(dataDir, 'dev-admin.token'),
      ...acceptAuthnTokens('AUTHZ'),
    }),
  },
  {
    name: 'authn',
    port: 7003,
    api: 'm2msec.authn.v1.Authentication',
    // Development: authn reaches the KMS with the development admin token (tenant demo only);
    // in production it uses an mTLS identity m2msec://_platform/authn (see services/authn/README.md).
    env: (ports) => ({
      M2MSEC_AUTHN_HTTP__PORT: String(jwksPort),
      M2MSEC_AUTHN_KMS__TARGET: `127.0.0.1:${ports.kms ?? 7001}`,
      M2MSEC_AUTHN_KMS__TOKEN_FILE: join(dataDir, 'dev-admin.token'),
      // The same development token is the platform operator in authn (manages tenants).
      M2MSEC_AUTHN_AUTH__DEV_TOKEN_FILE: join(dataDir, 'dev-admin.token'),
    }),
  },
  {
    name: 'bootstrap',
    port: 7004,
    api: 'm2msec.bootstrap.v1.{GbaSubscribers,GbaZn,Pki}',
    // GBA Ub over HTTP; the PKI's EST over HTTPS with the development server certificate (GBA
    // enrolment on, NAF FQDN 127.0.0.1), CRL and OCSP over HTTP. The TLS RSPF needs enrolees and
    // targets configured: off here (docs/rspf.md).
    env: (ports) => ({
      M2MSEC_BOOTSTRAP_UB__PORT: String(extraPorts.ub),
      M2MSEC_BOOTSTRAP_KMS__TARGET: `127.0.0.1:${ports.kms ?? 7001}`,
      M2MSEC_BOOTSTRAP_KMS__TOKEN_FILE: join(dataDir, 'dev-admin.token'),
      M2MSEC_BOOTSTRAP_AUTH__DEV_ADMIN_TOKEN_FILE: join(dataDir, 'dev-admin.token'),
      M2MSEC_BOOTSTRAP_PKI__EST__PORT: String(extraPorts.est),
      M2MSEC_BOOTSTRAP_PKI__EST__TLS__CERT_FILE: devPki.paths.serverCert,
      M2MSEC_BOOTSTRAP_PKI__EST__TLS__KEY_FILE: devPki.paths.serverKey,
      M2MSEC_BOOTSTRAP_PKI__REVOCATION__PORT: String(extraPorts.revocation),
      M2MSEC_BOOTSTRAP_GBA__EST_ENROLMENT: 'true',
    }),
  },
  {
    name: 'groups',
    port: 7005,
    api: 'm2msec.groups.v1.Groups',
    env: (ports) => ({
      M2MSEC_GROUPS_KMS__TARGET: `127.0.0.1:${ports.kms ?? 7001}`,
      M2MSEC_GROUPS_KMS__TOKEN_FILE: join(dataDir, 'dev-admin.token'),
      M2MSEC_GROUPS_AUTH__DEV_ADMIN_TOKEN_FILE: join(dataDir, 'dev-admin.token'),
    }),
  },
]

/**
 * The KMS and authz accept authn's access tokens: keys from its JWKS (authn serves it on
 * `jwksPort`; it starts after them, which is fine as verifiers fetch keys on first use), and
 * its default issuer and audience.
 */
function acceptAuthnTokens(service: 'KMS' | 'AUTHZ'): Record<string, string> {
  return {
    [`M2MSEC_${service}_AUTH__TOKENS__JWKS_URL`]: `http://127.0.0.1:${jwksPort}/.well-known/jwks.json`,
    [`M2MSEC_${service}_AUTH__TOKENS__ISSUER`]: 'm2msec-authn',
    [`M2MSEC_${service}_AUTH__TOKENS__AUDIENCE`]: 'm2msec',
  }
}

const dataDir = resolve(args['data-dir'])
if (args.reset) rmSync(dataDir, { recursive: true, force: true })
mkdirSync(join(dataDir, 'nats'), { recursive: true })

/** Creates a random secret file once (mode 0600) and returns its path. */
function secretFile(name: string, make: () => string | Buffer): string {
  const path = join(dataDir, name)
  if (!existsSync(path)) writeFileSync(path, make(), { mode: 0o600 })
  return path
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = createServer()
    s.once('error', () => ok(false))
    s.listen(port, '127.0.0.1', () => s.close(() => ok(true)))
  })
}

async function pickPort(preferred: number): Promise<number> {
  if (await portFree(preferred)) return preferred
  return new Promise((ok) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      s.close(() => ok(typeof addr === 'object' && addr !== null ? addr.port : 0))
    })
  })
}

const children: ChildProcess[] = []
let stopping = false

function run(name: string, command: string, argv: string[], env: Record<string, string> = {}): ChildProcess {
  // Own process group: Ctrl-C reaches only this script, which stops the children in order
  // (services first, nats-server last) with one SIGTERM each.
  const child = spawn(command, argv, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const prefix = `[${name}] `
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      // nats-server's banner and info lines drown the services' logs; keep its warnings and errors.
      if (line.length > 0 && !(name === 'nats' && line.includes('[INF]'))) process.stdout.write(prefix + line + '\n')
    }
  }
  child.stdout?.on('data', forward)
  child.stderr?.on('data', forward)
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${prefix}exited (${signal ?? code}); stopping the platform`)
      void stop(1)
    }
  })
  children.push(child)
  return child
}

async function stop(exitCode: number): Promise<void> {
  if (stopping) return
  stopping = true
  console.log('\nstopping…')
  // Services first (they drain their NATS connections), nats-server last.
  for (const child of [...children].reverse()) {
    if (child.exitCode !== null) continue
    child.kill('SIGTERM')
    await new Promise((r) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL')
        r(undefined)
      }, 15_000)
      child.once('exit', () => {
        clearTimeout(t)
        r(undefined)
      })
    })
  }
  process.exit(exitCode)
}
process.on('SIGINT', () => void stop(0))
process.on('SIGTERM', () => void stop(0))
// If this script dies anyway, do not leave detached children behind.
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
})

async function waitForPort(port: number, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (await portFree(port)) {
    if (Date.now() > deadline) throw new Error(`${what} did not start listening on ${port} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const natsPort = await pickPort(4222)
run('nats', 'nats-server', ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', join(dataDir, 'nats')])
await waitForPort(natsPort, 'nats-server')
const jwksPort = await pickPort(7080)
const extraPorts = { ub: await pickPort(8084), est: await pickPort(8443), revocation: await pickPort(8081) }
// DEVELOPMENT ONLY: a local CA and a server certificate for 127.0.0.1/localhost (EST over HTTPS).
const devPki = await createDevPki(join(dataDir, 'dev-pki'))

const adminTokenFile = secretFile('dev-admin.token', () => randomBytes(24).toString('base64url'))

const started: Array<{ name: string; port: number; api: string }> = []
for (const svc of SERVICES) {
  const port = await pickPort(svc.port)
  const prefix = `M2MSEC_${svc.name.toUpperCase()}_`
  run(svc.name, process.execPath, ['--import', 'tsx', `services/${svc.name}/src/main.ts`], {
    [`${prefix}PROFILE`]: 'development',
    [`${prefix}GRPC__PORT`]: String(port),
    [`${prefix}NATS__SERVERS`]: `nats://127.0.0.1:${natsPort}`,
    ...svc.env?.(Object.fromEntries(started.map((x) => [x.name, x.port]))),
  })
  await waitForPort(port, svc.name)
  started.push({ name: svc.name, port, api: svc.api })
}

console.log(`
m2msec is running (development profile; state in ${dataDir}).

  nats-server (JetStream)  nats://127.0.0.1:${natsPort}
${started.map((s) => `  ${s.name.padEnd(24)} grpc://127.0.0.1:${s.port}  ${s.api}`).join('\n')}
  ${'authn JWKS'.padEnd(24)} http://127.0.0.1:${jwksPort}/.well-known/jwks.json
  ${'GBA Ub (BSF)'.padEnd(24)} http://127.0.0.1:${extraPorts.ub}/
  ${'EST (RFC 7030)'.padEnd(24)} https://127.0.0.1:${extraPorts.est}/.well-known/est/<tenant>/  (CA: ${devPki.paths.caCert})
  ${'CRL / OCSP'.padEnd(24)} http://127.0.0.1:${extraPorts.revocation}/

Development token (kms, authz, bootstrap, groups: tenant "demo", principal "dev-admin", role admin; authn: the platform operator):
  ${adminTokenFile}
kms and authz also accept access tokens from authn (IssueToken), see README "Tokens from authn".
Try it (see README "Calling the KMS"):
  node --import tsx examples/kms-client.ts 127.0.0.1:${started[0]?.port ?? 7001}
  grpcurl -plaintext -H "authorization: Bearer $(cat ${adminTokenFile})" 127.0.0.1:${started[0]?.port ?? 7001} list

Ctrl-C stops everything.`)
