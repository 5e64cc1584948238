/**
 * The GbaKms port over the KMS gRPC API. One channel (mTLS with the bootstrap service's
 * platform certificate, `m2msec://_platform/bootstrap`, `OU=role:service`) serves every
 * tenant: each call names its tenant in the `m2msec-tenant` header and the KMS treats the
 * service as an admin of that tenant (principal `svc:bootstrap`). Errors come back as the
 * KMS's M2msecErrors.
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import {
  DeriveKeyRequest,
  GetKeyRequest,
  ImportKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  KeyOperation,
  KeyState,
  keyAlgorithmToJSON,
  MilenageRequest,
  SetKeyStateRequest,
  WrapKeyRequest,
  type MilenageResponse,
} from '@m2msec/proto/kms/v1'
import { M2msecError } from '@m2msec/errors'
import { promiseClient, type PromiseClient, createTenantCaller } from '@m2msec/runtime'
import type { GbaKms, MilenageVector } from '../gba/ports.ts'

/** How the service reaches the KMS (the `kms` config section). */
export interface KmsClientOptions {
  /** `host:port` of the KMS. */
  readonly target: string
  /** TLS: the CA of the KMS server certificate, and the client certificate and key (mTLS). */
  readonly tls?: {
    readonly caFile: string
    readonly certFile?: string | undefined
    readonly keyFile?: string | undefined
    readonly serverName?: string | undefined
  }
  /** Bearer token (development only), sent on every call. */
  readonly token?: string
  /** Deadline of each call, ms. */
  readonly timeoutMs: number
}

/** A GbaKms that owns a gRPC channel. */
export interface KmsClient extends GbaKms {
  /** The underlying channel, shared with the other components of the service (RSPF, PKI). */
  readonly channel: KeyManagementClient
  close(): void
}

const OPERATION = {
  MAC: KeyOperation.KEY_OPERATION_MAC,
  VERIFY_MAC: KeyOperation.KEY_OPERATION_VERIFY_MAC,
  DERIVE: KeyOperation.KEY_OPERATION_DERIVE,
  EXPORT: KeyOperation.KEY_OPERATION_EXPORT,
} as const

function credentials(opts: KmsClientOptions): grpc.ChannelCredentials {
  if (opts.tls === undefined) return grpc.credentials.createInsecure()
  const read = (f: string | undefined) => (f === undefined ? null : readFileSync(f))
  return grpc.credentials.createSsl(read(opts.tls.caFile), read(opts.tls.keyFile), read(opts.tls.certFile))
}

function vector(r: MilenageResponse): MilenageVector {
  return {
    macA: new Uint8Array(r.macA),
    macS: new Uint8Array(r.macS),
    res: new Uint8Array(r.res),
    ak: new Uint8Array(r.ak),
    akStar: new Uint8Array(r.akStar),
  }
}

/**
 * @example
 * ```ts
 * const kms = createKmsClient({ target: 'kms:7001', tls: { caFile, certFile, keyFile }, timeoutMs: 5000 })
 * const v = await kms.milenageKeepKs('acme', { keyId, rand, sqn, amf, ksKeyId: 'gbaks-…', exportable: false })
 * ```
 */
export function createKmsClient(opts: KmsClientOptions): KmsClient {
  const channelOptions: grpc.ClientOptions =
    opts.tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': opts.tls.serverName }
  const raw = new KeyManagementClient(opts.target, credentials(opts), channelOptions)
  const kms: PromiseClient<typeof KeyManagementService> = promiseClient(KeyManagementService, raw)

  const call = createTenantCaller({ token: opts.token, timeoutMs: opts.timeoutMs })

  return {
    channel: raw,
    async milenageKeepKs(tenant, req) {
      const res = await call(tenant, (o) =>
        kms.milenage(
          MilenageRequest.fromPartial({
            keyId: req.keyId,
            rand: Buffer.from(req.rand),
            sqn: Buffer.from(req.sqn),
            amf: Buffer.from(req.amf),
            ksKeySpec: {
              keyId: req.ksKeyId,
              algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
              purpose: 'GBA Ks',
              exportable: req.exportable,
            },
          }),
          o,
        ),
      )
      if (res.ksKey === undefined || res.ck.length !== 0) {
        throw new M2msecError('ERR_INTERNAL', 'the KMS did not keep Ks (ks_key_spec unsupported?)')
      }
      return vector(res)
    },
    async milenage(tenant, req) {
      const res = await call(tenant, (o) =>
        kms.milenage(
          MilenageRequest.fromPartial({
            keyId: req.keyId,
            rand: Buffer.from(req.rand),
            sqn: Buffer.from(req.sqn),
            amf: Buffer.from(req.amf),
            omitCkIk: true,
          }),
          o,
        ),
      )
      return vector(res)
    },
    async deriveKey(tenant, req) {
      await call(tenant, (o) =>
        kms.deriveKey(
          DeriveKeyRequest.fromPartial({
            baseKeyId: req.baseKeyId,
            kdf: { $case: 'kdf3gpp', value: { fc: req.fc, params: req.params.map((p) => Buffer.from(p)) } },
            keySpec: {
              keyId: req.keyId,
              algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
              purpose: 'GBA Ks_NAF',
              exportable: req.exportable,
              usagePolicy: req.usagePolicy.map((r) => ({
                principals: r.principals,
                operations: r.operations.map((op) => OPERATION[op]),
              })),
              labels: req.labels,
            },
          }),
          o,
        ),
      )
    },
    async wrapKeyForJwk(tenant, keyId, publicJwk) {
      const res = await call(tenant, (o) =>
        kms.wrapKey(WrapKeyRequest.fromPartial({ keyId, recipient: { $case: 'publicJwk', value: publicJwk } }), o),
      )
      return res.wrappedKey
    },
    async importMilenageKey(tenant, req) {
      const res = await call(tenant, (o) =>
        kms.importKey(
          ImportKeyRequest.fromPartial({
            wrappedKey: req.wrappedKey,
            unwrappingKeyId: req.unwrappingKeyId,
            keySpec: { keyId: req.keyId, algorithm: KeyAlgorithm.KEY_ALGORITHM_MILENAGE, purpose: 'GBA subscriber' },
          }),
          o,
        ),
      )
      if (res.key === undefined) throw new M2msecError('ERR_INTERNAL', 'the KMS answered without a key')
      return res.key.id
    },
    async keyAlgorithm(tenant, keyId) {
      const res = await call(tenant, (o) => kms.getKey(GetKeyRequest.fromPartial({ keyId }), o))
      if (res.key === undefined) throw new M2msecError('ERR_INTERNAL', 'the KMS answered without a key')
      return keyAlgorithmToJSON(res.key.algorithm).replace('KEY_ALGORITHM_', '')
    },
    async scheduleDestruction(tenant, keyId, after) {
      await call(tenant, (o) =>
        kms.setKeyState(
          SetKeyStateRequest.fromPartial({
            keyId,
            state: KeyState.KEY_STATE_DESTRUCTION_SCHEDULED,
            destroyAfter: after,
          }),
          o,
        ),
      )
    },
    close() {
      raw.close()
    },
  }
}
