/**
 * How a platform service calls another one on behalf of a tenant: the `m2msec-tenant` header
 * (honoured only for `_platform` service identities), an optional development bearer token, a
 * deadline per call, and gRPC errors turned back into typed M2msecErrors.
 */
import * as grpc from '@grpc/grpc-js'
import { fromGrpcError } from './errors.ts'
import { TENANT_METADATA } from './token-auth.ts'

/** Options of {@link createTenantCaller}. */
export interface TenantCallerOptions {
  /** DEVELOPMENT ONLY: a bearer token sent on every call (production uses the mTLS identity). */
  readonly token?: string | undefined
  /** Deadline of each call, ms. */
  readonly timeoutMs: number
}

/** Runs one gRPC call for `tenant` with the metadata and deadline to pass to it. */
export type TenantCaller = <T>(
  tenant: string,
  run: (o: { metadata: grpc.Metadata; deadline: Date }) => Promise<T>,
) => Promise<T>

/**
 * @example
 * ```ts
 * const call = createTenantCaller({ token, timeoutMs: 5000 })
 * const res = await call('acme', (o) => kms.sign(SignRequest.fromPartial({ keyId, message }), o))
 * ```
 */
export function createTenantCaller(opts: TenantCallerOptions): TenantCaller {
  return async (tenant, run) => {
    const metadata = new grpc.Metadata()
    metadata.set(TENANT_METADATA, tenant)
    if (opts.token !== undefined) metadata.set('authorization', `Bearer ${opts.token}`)
    try {
      return await run({ metadata, deadline: new Date(Date.now() + opts.timeoutMs) })
    } catch (err) {
      throw fromGrpcError(err as grpc.ServiceError)
    }
  }
}
