/**
 * The TenantKms port over the KMS gRPC API. One channel (mTLS with the authn service's
 * platform certificate, `m2msec://_platform/authn`, `OU=role:service`) serves every tenant:
 * each call names its tenant in the `m2msec-tenant` header, and the KMS (wrapped in
 * platformServiceAuthenticator) treats authn as an admin of that tenant. Errors come back as
 * the KMS's M2msecErrors.
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import {
  CreateKeyRequest,
  DeriveKeyRequest,
  GetKeyRequest,
  ImportKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  KeyOperation,
  KeyState,
  KeyVersionState,
  MacRequest,
  RotateKeyRequest,
  SetKeyStateRequest,
  SignRequest,
  VerifyMacRequest,
  WrapKeyRequest,
  keyAlgorithmToJSON,
  keyStateToJSON,
  type Key,
} from '@m2msec/proto/kms/v1'
import { M2msecError } from '@m2msec/errors'
import { promiseClient, type PromiseClient, createTenantCaller } from '@m2msec/runtime'
import type { KmsKeyInfo, TenantKms } from '../domain/ports.ts'

/** How authn reaches the KMS (the `kms` config section). */
export interface KmsClientOptions {
  /** `host:port` of the KMS. */
  readonly target: string
  /** TLS: the CA of the KMS server certificate, and authn's client certificate and key (mTLS). */
  readonly tls?: {
    readonly caFile: string
    readonly certFile?: string | undefined
    readonly keyFile?: string | undefined
    /** Expected name in the KMS certificate when it differs from the target host. */
    readonly serverName?: string | undefined
  }
  /** Bearer token for the KMS (development: the KMS dev admin token), sent on every call. */
  readonly token?: string
  /** Deadline of each call, ms. */
  readonly timeoutMs: number
}

/** A TenantKms that owns a gRPC channel. */
export interface KmsClient extends TenantKms {
  close(): void
}

const PREFIX = { algorithm: 'KEY_ALGORITHM_', state: 'KEY_STATE_' }

function keyInfo(key: Key | undefined): KmsKeyInfo {
  if (key === undefined) throw new M2msecError('ERR_INTERNAL', 'the KMS answered without a key')
  return {
    id: key.id,
    algorithm: keyAlgorithmToJSON(key.algorithm).replace(PREFIX.algorithm, ''),
    state: keyStateToJSON(key.state).replace(PREFIX.state, ''),
    exportable: key.exportable,
    primaryVersion: key.primaryVersion,
    versions: key.versions.map((v) => ({
      version: v.version,
      createdAt: v.createdAt ?? new Date(0),
      ...(v.publicJwk === '' ? {} : { publicJwk: v.publicJwk }),
      destroyed: v.state === KeyVersionState.KEY_VERSION_STATE_DESTROYED,
    })),
  }
}

function credentials(opts: KmsClientOptions): grpc.ChannelCredentials {
  if (opts.tls === undefined) return grpc.credentials.createInsecure()
  const read = (f: string | undefined) => (f === undefined ? null : readFileSync(f))
  return grpc.credentials.createSsl(read(opts.tls.caFile), read(opts.tls.keyFile), read(opts.tls.certFile))
}

/**
 * @example
 * ```ts
 * const kms = createKmsClient({ target: 'kms:7001', tls: { caFile, certFile, keyFile }, timeoutMs: 5000 })
 * const { signature, version } = await kms.sign('acme', 'authn-signing-acme', input)
 * ```
 */
export function createKmsClient(opts: KmsClientOptions): KmsClient {
  const channelOptions: grpc.ClientOptions =
    opts.tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': opts.tls.serverName }
  const raw = new KeyManagementClient(opts.target, credentials(opts), channelOptions)
  const kms: PromiseClient<typeof KeyManagementService> = promiseClient(KeyManagementService, raw)

  const call = createTenantCaller({ token: opts.token, timeoutMs: opts.timeoutMs })

  return {
    async createKey(tenant, spec) {
      const res = await call(tenant, (o) =>
        kms.createKey(
          CreateKeyRequest.fromPartial({
            keySpec: {
              keyId: spec.keyId ?? '',
              algorithm:
                spec.algorithm === 'EC_P256_SIGN'
                  ? KeyAlgorithm.KEY_ALGORITHM_EC_P256_SIGN
                  : KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
              purpose: spec.purpose,
              exportable: spec.exportable,
              labels: { ...spec.labels },
            },
            secureEnvironment: spec.secureEnvironment,
          }),
          o,
        ),
      )
      return keyInfo(res.key)
    },
    async importHmacKey(tenant, spec) {
      const res = await call(tenant, (o) =>
        kms.importKey(
          ImportKeyRequest.fromPartial({
            wrappedKey: spec.wrappedKey,
            unwrappingKeyId: spec.unwrappingKeyId,
            keySpec: {
              algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
              purpose: spec.purpose,
              labels: { ...spec.labels },
            },
          }),
          o,
        ),
      )
      return keyInfo(res.key)
    },
    async getKey(tenant, keyId) {
      return keyInfo((await call(tenant, (o) => kms.getKey(GetKeyRequest.fromPartial({ keyId }), o))).key)
    },
    async rotateKey(tenant, keyId) {
      return keyInfo((await call(tenant, (o) => kms.rotateKey(RotateKeyRequest.fromPartial({ keyId }), o))).key)
    },
    async sign(tenant, keyId, message) {
      const res = await call(tenant, (o) =>
        kms.sign(SignRequest.fromPartial({ keyId, message: Buffer.from(message) }), o),
      )
      return { signature: new Uint8Array(res.signature), version: res.keyVersion }
    },
    async mac(tenant, keyId, data) {
      const res = await call(tenant, (o) => kms.mac(MacRequest.fromPartial({ keyId, data: Buffer.from(data) }), o))
      return new Uint8Array(res.mac)
    },
    async verifyMac(tenant, keyId, data, mac) {
      const res = await call(tenant, (o) =>
        kms.verifyMac(VerifyMacRequest.fromPartial({ keyId, data: Buffer.from(data), mac: Buffer.from(mac) }), o),
      )
      return res.valid
    },
    async wrapKeyForJwk(tenant, keyId, publicJwk) {
      const res = await call(tenant, (o) =>
        kms.wrapKey(WrapKeyRequest.fromPartial({ keyId, recipient: { $case: 'publicJwk', value: publicJwk } }), o),
      )
      return res.wrappedKey
    },
    async deriveHmacKey(tenant, baseKeyId, hkdf, spec) {
      const usagePolicy =
        spec.grantees.length === 0
          ? []
          : [
              {
                principals: [...spec.grantees],
                operations: [KeyOperation.KEY_OPERATION_MAC, KeyOperation.KEY_OPERATION_VERIFY_MAC],
              },
            ]
      const res = await call(tenant, (o) =>
        kms.deriveKey(
          DeriveKeyRequest.fromPartial({
            baseKeyId,
            kdf: { $case: 'hkdf', value: { salt: Buffer.from(hkdf.salt), info: Buffer.from(hkdf.info) } },
            keySpec: {
              algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
              purpose: spec.purpose,
              exportable: false,
              usagePolicy,
              labels: { ...spec.labels },
            },
          }),
          o,
        ),
      )
      return keyInfo(res.key)
    },
    async scheduleDestruction(tenant, keyId, destroyAfter) {
      await call(tenant, (o) =>
        kms.setKeyState(
          SetKeyStateRequest.fromPartial({
            keyId,
            state: KeyState.KEY_STATE_DESTRUCTION_SCHEDULED,
            destroyAfter,
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
