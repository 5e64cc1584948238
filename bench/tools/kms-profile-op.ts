/**
 * Profiles the KMS server while it serves one operation only, so a CPU profile is not
 * diluted by other rows of `bench/kms.ts`. Not a benchmark: it prints the rate and the
 * server's CPU per call, and writes the V8 profile for `profile-summary.ts`.
 *
 *   node --import tsx bench/tools/kms-profile-op.ts --op Sign|Mac|Encrypt|BatchEncrypt|Empty [--seconds 8] [--concurrency 64] --out DIR
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import * as pb from '@m2msec/proto/kms/v1'
import { promiseClient } from '@m2msec/runtime'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { freePort, startNats, tmpDir } from '@m2msec/testkit'
import { startKmsProcess } from '../lib/kms-process.ts'
import { cpuProbe, measure } from '../lib/measure.ts'

const { values: args } = parseArgs({
  options: {
    op: { type: 'string', default: 'Sign' },
    seconds: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '64' },
    out: { type: 'string' },
  },
})
const ALG = {
  Sign: pb.KeyAlgorithm.KEY_ALGORITHM_EC_P256_SIGN,
  Mac: pb.KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
  Encrypt: pb.KeyAlgorithm.KEY_ALGORITHM_AES_256_GCM,
} as const

const dir = await tmpDir('m2msec-kms-profile')
const nats = await startNats()
const masterKeyFile = join(dir.path, 'master.key')
await writeFile(masterKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 })
const token = randomBytes(24).toString('base64url')
const tokenFile = join(dir.path, 'admin.token')
await writeFile(tokenFile, token, { mode: 0o600 })
const server = await startKmsProcess({
  port: await freePort(),
  natsUrl: nats.url,
  secureEnvironments: [{ name: 'software', type: 'software', options: { masterKeyFile } }],
  devAdminTokenFile: tokenFile,
  ...(args.out === undefined ? {} : { cpuProfDir: args.out }),
})
const channel = new pb.KeyManagementClient(server.target, grpc.credentials.createInsecure())
const kms = promiseClient(pb.KeyManagementService, channel)
const auth = (): { metadata: grpc.Metadata } => {
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${token}`)
  return { metadata }
}
try {
  const op = args.op as keyof typeof ALG | 'Empty' | 'BatchEncrypt'
  let call: () => Promise<unknown>
  if (op === 'BatchEncrypt') {
    await kms.createKey(pb.CreateKeyRequest.fromPartial({ keySpec: { keyId: 'k', algorithm: ALG.Encrypt } }), auth())
    const req = pb.BatchEncryptRequest.fromPartial({
      items: Array.from({ length: 100 }, () => ({ keyId: 'k', plaintext: randomBytes(1024) })),
    })
    call = () => kms.batchEncrypt(req, auth())
  } else if (op === 'Empty') {
    const req = pb.ListSecureEnvironmentsRequest.fromPartial({})
    call = () => kms.listSecureEnvironments(req, auth())
  } else {
    if (!(op in ALG)) throw new Error(`--op must be Sign, Mac, Encrypt, BatchEncrypt or Empty`)
    await kms.createKey(pb.CreateKeyRequest.fromPartial({ keySpec: { keyId: 'k', algorithm: ALG[op] } }), auth())
    const req =
      op === 'Sign'
        ? pb.SignRequest.fromPartial({ keyId: 'k', message: randomBytes(256) })
        : op === 'Mac'
          ? pb.MacRequest.fromPartial({ keyId: 'k', data: randomBytes(32) })
          : pb.EncryptRequest.fromPartial({ keyId: 'k', plaintext: randomBytes(1024) })
    const method = op === 'Sign' ? kms.sign : op === 'Mac' ? kms.mac : kms.encrypt
    call = () => (method as (r: unknown, o: unknown) => Promise<unknown>)(req, auth())
  }
  const m = await measure(op, call, {
    concurrency: Number(args.concurrency),
    durationMs: Number(args.seconds) * 1000,
    maxCalls: 10_000_000,
    cpu: { server: cpuProbe(server.pid), client: cpuProbe() },
  })
  const us = (cores: number | undefined): string => (((cores ?? NaN) * 1e6) / m.perSecond).toFixed(1)
  // Records per JetStream message tells how well the audit's group commit batches.
  const nc = await connect({ servers: nats.url })
  const audit = await (await jetstreamManager(nc)).streams.info('AUDIT')
  await nc.close()
  console.log(
    `${op}: ${Math.round(m.perSecond)} ops/s, server ${us(m.cpu.server)} µs/op, client ${us(m.cpu.client)} µs/op, ` +
      `${audit.state.messages} audit messages, ${(m.calls / Math.max(1, audit.state.messages)).toFixed(1)} calls per message`,
  )
} finally {
  channel.close()
  await server.stop()
  await nats.stop()
  await dir.cleanup()
}
