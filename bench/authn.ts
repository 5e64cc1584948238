/**
 * Authn benchmark (not a test): access tokens issued per second (IssueToken with an HS256
 * assertion) compared with the rate of the KMS operation every token needs, an ES256 Sign
 * with the tenant's signing key, measured in the same run on the same KMS. Prints one
 * markdown table with the ratio.
 *
 *   npm run bench -- authn [--seconds 3] [--rounds 3] [--concurrency 32] [--entities 16]
 *
 * Set-up: nats-server (JetStream) from @m2msec/testkit; the KMS (software SE) and authn each in
 * their own process, plaintext on loopback. The KMS accepts a development admin bearer token
 * of tenant `bench`; authn uses the same token towards the KMS (`kms.tokenFile`) and has its
 * own development token for this process (operator and admin of `bench`, with
 * `auth.operatorTenant` = `bench`, so one identity can create the tenant and register
 * entities). The entities get generated symmetric credentials delivered wrapped to this
 * process. Each IssueToken carries a fresh HS256 assertion (new jti) of one of `--entities`
 * entities in turn. The per-replica attempt-rate limits are switched off (they would cap one
 * source at 200/s by default); the shared failure back-off stays on (no failures happen).
 *
 * What one IssueToken costs authn: KMS VerifyMac (assertion), KMS Sign (token), KMS Mac
 * (server proof), a KV create (jti) and an audit append. The baseline row is the Sign alone,
 * called directly on the KMS with the same key and an `m2msec-tenant` header, as authn does.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import { compactDecrypt, exportJWK, generateKeyPair } from 'jose'
import * as authnPb from '@m2msec/proto/authn/v1'
import * as kmsPb from '@m2msec/proto/kms/v1'
import { promiseClient } from '@m2msec/runtime'
import { freePort, grpcHealthCheck, startNats, tmpDir } from '@m2msec/testkit'
import { REPO_ROOT, startKmsProcess } from './lib/kms-process.ts'
import { cpuProbe, formatTable, measureRounds, type Job } from './lib/measure.ts'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
    entities: { type: 'string', default: '16' },
  },
})
const SECONDS = Number(args.seconds)
const ROUNDS = Number(args.rounds)
const CONCURRENCY = Number(args.concurrency)
const ENTITIES = Number(args.entities)
for (const [name, v] of Object.entries({ SECONDS, ROUNDS, CONCURRENCY, ENTITIES })) {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`bad --${name.toLowerCase()}`)
}

const TENANT = 'bench'
const ENDPOINT = 'm2msec-authn-token'
const SIGNING_KEY = `authn-signing-${TENANT}`

/** Cleanup steps, run in reverse order at the end and on failure. */
const cleanups: Array<() => unknown> = []

function bearer(token: string, tenant?: string): { metadata: grpc.Metadata } {
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${token}`)
  if (tenant !== undefined) metadata.set('m2msec-tenant', tenant)
  return { metadata }
}

/** Spawns the authn service and waits until its health check answers SERVING. */
async function startAuthnProcess(env: Record<string, string>, port: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/authn/src/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...(process.env as Record<string, string>), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const kill = (): void => void child.kill('SIGKILL')
  process.once('exit', kill)
  let output = ''
  const keep = (d: Buffer): void => {
    output = (output + d.toString()).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const stop = async (): Promise<void> => {
    process.off('exit', kill)
    if (child.exitCode !== null || child.signalCode !== null) return
    const done = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await done
    clearTimeout(timer)
  }
  const target = `127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`authn exited during start:\n${output}`)
    if ((await grpcHealthCheck(target, grpc.credentials.createInsecure()).catch(() => 'DOWN')) === 'SERVING') break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`authn did not become SERVING:\n${output}`)
    }
    await sleep(100)
  }
  return { target, pid: child.pid ?? -1, stop }
}

/** An HS256 client assertion with a fresh jti. */
function assertion(entity: string, kid: string, key: Uint8Array): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const iat = Math.floor(Date.now() / 1000)
  const claims = {
    iss: entity,
    sub: entity,
    aud: ENDPOINT,
    iat,
    exp: iat + 60,
    jti: randomBytes(16).toString('base64url'),
  }
  const input = `${part({ alg: 'HS256', kid })}.${part(claims)}`
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
}

async function main(): Promise<void> {
  const dir = await tmpDir('m2msec-bench-authn')
  cleanups.push(() => dir.cleanup())
  const nats = await startNats()
  cleanups.push(() => nats.stop())
  const kmsToken = randomBytes(24).toString('hex')
  const authnToken = randomBytes(24).toString('hex')
  const kmsTokenFile = join(dir.path, 'kms.token')
  const authnTokenFile = join(dir.path, 'authn.token')
  const masterKeyFile = join(dir.path, 'master.key')
  await writeFile(kmsTokenFile, kmsToken, { mode: 0o600 })
  await writeFile(authnTokenFile, authnToken, { mode: 0o600 })
  await writeFile(masterKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 })

  const kms = await startKmsProcess({
    port: await freePort(),
    natsUrl: nats.url,
    secureEnvironments: [{ name: 'software', type: 'software', options: { masterKeyFile } }],
    devAdminTokenFile: kmsTokenFile,
    env: { M2MSEC_KMS_AUTH__DEV_TENANT: TENANT },
  })
  cleanups.push(() => kms.stop())
  const authnPort = await freePort()
  const authn = await startAuthnProcess(
    {
      M2MSEC_AUTHN_GRPC__PORT: String(authnPort),
      M2MSEC_AUTHN_HTTP__PORT: String(await freePort()),
      M2MSEC_AUTHN_NATS__SERVERS: JSON.stringify([nats.url]),
      M2MSEC_AUTHN_KMS__TARGET: kms.target,
      M2MSEC_AUTHN_KMS__TOKEN_FILE: kmsTokenFile,
      M2MSEC_AUTHN_AUTH__DEV_TOKEN_FILE: authnTokenFile,
      M2MSEC_AUTHN_AUTH__DEV_TENANT: TENANT,
      M2MSEC_AUTHN_AUTH__DEV_PRINCIPAL: 'bench-admin',
      M2MSEC_AUTHN_AUTH__DEV_ROLES: JSON.stringify(['operator', 'admin']),
      M2MSEC_AUTHN_AUTH__OPERATOR_TENANT: TENANT,
      M2MSEC_AUTHN_FLOOD__ENTITY_RATE_PER_SEC: '0',
      M2MSEC_AUTHN_FLOOD__SOURCE_RATE_PER_SEC: '0',
      M2MSEC_AUTHN_LOG__LEVEL: 'warn',
    },
    authnPort,
  )
  cleanups.push(() => authn.stop())

  const insecure = grpc.credentials.createInsecure()
  const authnRaw = new authnPb.AuthenticationClient(authn.target, insecure)
  const kmsRaw = new kmsPb.KeyManagementClient(kms.target, insecure)
  cleanups.push(() => authnRaw.close())
  cleanups.push(() => kmsRaw.close())
  const authnClient = promiseClient(authnPb.AuthenticationService, authnRaw)
  const kmsClient = promiseClient(kmsPb.KeyManagementService, kmsRaw)
  const admin = bearer(authnToken)

  await authnClient.createTenant(authnPb.CreateTenantRequest.fromPartial({ tenantId: TENANT }), admin)
  const entities: Array<{ id: string; kid: string; key: Uint8Array }> = []
  for (let i = 0; i < ENTITIES; i++) {
    const id = `urn:dev:mac:00bench${i.toString(16).padStart(5, '0')}`
    await authnClient.registerEntity(
      authnPb.RegisterEntityRequest.fromPartial({ entityId: id, kind: authnPb.EntityKind.ENTITY_KIND_DEVICE }),
      admin,
    )
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
    const res = await authnClient.addCredential(
      authnPb.AddCredentialRequest.fromPartial({
        entityId: id,
        credential: {
          $case: 'symmetric',
          value: {
            source: { $case: 'generate', value: { deliverToPublicJwk: JSON.stringify(await exportJWK(publicKey)) } },
          },
        },
      }),
      admin,
    )
    const key = (await compactDecrypt(res.wrappedKey, privateKey)).plaintext
    entities.push({ id, kid: res.credential?.id ?? '', key })
  }

  let next = 0
  const issue = () => {
    const e = entities[next++ % entities.length] as (typeof entities)[number]
    return authnClient.issueToken(
      authnPb.IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: assertion(e.id, e.kid, e.key) }),
    )
  }
  const message = randomBytes(300)
  const kmsCall = bearer(kmsToken, TENANT)
  const sign = () => kmsClient.sign(kmsPb.SignRequest.fromPartial({ keyId: SIGNING_KEY, message }), kmsCall)
  await issue() // proves the whole path before measuring

  const cpu = { kms: cpuProbe(kms.pid), authn: cpuProbe(authn.pid), client: cpuProbe() }
  const opts = { concurrency: CONCURRENCY, durationMs: SECONDS * 1000, cpu }
  const jobs: Job[] = [
    { name: 'KMS Sign ES256 (authn-signing-bench)', op: sign, opts },
    { name: 'authn IssueToken (HS256 assertion)', op: issue, opts },
  ]
  const [signM, issueM] = await measureRounds(jobs, ROUNDS, (r) => process.stderr.write(`round ${r}/${ROUNDS}\n`))
  if (signM === undefined || issueM === undefined) throw new Error('no measurements')

  console.log(
    `\n## authn token issuance vs KMS Sign (${CONCURRENCY} in flight, ${ROUNDS} rounds of ${SECONDS} s, ` +
      `${ENTITIES} entities; ${cpus().length} cores, load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')})\n`,
  )
  console.log(
    formatTable(
      [
        { m: signM, group: 'baseline' },
        { m: issueM, vs: signM, group: 'authn' },
      ],
      { cores: ['kms', 'authn', 'client'], perOp: ['kms', 'authn'] },
    ),
  )
  const ratio = issueM.perSecond / signM.perSecond
  console.log(
    `\nIssueToken: ${issueM.perSecond.toFixed(0)}/s = ${ratio.toFixed(2)} x the KMS Sign rate ` +
      `(${signM.perSecond.toFixed(0)}/s). Each token costs 3 KMS calls (VerifyMac, Sign, Mac), a KV create and an audit append.`,
  )
  if (signM.errors + issueM.errors > 0) throw new Error(`${signM.errors + issueM.errors} calls failed`)
}

try {
  await main()
} finally {
  for (const c of cleanups.reverse()) {
    try {
      await c()
    } catch (err) {
      console.error('cleanup failed:', err)
    }
  }
}
