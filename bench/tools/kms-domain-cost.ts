/**
 * CPU per operation of the KMS domain alone (no gRPC): Mac and Sign through
 * `createKmsOperations` with the real key store and audit log on a local nats-server, and the
 * same with a no-op audit sink, so the audit's share of an operation is visible.
 *
 *   node --import tsx bench/tools/kms-domain-cost.ts [--calls 40000] [--concurrency 64]
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { execSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connectNats, createAuditLog, createAuditSink, KvRepository } from '@m2msec/bus'
import { systemClock, systemRandom } from '@m2msec/runtime'
import { startNats, tmpDir } from '@m2msec/testkit'
import { cpuProbe } from '../lib/measure.ts'
import { createKmsOperations } from '../../services/kms/src/domain/operations/index.ts'
import type { KeyRecord } from '../../services/kms/src/domain/model.ts'
import type { StoredSecret } from '../../services/kms/src/domain/ports.ts'
import { createSecureEnvironments } from '../../services/kms/src/se/from-config.ts'
import { createKeyStore } from '../../services/kms/src/store/key-store.ts'
import { createSecretStore } from '../../services/kms/src/store/secret-store.ts'

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '40000' },
    concurrency: { type: 'string', default: '64' },
    als: { type: 'boolean', default: false },
  },
})
const CALLS = Number(args.calls)
const CONCURRENCY = Number(args.concurrency)
// What OpenTelemetry's context manager does per call: with it, every promise runs async hooks.
const als = new AsyncLocalStorage<object>()
const inContext = <T>(op: () => Promise<T>): (() => Promise<T>) => (args.als ? () => als.run({}, op) : op)

const nats = await startNats()
// nats-server's CPU counts too: every audit flush is a JetStream write.
const natsPid = Number(execSync(`pgrep -f -- '-p ${nats.port} '`).toString().trim().split('\n')[0])
const natsCpu = cpuProbe(natsPid)
const nc = await connectNats({ servers: [nats.url], name: 'domain-cost' })
try {
  const dir = await tmpDir('m2msec-domain-cost')
  const masterKeyFile = join(dir.path, 'master.key')
  await writeFile(masterKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 })
  const ses = await createSecureEnvironments(
    [{ name: 'software', type: 'software', options: { masterKeyFile, cacheSize: 10_000 } }],
    'software',
  )
  const keys = await createKeyStore(await KvRepository.open<KeyRecord>(nc, 'kms-keys', {}))
  const secrets = createSecretStore(await KvRepository.open<StoredSecret>(nc, 'kms-secrets', {}))
  const log = await createAuditLog(nc, { source: 'domain-cost' })
  const base = { keys, secrets, ses, events: { publish: async () => {} }, clock: systemClock, random: systemRandom }
  const real = createKmsOperations({ ...base, audit: createAuditSink(log, systemClock) })
  const noAudit = createKmsOperations({ ...base, audit: { append: async () => {} } })
  const caller = { tenant: 'demo', id: 'admin', roles: ['admin'] }
  await real.createKey(caller, { keyId: 'm', algorithm: 'HMAC_SHA256' } as never)
  await real.createKey(caller, { keyId: 's', algorithm: 'EC_P256_SIGN' } as never)
  const data = randomBytes(32)
  const message = randomBytes(256)

  async function cost(name: string, rawOp: () => Promise<unknown>): Promise<void> {
    const op = inContext(rawOp)
    for (let i = 0; i < 2000; i++) await op()
    const before = process.cpuUsage()
    const natsBefore = natsCpu()
    const t0 = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < CALLS) await op()
      }),
    )
    const used = process.cpuUsage(before)
    const us = (used.user + used.system) / CALLS
    const natsUs = ((natsCpu() - natsBefore) * 1e6) / CALLS
    console.log(
      `${name.padEnd(22)} ${us.toFixed(1).padStart(7)} µs CPU/op + nats-server ${natsUs.toFixed(1).padStart(6)} µs/op ${Math.round(CALLS / ((performance.now() - t0) / 1000))} ops/s`,
    )
  }
  for (let round = 0; round < 2; round++) {
    await cost('Mac, audited', () => real.mac(caller, { keyId: 'm', data }))
    await cost('Mac, no audit', () => noAudit.mac(caller, { keyId: 'm', data }))
    await cost('Sign, audited', () => real.sign(caller, { keyId: 's', message }))
    await cost('Sign, no audit', () => noAudit.sign(caller, { keyId: 's', message }))
  }
  await log.close()
  await ses.close()
  await keys.close()
  await dir.cleanup()
} finally {
  await nc.drain()
  await nats.stop()
}
