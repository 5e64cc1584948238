/**
 * Promise-based wrapper over a generated grpc-js client, typed from the service definition,
 * for services calling services, the SDK and tests.
 */
import * as grpc from '@grpc/grpc-js'
import type { RequestOf, ResponseOf, UnaryMethodNames } from './server.ts'

/** Each unary method as `(request, options?) => Promise<response>`. */
export type PromiseClient<D> = {
  readonly [K in UnaryMethodNames<D>]: (
    request: RequestOf<D[K]>,
    options?: { metadata?: grpc.Metadata; deadline?: Date },
  ) => Promise<ResponseOf<D[K]>>
}

type Callback = (err: grpc.ServiceError | null, res: unknown) => void
type UnaryFn = (req: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, cb: Callback) => grpc.ClientUnaryCall

/**
 * @example
 * ```ts
 * const kms = promiseClient(KeyManagementService, new KeyManagementClient(target, creds))
 * const { ciphertext } = await kms.encrypt(EncryptRequest.fromPartial({ keyId, plaintext }))
 * ```
 */
export function promiseClient<D extends grpc.ServiceDefinition>(definition: D, client: grpc.Client): PromiseClient<D> {
  const out: Record<string, unknown> = {}
  for (const [name, method] of Object.entries(definition)) {
    if (method.requestStream || method.responseStream) continue
    const fn = (client as unknown as Record<string, UnaryFn>)[name]
    if (typeof fn !== 'function') continue
    out[name] = (request: unknown, options: { metadata?: grpc.Metadata; deadline?: Date } = {}) =>
      new Promise((resolve, reject) => {
        const metadata = options.metadata ?? new grpc.Metadata()
        fn.call(
          client,
          request,
          metadata,
          options.deadline === undefined ? {} : { deadline: options.deadline },
          (err, res) => (err ? reject(err) : resolve(res)),
        )
      })
  }
  return out as PromiseClient<D>
}
