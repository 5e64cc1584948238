/**
 * The GbaZn port over the bootstrap service's gRPC API (`m2msec.bootstrap.v1.GbaZn`). authn
 * calls as a platform service (mTLS `m2msec://_platform/authn`, `OU=role:service`) naming the
 * assertion's tenant in `m2msec-tenant`, so the BSF sees `svc:authn` acting for that tenant and
 * answers only for that tenant's sessions. Its Zn policy (`zn.nafs`) must let `svc:authn` ask
 * for the MAF FQDN (authn's `maf.fqdn`); the key handle it returns is usable by `svc:authn`
 * (MAC, VERIFY_MAC) in the tenant's KMS scope.
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import {
  GbaZnClient,
  GbaZnService,
  GetRspfCredentialRequest,
  NafKeyDelivery,
  RspfTarget,
} from '@m2msec/proto/bootstrap/v1'
import { M2msecError } from '@m2msec/errors'
import { createTenantCaller, promiseClient } from '@m2msec/runtime'
import type { GbaZn } from '../domain/ports.ts'

/** How authn reaches the BSF (the `gba` config section). */
export interface ZnClientOptions {
  /** `host:port` of the bootstrap service. */
  readonly target: string
  readonly tls?: {
    readonly caFile: string
    readonly certFile?: string | undefined
    readonly keyFile?: string | undefined
    readonly serverName?: string | undefined
  }
  /** authn's MAF FQDN: the NAF FQDN of Km. */
  readonly mafFqdn: string
  readonly timeoutMs: number
}

/** A GbaZn that owns a gRPC channel. */
export interface ZnClient extends GbaZn {
  close(): void
}

/**
 * @example
 * ```ts
 * const zn = createZnClient({ target: 'bootstrap:7004', tls, mafFqdn: 'maf.example.com', timeoutMs: 5000 })
 * const km = await zn.mafKey('acme', btid) // { keyId, impi, bootstrappedAt, expiresAt }
 * ```
 */
export function createZnClient(opts: ZnClientOptions): ZnClient {
  const read = (f: string | undefined) => (f === undefined ? null : readFileSync(f))
  const creds =
    opts.tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(read(opts.tls.caFile), read(opts.tls.keyFile), read(opts.tls.certFile))
  const channelOptions: grpc.ClientOptions =
    opts.tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': opts.tls.serverName }
  const raw = new GbaZnClient(opts.target, creds, channelOptions)
  const zn = promiseClient(GbaZnService, raw)
  const call = createTenantCaller({ timeoutMs: opts.timeoutMs })
  return {
    async mafKey(tenant, btid) {
      const res = await call(tenant, (o) =>
        zn.getRspfCredential(
          GetRspfCredentialRequest.fromPartial({
            btid,
            target: RspfTarget.RSPF_TARGET_MAF,
            targetFqdn: opts.mafFqdn,
            delivery: NafKeyDelivery.NAF_KEY_DELIVERY_KEY_HANDLE,
          }),
          o,
        ),
      )
      const key = res.key
      if (key === undefined || key.keyId === '' || key.expiresAt === undefined || key.bootstrappedAt === undefined) {
        throw new M2msecError('ERR_INTERNAL', 'the BSF answered without a key handle')
      }
      return { keyId: key.keyId, impi: key.impi, bootstrappedAt: key.bootstrappedAt, expiresAt: key.expiresAt }
    },
    close() {
      raw.close()
    },
  }
}
