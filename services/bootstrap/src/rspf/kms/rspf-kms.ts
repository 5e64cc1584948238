/**
 * {@link RspfKms} over the KMS gRPC API. The bootstrap service calls the KMS as a platform
 * service (mTLS identity in tenant `_platform`, role `service`) and names the tenant in the
 * `m2msec-tenant` header; the KMS then treats it as an admin of that tenant (needed for
 * ImportKey).
 *
 * Ke reaches the KMS only inside a JWE (ECDH-ES+A256KW, A256GCM) made for the tenant's
 * EC_P256_ECDH key `rspf-import`, which this adapter creates on first use.
 */
import type * as grpc from '@grpc/grpc-js'
import { CompactEncrypt, importJWK, type JWK } from 'jose'
import { isM2msecError, M2msecError } from '@m2msec/errors'
import {
  CreateKeyRequest,
  DeriveKeyRequest,
  GetKeyRequest,
  GetSecretRequest,
  ImportKeyRequest,
  KeyAlgorithm,
  KeyManagementService,
  KeyOperation,
  PutSecretRequest,
  WrapKeyRequest,
  type Key,
  type KeyManagementClient,
} from '@m2msec/proto/kms/v1'
import { promiseClient, createTenantCaller } from '@m2msec/runtime'
import type { RspfKms } from '../domain/ports.ts'

/** How the RSPF reaches the KMS. */
export interface RspfKmsOptions {
  /** A KMS client (its channel carries the service's mTLS identity). Not closed by the RSPF. */
  readonly client: KeyManagementClient
  /** Bearer token sent on every call (development: the KMS dev admin token). */
  readonly token?: string
  /** Deadline of each call, ms. Default 5000. */
  readonly timeoutMs?: number
}

/** Id of the tenant's EC_P256_ECDH key that Ke imports are wrapped for. */
export const IMPORT_KEY_ID = 'rspf-import'

interface ImportKey {
  readonly publicJwk: JWK
  /** Our own principal id as the KMS sees it (the import key's creator). */
  readonly self: string
}

/**
 * @example
 * ```ts
 * const kms = createRspfKms({ client: new KeyManagementClient(target, creds), timeoutMs: 5000 })
 * await kms.importEnrolmentKey('acme', 'rspf-ke-…', ke, expiresAt)
 * ```
 */
export function createRspfKms(opts: RspfKmsOptions): RspfKms {
  const kms = promiseClient(KeyManagementService, opts.client as unknown as grpc.Client)
  const importKeys = new Map<string, Promise<ImportKey>>()

  const call = createTenantCaller({ token: opts.token, timeoutMs: opts.timeoutMs ?? 5000 })

  const importKeyOf = (key: Key | undefined): ImportKey => {
    const jwk = key?.versions.find((v) => v.version === key.primaryVersion)?.publicJwk
    if (key === undefined || jwk === undefined || jwk === '') {
      throw new M2msecError('ERR_INTERNAL', 'the KMS import key has no public JWK')
    }
    return { publicJwk: JSON.parse(jwk) as JWK, self: key.createdBy }
  }

  const loadImportKey = async (tenant: string): Promise<ImportKey> => {
    try {
      return importKeyOf(
        (await call(tenant, (o) => kms.getKey(GetKeyRequest.fromPartial({ keyId: IMPORT_KEY_ID }), o))).key,
      )
    } catch (err) {
      if (!isM2msecError(err) || err.code !== 'ERR_KEY_NOT_FOUND') throw err
    }
    try {
      const res = await call(tenant, (o) =>
        kms.createKey(
          CreateKeyRequest.fromPartial({
            keySpec: {
              keyId: IMPORT_KEY_ID,
              algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_ECDH,
              purpose: 'RSPF: receives enrolment keys (Ke) wrapped by the bootstrap service',
            },
          }),
          o,
        ),
      )
      return importKeyOf(res.key)
    } catch (err) {
      // Another replica created it in between.
      if (!isM2msecError(err) || err.code !== 'ERR_ALREADY_EXISTS') throw err
      return importKeyOf(
        (await call(tenant, (o) => kms.getKey(GetKeyRequest.fromPartial({ keyId: IMPORT_KEY_ID }), o))).key,
      )
    }
  }

  const importKey = (tenant: string): Promise<ImportKey> => {
    let found = importKeys.get(tenant)
    if (found === undefined) {
      found = loadImportKey(tenant)
      found.catch(() => importKeys.delete(tenant))
      importKeys.set(tenant, found)
    }
    return found
  }

  return {
    async importEnrolmentKey(tenant, keyId, ke, expiresAt) {
      const { publicJwk, self } = await importKey(tenant)
      const recipient = await importJWK(publicJwk, 'ECDH-ES+A256KW')
      const wrappedKey = await new CompactEncrypt(ke)
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
        .encrypt(recipient)
      await call(tenant, (o) =>
        kms.importKey(
          ImportKeyRequest.fromPartial({
            wrappedKey,
            unwrappingKeyId: IMPORT_KEY_ID,
            keySpec: {
              keyId,
              algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
              purpose: 'RSPF enrolment key Ke (TS-0003 §8.3)',
              // Exportable only so that keys derived from it can be wrapped for targets; the
              // usage policy grants nobody EXPORT (nor MAC) on Ke itself.
              exportable: true,
              usagePolicy: [{ principals: [self], operations: [KeyOperation.KEY_OPERATION_DERIVE] }],
              labels: { 'rspf.kind': 'ke', 'rspf.expires-at': expiresAt.toISOString() },
            },
          }),
          o,
        ),
      )
    },

    async deriveHmacKey(tenant, baseKeyId, keyId, data, expiresAt) {
      const { self } = await importKey(tenant)
      try {
        await call(tenant, (o) =>
          kms.deriveKey(
            DeriveKeyRequest.fromPartial({
              baseKeyId,
              kdf: { $case: 'hmacSha256', value: { data: Buffer.from(data) } },
              keySpec: {
                keyId,
                algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
                purpose: 'RSPF credential derived from Ke for an enrolment target (TS-0003 §10.3)',
                exportable: true,
                usagePolicy: [{ principals: [self], operations: [KeyOperation.KEY_OPERATION_EXPORT] }],
                labels: { 'rspf.kind': 'derived', 'rspf.expires-at': expiresAt.toISOString() },
              },
            }),
            o,
          ),
        )
      } catch (err) {
        if (isM2msecError(err) && err.code === 'ERR_ALREADY_EXISTS') return
        throw err
      }
    },

    async wrapForJwk(tenant, keyId, publicJwk) {
      const res = await call(tenant, (o) =>
        kms.wrapKey(WrapKeyRequest.fromPartial({ keyId, recipient: { $case: 'publicJwk', value: publicJwk } }), o),
      )
      return res.wrappedKey
    },

    async getSecret(tenant, name) {
      try {
        const res = await call(tenant, (o) => kms.getSecret(GetSecretRequest.fromPartial({ name }), o))
        // The decoded buffer itself, so the caller zeroises the bytes it was given.
        return res.value
      } catch (err) {
        if (isM2msecError(err) && err.code === 'ERR_SECRET_NOT_FOUND') return undefined
        throw err
      }
    },

    async putSecret(tenant, name, value) {
      await call(tenant, (o) => kms.putSecret(PutSecretRequest.fromPartial({ name, value: Buffer.from(value) }), o))
    },
  }
}
