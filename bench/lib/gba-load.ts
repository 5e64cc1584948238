/**
 * GBA load for bench/bootstrap.ts (not a test): subscribers provisioned in a running bootstrap
 * replica, simulated devices (`@m2msec/sdk/gba`, one USIM per worker), and the three GBA
 * operations the benchmark times:
 * - `bootstrap`: the whole Ub exchange over HTTP (initial GET, 401, USIM, answer, 200);
 * - `bootstrapAndZn`: the same plus one GetNafKey (Ks_NAF key handle) over gRPC, i.e. the
 *   Milenage + KDF of the raw rows plus everything around them (HTTP, Digest, KV, audit);
 * - `kmsBound`: only the KMS calls a bootstrap + Zn cannot avoid, since K/OPc and Ks never leave
 *   the KMS: Milenage keeping Ks (ks_key_spec) + DeriveKey KDF_3GPP, with the BSF's own client.
 * And `inProcess`: Milenage + KDF with @m2msec/crypto on this thread (no KMS, no network).
 */
import { randomBytes } from 'node:crypto'
import type * as grpc from '@grpc/grpc-js'
import * as jose from 'jose'
import { aes128EcbBlockCipher, deriveKsNaf, gbaKs, milenage, nafId, sqnToBytes, UA_PROTOCOL_ID } from '@m2msec/crypto'
import { createSimulatedUsim } from '@m2msec/gba'
import { bootstrapOverHttp } from '@m2msec/sdk/gba'
import { promiseClient } from '@m2msec/runtime'
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
import { createKmsClient, type KmsClientOptions } from '../../services/bootstrap/src/kms/kms-client.ts'

/** What {@link setupGbaLoad} needs. */
export interface GbaLoadOptions {
  readonly tenant: string
  /** Digest realm = the BSF host of the replica. */
  readonly bsfHost: string
  /** A NAF FQDN the replica's Zn policy grants to role `naf`. */
  readonly nafFqdn: string
  /** Ub base URL and gRPC `host:port` of the replica. */
  readonly ubUrl: string
  readonly grpcTarget: string
  readonly kmsTarget: string
  /** The BSF's KMS client settings (platform identity), for the KMS-bound row. */
  readonly kmsClient: KmsClientOptions
  /** Client credentials for `tenant` with the given principal and roles. */
  readonly credentials: (principal: string, roles: string[]) => Promise<grpc.ChannelCredentials>
  /** Subscribers (= devices = most operations in flight). */
  readonly devices: number
}

/** The timed operations and their cleanup. */
export interface GbaLoad {
  readonly bootstrap: () => Promise<void>
  readonly bootstrapAndZn: () => Promise<void>
  readonly kmsBound: () => Promise<void>
  readonly inProcess: () => Promise<void>
  close(): void
}

/**
 * Provisions `devices` subscribers (K||OPc imported through a tenant ECDH key) and returns the
 * operations.
 *
 * @example
 * ```ts
 * const gba = await setupGbaLoad({ tenant: 'acme', bsfHost, nafFqdn, ubUrl, grpcTarget, kmsTarget, kmsClient, credentials, devices: 16 })
 * await gba.bootstrapAndZn()
 * ```
 */
export async function setupGbaLoad(o: GbaLoadOptions): Promise<GbaLoad> {
  const channels: grpc.Client[] = []
  const adminKmsChannel = new KeyManagementClient(o.kmsTarget, await o.credentials('ops', ['admin']))
  channels.push(adminKmsChannel)
  const adminKms = promiseClient(KeyManagementService, adminKmsChannel)
  const imp = await adminKms.createKey(
    CreateKeyRequest.fromPartial({
      keySpec: {
        keyId: `gba-import-${randomBytes(3).toString('hex')}`,
        algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_ECDH,
        usagePolicy: [{ principals: ['svc:bootstrap'], operations: [KeyOperation.KEY_OPERATION_UNWRAP] }],
      },
    }),
  )
  const importKeyId = imp.key?.id ?? ''
  const importKey = await jose.importJWK(
    JSON.parse(imp.key?.versions[0]?.publicJwk ?? '{}') as jose.JWK,
    'ECDH-ES+A256KW',
  )
  const subsChannel = new GbaSubscribersClient(o.grpcTarget, await o.credentials('ops', ['admin']))
  channels.push(subsChannel)
  const subs = promiseClient(GbaSubscribersService, subsChannel)
  const devices: Array<{ impi: string; usim: ReturnType<typeof createSimulatedUsim> }> = []
  let milenageKeyId = ''
  for (let i = 0; i < o.devices; i++) {
    const k = new Uint8Array(randomBytes(16))
    const opc = new Uint8Array(randomBytes(16))
    const impi = `0010100000${String(i).padStart(5, '0')}@ims.mnc001.mcc001.3gppnetwork.org`
    const jwe = await new jose.CompactEncrypt(Buffer.concat([k, opc]))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(importKey)
    const created = await subs.createSubscriber(
      CreateSubscriberRequest.fromPartial({
        impi,
        milenageKey: { $case: 'import', value: { wrappedKey: jwe, unwrappingKeyId: importKeyId, keyId: '' } },
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

  const znChannel = new GbaZnClient(o.grpcTarget, await o.credentials('naf-1', ['naf']))
  channels.push(znChannel)
  const zn = promiseClient(GbaZnService, znChannel)
  const ub = (d: (typeof devices)[number]) =>
    bootstrapOverHttp({ bsfUrl: o.ubUrl, impi: d.impi, realm: o.bsfHost, usim: d.usim })

  const raw = createKmsClient(o.kmsClient)
  const impi0 = devices[0]?.impi ?? ''
  const nafIdBytes = nafId(o.nafFqdn, UA_PROTOCOL_ID.httpDigest)
  const gbaMe = new TextEncoder().encode('gba-me')
  const impiBytes = new TextEncoder().encode(impi0)
  let rawSqn = 1n << 40n // far from the subscribers' SQNs; this row never touches a USIM
  const kmsBound = async () => {
    const rand = new Uint8Array(randomBytes(16))
    const ksKeyId = `bench-ks-${Buffer.from(rand).toString('hex')}`
    await raw.milenageKeepKs(o.tenant, {
      keyId: milenageKeyId,
      rand,
      sqn: sqnToBytes(rawSqn++),
      amf: Uint8Array.of(0x80, 0),
      ksKeyId,
      exportable: false,
    })
    await raw.deriveKey(o.tenant, {
      baseKeyId: ksKeyId,
      fc: 1,
      params: [gbaMe, rand, impiBytes, nafIdBytes],
      keyId: `${ksKeyId}-naf`,
      exportable: false,
      usagePolicy: [{ principals: ['naf-1'], operations: ['MAC'] }],
      labels: {},
    })
  }

  const e = aes128EcbBlockCipher(new Uint8Array(randomBytes(16)))
  const opc = new Uint8Array(randomBytes(16))
  const inProcess = async () => {
    const rand = new Uint8Array(randomBytes(16))
    const out = await milenage(e, opc, { rand, sqn: sqnToBytes(42n), amf: Uint8Array.of(0x80, 0) })
    deriveKsNaf(gbaKs(out.ck, out.ik), rand, impi0, nafIdBytes, 'gba-me')
  }

  return {
    bootstrap: () => withDevice(async (d) => void (await ub(d))),
    bootstrapAndZn: () =>
      withDevice(async (d) => {
        const s = await ub(d)
        await zn.getNafKey(
          GetNafKeyRequest.fromPartial({
            btid: s.btid,
            nafFqdn: o.nafFqdn,
            uaProtocolId: Buffer.from(UA_PROTOCOL_ID.httpDigest),
          }),
        )
      }),
    kmsBound,
    inProcess,
    close() {
      raw.close()
      for (const c of channels) c.close()
    },
  }
}
