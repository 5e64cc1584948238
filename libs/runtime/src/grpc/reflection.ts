/**
 * Descriptors for gRPC server reflection. ts-proto service definitions carry no descriptors, so
 * reflection reads them from a FileDescriptorSet (`buf build -o set.binpb`) or from the .proto
 * files. The health service's descriptor is always added.
 */
import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import * as protoLoader from '@grpc/proto-loader'
import { protoPath as healthProtoPath } from 'grpc-health-check'

/** Where reflection finds the descriptors of the services a server exposes. */
export type ReflectionSource =
  | {
      /** Binary `google.protobuf.FileDescriptorSet` (e.g. from `buf build -o`). */
      readonly descriptorSetPath: string
    }
  | {
      /** Proto file names relative to `includeDirs` (TOOLCHAIN pitfall 10). */
      readonly protoFiles: readonly string[]
      readonly includeDirs: readonly string[]
    }

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
}

/** Loads every source plus the health service into one package definition. */
export function loadReflectionDefinition(sources: readonly ReflectionSource[]): protoLoader.PackageDefinition {
  // health.proto lives in <pkg>/proto/health/v1/health.proto; load it by its relative name.
  const healthRoot = dirname(dirname(dirname(healthProtoPath)))
  const parts: protoLoader.PackageDefinition[] = [
    protoLoader.loadSync('health/v1/health.proto', {
      ...LOADER_OPTIONS,
      includeDirs: [healthRoot],
    }),
  ]
  for (const source of sources) {
    if ('descriptorSetPath' in source) {
      parts.push(protoLoader.loadFileDescriptorSetFromBuffer(readFileSync(source.descriptorSetPath), LOADER_OPTIONS))
    } else {
      parts.push(
        protoLoader.loadSync([...source.protoFiles], {
          ...LOADER_OPTIONS,
          includeDirs: [...source.includeDirs],
        }),
      )
    }
  }
  return Object.assign({}, ...parts) as protoLoader.PackageDefinition
}
