/**
 * The KMS calls authz needs as a DAS Server: the tenant's token signing key (created on first
 * use), its public keys, and ES256 signatures. One channel serves every tenant: each call names
 * its tenant in the `m2msec-tenant` header; with authz's platform certificate
 * (`m2msec://_platform/authz`, `OU=role:service`) the KMS treats it as an admin of that tenant.
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import {
  CreateKeyRequest,
  GetKeyRequest,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  KeyVersionState,
  SignRequest,
  type Key,
} from '@m2msec/proto/kms/v1'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { promiseClient, type PromiseClient, createTenantCaller } from '@m2msec/runtime'

/** How authz reaches the KMS (the `das.kms` config section). */
export interface KmsClientOptions {
  /** `host:port` of the KMS. */
  readonly target: string
  /** TLS: the CA of the KMS server certificate, and authz's client certificate and key (mTLS). */
  readonly tls?: {
    readonly caFile: string
    readonly certFile?: string | undefined
    readonly keyFile?: string | undefined
    readonly serverName?: string | undefined
  }
  /** Bearer token for the KMS (development only), sent on every call. */
  readonly token?: string
  /** Deadline of each call, ms. */
  readonly timeoutMs: number
}

/** One version of a signing key. */
export interface SigningKeyVersion {
  readonly version: number
  /** Public key as a JWK (JSON text); absent once destroyed. */
  readonly publicJwk?: string
}

/** A signing key's public metadata. */
export interface SigningKeyInfo {
  readonly keyId: string
  readonly primaryVersion: number
  readonly versions: readonly SigningKeyVersion[]
}

/** The DAS signing key operations, per tenant. */
export interface DasKms {
  /** The key, created as EC_P256_SIGN when it does not exist yet. */
  ensureSigningKey(tenant: string, keyId: string): Promise<SigningKeyInfo>
  /** ES256 signature (r||s) of `message` with the key's primary version, and that version. */
  sign(tenant: string, keyId: string, message: Uint8Array): Promise<{ signature: Uint8Array; version: number }>
  close(): void
}

function info(key: Key | undefined): SigningKeyInfo {
  if (key === undefined) throw new M2msecError('ERR_INTERNAL', 'the KMS answered without a key')
  return {
    keyId: key.id,
    primaryVersion: key.primaryVersion,
    versions: key.versions.map((v) => ({
      version: v.version,
      ...(v.publicJwk === '' || v.state === KeyVersionState.KEY_VERSION_STATE_DESTROYED
        ? {}
        : { publicJwk: v.publicJwk }),
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
 * const kms = createDasKms({ target: 'kms:7001', tls: { caFile, certFile, keyFile }, timeoutMs: 5000 })
 * const key = await kms.ensureSigningKey('acme', 'das-signing')
 * ```
 */
export function createDasKms(opts: KmsClientOptions): DasKms {
  const channelOptions: grpc.ClientOptions =
    opts.tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': opts.tls.serverName }
  const raw = new KeyManagementClient(opts.target, credentials(opts), channelOptions)
  const kms: PromiseClient<typeof KeyManagementService> = promiseClient(KeyManagementService, raw)

  const call = createTenantCaller({ token: opts.token, timeoutMs: opts.timeoutMs })
  const getKey = async (tenant: string, keyId: string) =>
    info((await call(tenant, (o) => kms.getKey(GetKeyRequest.fromPartial({ keyId }), o))).key)

  return {
    async ensureSigningKey(tenant, keyId) {
      try {
        return await getKey(tenant, keyId)
      } catch (err) {
        if (!isM2msecError(err) || err.code !== 'ERR_KEY_NOT_FOUND') throw err
      }
      try {
        const res = await call(tenant, (o) =>
          kms.createKey(
            CreateKeyRequest.fromPartial({
              keySpec: {
                keyId,
                algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_SIGN,
                purpose: 'oneM2M DAS token signing (authz IssueToken)',
              },
            }),
            o,
          ),
        )
        return info(res.key)
      } catch (err) {
        // Another replica created it first.
        if (isM2msecError(err) && err.code === 'ERR_ALREADY_EXISTS') return getKey(tenant, keyId)
        throw err
      }
    },
    async sign(tenant, keyId, message) {
      const res = await call(tenant, (o) =>
        kms.sign(SignRequest.fromPartial({ keyId, message: Buffer.from(message) }), o),
      )
      return { signature: new Uint8Array(res.signature), version: res.keyVersion }
    },
    close() {
      raw.close()
    },
  }
}
