/**
 * Standard gRPC probes for tests: the health `Check` (grpc.health.v1) and server reflection
 * `list_services` (grpc.reflection.v1), loaded from the .proto files that ship with
 * grpc-health-check and @grpc/reflection, as an independent client would.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

const require = createRequire(import.meta.url)

function loadService(root: string, file: string, path: string[]): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(file, { includeDirs: [root], keepCase: true, defaults: true, enums: String })
  let node: unknown = grpc.loadPackageDefinition(def)
  for (const p of path) node = (node as Record<string, unknown>)[p]
  return node as grpc.ServiceClientConstructor
}

const healthRoot = join(dirname(require.resolve('grpc-health-check/package.json')), 'proto')
const reflectionRoot = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto')

/** `grpc.health.v1.Health/Check` → 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN'. */
export async function grpcHealthCheck(
  target: string,
  credentials: grpc.ChannelCredentials,
  service = '',
): Promise<string> {
  const Health = loadService(healthRoot, 'health/v1/health.proto', ['grpc', 'health', 'v1', 'Health'])
  const client = new Health(target, credentials) as grpc.Client & Record<string, (...args: unknown[]) => unknown>
  try {
    return await new Promise((resolve, reject) =>
      client.check!({ service }, (err: grpc.ServiceError | null, res: { status: string }) =>
        err ? reject(err) : resolve(res.status),
      ),
    )
  } finally {
    client.close()
  }
}

/** Server reflection (v1) `list_services`: the fully qualified service names. */
export async function grpcListServices(target: string, credentials: grpc.ChannelCredentials): Promise<string[]> {
  const Reflection = loadService(reflectionRoot, 'grpc/reflection/v1/reflection.proto', [
    'grpc',
    'reflection',
    'v1',
    'ServerReflection',
  ])
  const client = new Reflection(target, credentials) as grpc.Client &
    Record<string, () => grpc.ClientDuplexStream<object, object>>
  try {
    return await new Promise((resolve, reject) => {
      const stream = client.ServerReflectionInfo!()
      stream.on(
        'data',
        (res: {
          list_services_response?: { service: { name: string }[] }
          error_response?: { error_message: string }
        }) => {
          if (res.error_response) reject(new Error(res.error_response.error_message))
          else resolve((res.list_services_response?.service ?? []).map((s) => s.name))
          stream.end()
        },
      )
      stream.on('error', reject)
      stream.write({ list_services: '' })
    })
  } finally {
    client.close()
  }
}
