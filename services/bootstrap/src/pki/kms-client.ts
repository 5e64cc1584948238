/**
 * The PkiKms port over the KMS gRPC API (same connection model as authn's KMS client): one
 * channel, mTLS with the service's platform certificate (`m2msec://_platform/bootstrap`,
 * `OU=role:service`), the tenant named per call in the `m2msec-tenant` header.
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import { M2msecError } from '@m2msec/errors'
import {
  CreateKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  SignRequest,
} from '@m2msec/proto/kms/v1'
import { promiseClient, type PromiseClient, createTenantCaller } from '@m2msec/runtime'
import type { PkiKms } from './domain/model.ts'

/** How the PKI reaches the KMS (same shape as the service's `kms` config section). */
export interface PkiKmsClientOptions {
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

/** A PkiKms that owns a gRPC channel. */
export interface PkiKmsClient extends PkiKms {
  close(): void
}

/**
 * @example
 * ```ts
 * const kms = createPkiKmsClient({ target: 'kms:7001', tls: { caFile, certFile, keyFile }, timeoutMs: 5000 })
 * ```
 */
export function createPkiKmsClient(opts: PkiKmsClientOptions): PkiKmsClient {
  const read = (f: string | undefined) => (f === undefined ? null : readFileSync(f))
  const creds =
    opts.tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(read(opts.tls.caFile), read(opts.tls.keyFile), read(opts.tls.certFile))
  const channelOptions: grpc.ClientOptions =
    opts.tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': opts.tls.serverName }
  const raw = new KeyManagementClient(opts.target, creds, channelOptions)
  const kms: PromiseClient<typeof KeyManagementService> = promiseClient(KeyManagementService, raw)
  const call = createTenantCaller({ token: opts.token, timeoutMs: opts.timeoutMs })
  return {
    async createSigningKey(tenant, spec) {
      const res = await call(tenant, (o) =>
        kms.createKey(
          CreateKeyRequest.fromPartial({
            keySpec: {
              keyId: spec.keyId,
              algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_SIGN,
              purpose: spec.purpose,
              exportable: false,
              labels: { ...spec.labels },
            },
            secureEnvironment: spec.secureEnvironment ?? '',
          }),
          o,
        ),
      )
      const spki = res.key?.versions[0]?.publicKeySpki
      if (res.key === undefined || spki === undefined || spki.length === 0) {
        throw new M2msecError('ERR_INTERNAL', 'the KMS answered CreateKey without a public key')
      }
      return { keyId: res.key.id, publicKeySpki: new Uint8Array(spki) }
    },
    async sign(tenant, keyId, data) {
      const res = await call(tenant, (o) => kms.sign(SignRequest.fromPartial({ keyId, message: Buffer.from(data) }), o))
      return new Uint8Array(res.signature)
    },
    close() {
      raw.close()
    },
  }
}
