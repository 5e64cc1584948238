/**
 * GBA bootstraps per second against the raw cost of their crypto, measured in the same run.
 *
 * Setup: nats-server, the KMS as a child process (software SE, mTLS) and a bootstrap replica in
 * this process; simulated devices (`@m2msec/sdk/gba`, one subscriber and USIM per worker).
 * Rows (interleaved rounds, so background load hits all alike):
 * - raw: what one bootstrap's crypto costs where it runs, the KMS: Milenage keeping Ks
 *   (ks_key_spec) + DeriveKey KDF_3GPP (Ks_NAF), called directly by the BSF's KMS client;
 * - GBA bootstrap: the whole Ub exchange over HTTP (initial GET, 401, USIM, answer, 200);
 * - GBA bootstrap + Zn: the same plus one GetNafKey (Ks_NAF key handle) over gRPC, i.e. the
 *   same crypto as the raw row plus everything around it (HTTP, Digest, KV, audit).
 * Also, for scale, Milenage + KDF in process (@m2msec/crypto, no KMS).
 * Target: bootstrap + Zn >= 0.5 x raw.
 *
 * Usage: `npm run bench -- bootstrap [--seconds 6] [--concurrency 16]`.
 */
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import * as jose from 'jose'
import { aes128EcbBlockCipher, deriveKsNaf, gbaKs, milenage, nafId, sqnToBytes, UA_PROTOCOL_ID } from '@m2msec/crypto'
import { createSimulatedUsim } from '@m2msec/gba'
import { bootstrapOverHttp } from '@m2msec/sdk/gba'
import { createLogger, promiseClient } from '@m2msec/runtime'
import {
  CreateSubscriberRequest,
  GbaSubscribersClient,
  GbaSubscribersService,
  GbaZnClient,
  GbaZnService,
  GetNafKeyRequest,
} from '@m2msec/proto/bootstrap/v1'
import {
  CreateKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  KeyOperation,
} from '@m2msec/proto/kms/v1'
import { createDevPki, startKmsProcess, startNats, tmpDir } from '@m2msec/testkit'
import { bootstrapConfigSchema } from '../services/bootstrap/src/config.ts'
import { startBootstrap } from '../services/bootstrap/src/app.ts'
import { createKmsClient } from '../services/bootstrap/src/kms/kms-client.ts'
import { cpuProbe, measure, measureRounds, printTable } from './lib/measure.ts'

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '6' }, concurrency: { type: 'string', default: '16' } },
})
const SECONDS = Number(values.seconds)
const CONCURRENCY = Number(values.concurrency)
const TENANT = 'acme'
const BSF_HOST = 'bsf.bench.example'
const NAF = 'naf.bench.example'

const dir = await tmpDir('bench-bootstrap')
const nats = await startNats()
const pki = await createDevPki(join(dir.path, 'pki'))
const kms = await startKmsProcess({ natsUrl: nats.url, pki })
const channels: grpc.Client[] = []
const creds = async (tenant: string, principal: string, roles: string[]) => {
  const c = await pki.issueClientCert({ tenant, principal, roles })
  return grpc.credentials.createSsl(Buffer.from(pki.caCertPem), Buffer.from(c.keyPem), Buffer.from(c.certPem))
}
let app: Awaited<ReturnType<typeof startBootstrap>> | undefined
try {
  const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'bootstrap', roles: ['service'] })
  const certFile = join(dir.path, 'bsf.pem')
  const keyFile = join(dir.path, 'bsf.key')
  await writeFile(certFile, svc.certPem)
  await writeFile(keyFile, svc.keyPem, { mode: 0o600 })
  const kmsTls = { caFile: pki.paths.caCert, certFile, keyFile }
  app = await startBootstrap(
    bootstrapConfigSchema.parse({
      instanceId: `bootstrap-bench-${randomBytes(3).toString('hex')}`,
      grpc: {
        port: 0,
        tls: {
          certFile: pki.paths.serverCert,
          keyFile: pki.paths.serverKey,
          caFile: pki.paths.caCert,
          requireClientCert: false,
        },
      },
      auth: { mtls: true },
      ub: { port: 0 },
      gba: { bsfHost: BSF_HOST },
      zn: { nafs: [{ principal: 'role:naf', fqdns: [NAF] }] },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: kmsTls },
      log: { level: 'warn' },
    }),
    createLogger({ level: 'warn', service: 'bootstrap-bench' }),
  )
  const bsfUrl = app.ubUrl

  // Subscribers: K||OPc wrapped for a tenant ECDH key the BSF may UNWRAP with.
  const adminKmsChannel = new KeyManagementClient(kms.target, await creds(TENANT, 'ops', ['admin']))
  channels.push(adminKmsChannel)
  const adminKms = promiseClient(KeyManagementService, adminKmsChannel)
  const imp = await adminKms.createKey(
    CreateKeyRequest.fromPartial({
      keySpec: {
        keyId: 'gba-import',
        algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_ECDH,
        usagePolicy: [{ principals: ['svc:bootstrap'], operations: [KeyOperation.KEY_OPERATION_UNWRAP] }],
      },
    }),
  )
  const importKey = await jose.importJWK(
    JSON.parse(imp.key?.versions[0]?.publicJwk ?? '{}') as jose.JWK,
    'ECDH-ES+A256KW',
  )
  const subsChannel = new GbaSubscribersClient(`localhost:${app.address.port}`, await creds(TENANT, 'ops', ['admin']))
  channels.push(subsChannel)
  const subs = promiseClient(GbaSubscribersService, subsChannel)
  const devices: Array<{ impi: string; usim: ReturnType<typeof createSimulatedUsim> }> = []
  let milenageKeyId = ''
  for (let i = 0; i < CONCURRENCY; i++) {
    const k = new Uint8Array(randomBytes(16))
    const opc = new Uint8Array(randomBytes(16))
    const impi = `0010100000${String(i).padStart(5, '0')}@ims.mnc001.mcc001.3gppnetwork.org`
    const jwe = await new jose.CompactEncrypt(Buffer.concat([k, opc]))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(importKey)
    const created = await subs.createSubscriber(
      CreateSubscriberRequest.fromPartial({
        impi,
        milenageKey: { $case: 'import', value: { wrappedKey: jwe, unwrappingKeyId: 'gba-import', keyId: '' } },
      }),
    )
    milenageKeyId = created.subscriber?.milenageKeyId ?? ''
    devices.push({ impi, usim: createSimulatedUsim({ k, opc }) })
  }
  const pool = [...devices]
  const withDevice = async <T>(run: (d: (typeof devices)[number]) => Promise<T>): Promise<T> => {
    const d = pool.pop()
    if (d === undefined) throw new Error('device pool empty: concurrency above the number of devices')
    try {
      return await run(d)
    } finally {
      pool.push(d)
    }
  }

  const znChannel = new GbaZnClient(`localhost:${app.address.port}`, await creds(TENANT, 'naf-1', ['naf']))
  channels.push(znChannel)
  const zn = promiseClient(GbaZnService, znChannel)
  const bootstrap = (d: (typeof devices)[number]) =>
    bootstrapOverHttp({ bsfUrl, impi: d.impi, realm: BSF_HOST, usim: d.usim })

  // Raw: the crypto of one bootstrap in the KMS, with the BSF's own client (platform identity).
  const raw = createKmsClient({ target: kms.target, tls: kmsTls, timeoutMs: 10_000 })
  const impi0 = devices[0]?.impi ?? ''
  const nafIdBytes = nafId(NAF, UA_PROTOCOL_ID.httpDigest)
  let rawSqn = 1n << 40n // far from the subscribers' SQNs; the raw row never touches a USIM
  const rawOp = async () => {
    const rand = new Uint8Array(randomBytes(16))
    const ksKeyId = `bench-ks-${Buffer.from(rand).toString('hex')}`
    await raw.milenageKeepKs(TENANT, {
      keyId: milenageKeyId,
      rand,
      sqn: sqnToBytes(rawSqn++),
      amf: Uint8Array.of(0x80, 0),
      ksKeyId,
      exportable: false,
    })
    await raw.deriveKey(TENANT, {
      baseKeyId: ksKeyId,
      fc: 1,
      params: [new TextEncoder().encode('gba-me'), rand, new TextEncoder().encode(impi0), nafIdBytes],
      keyId: `${ksKeyId}-naf`,
      exportable: false,
      usagePolicy: [{ principals: ['naf-1'], operations: ['MAC'] }],
      labels: {},
    })
  }

  const cpu = { kms: cpuProbe(kms.pid), bench: cpuProbe() }
  const opts = { concurrency: CONCURRENCY, durationMs: SECONDS * 1000, warmupCalls: CONCURRENCY * 2, cpu }
  const [rawM, ubM, ubZnM] = await measureRounds(
    [
      { name: 'raw: KMS Milenage (keep Ks) + DeriveKey KDF_3GPP', op: rawOp, opts },
      { name: 'GBA bootstrap (Ub over HTTP)', op: () => withDevice(bootstrap), opts },
      {
        name: 'GBA bootstrap + Zn Ks_NAF handle',
        op: () =>
          withDevice(async (d) => {
            const s = await bootstrap(d)
            await zn.getNafKey(
              GetNafKeyRequest.fromPartial({
                btid: s.btid,
                nafFqdn: NAF,
                uaProtocolId: Buffer.from(UA_PROTOCOL_ID.httpDigest),
              }),
            )
          }),
        opts,
      },
    ],
    3,
  )
  raw.close()

  // For scale: the same crypto in process (no KMS, no network).
  const e = aes128EcbBlockCipher(new Uint8Array(16).fill(7))
  const opc = new Uint8Array(16).fill(9)
  const localM = await measure(
    'in-process Milenage + KDF (@m2msec/crypto)',
    async () => {
      const rand = new Uint8Array(randomBytes(16))
      const o = await milenage(e, opc, { rand, sqn: sqnToBytes(42n), amf: Uint8Array.of(0x80, 0) })
      deriveKsNaf(gbaKs(o.ck, o.ik), rand, impi0, nafIdBytes, 'gba-me')
    },
    { concurrency: 1, durationMs: 2000 },
  )
  if (rawM === undefined || ubM === undefined || ubZnM === undefined) throw new Error('missing measurement')
  printTable(
    `GBA bootstrap vs its crypto (concurrency ${CONCURRENCY}, ${SECONDS} s per row in 3 rounds)`,
    [
      { group: 'raw', m: rawM },
      { group: 'GBA', m: ubM, vs: rawM },
      { group: 'GBA', m: ubZnM, vs: rawM },
      { group: 'scale', m: localM, vs: rawM },
    ],
    { cores: ['kms', 'bench'], perOp: ['kms', 'bench'] },
  )
  const ratio = ubZnM.perSecond / rawM.perSecond
  console.log(
    `\n- target: bootstrap + Zn >= 0.5 x raw: ${ubZnM.perSecond.toFixed(0)} / ${rawM.perSecond.toFixed(0)} = ${ratio.toFixed(2)} -> ${ratio >= 0.5 ? 'met' : 'NOT met'}`,
  )
  console.log(
    '- "bench" = this process: the BSF replica, the simulated devices and the NAF client together; "kms" = the KMS child process.',
  )
} finally {
  for (const c of channels) c.close()
  await app?.shutdown()
  await kms.stop()
  await nats.stop()
  await dir.cleanup()
}
