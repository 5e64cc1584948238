/**
 * proto <-> domain conversions: the only place where generated types and domain types meet.
 * Enum values are translated by name (KEY_ALGORITHM_AES_256_GCM <-> AES_256_GCM); unknown or
 * UNSPECIFIED values become ERR_INVALID_ARGUMENT naming the field.
 */
import { createPublicKey } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import * as pb from '@m2msec/proto/kms/v1'
import type { KeyAlgorithm, SeOperation, SeType } from '../se/api.ts'
import { KEY_ALGORITHMS } from '../se/api.ts'
import type { KeyOperation, KeyRecord, KeyState, UsageRule } from '../domain/model.ts'
import { KEY_OPERATIONS } from '../domain/model.ts'
import type { NewKeySpec } from '../domain/key-spec.ts'
import type { SecureEnvironmentInfo } from '../domain/operations/list-secure-environments.ts'

/** Domain bytes -> proto bytes (ts-proto types `bytes` as Buffer) without copying. */
export function buf(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function enumFromProto<T extends string>(
  value: number,
  names: Record<number, string>,
  prefix: string,
  allowed: readonly T[],
  field: string,
): T {
  const name = names[value]?.slice(prefix.length)
  if (name === undefined || !(allowed as readonly string[]).includes(name)) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', `${field} is missing or unknown`, { field })
  }
  return name as T
}

function enumToProto(name: string, byName: Record<string, number | string>, prefix: string): number {
  const v = byName[prefix + name]
  if (typeof v !== 'number') throw new M2msecError('ERR_INTERNAL', `no proto enum value for ${prefix}${name}`)
  return v
}

export function algorithmFromProto(v: pb.KeyAlgorithm, field = 'algorithm'): KeyAlgorithm {
  return enumFromProto(v, pb.KeyAlgorithm, 'KEY_ALGORITHM_', KEY_ALGORITHMS, field)
}
export function algorithmToProto(a: KeyAlgorithm): pb.KeyAlgorithm {
  return enumToProto(a, pb.KeyAlgorithm, 'KEY_ALGORITHM_')
}
export function operationFromProto(v: pb.KeyOperation): KeyOperation {
  return enumFromProto(v, pb.KeyOperation, 'KEY_OPERATION_', KEY_OPERATIONS, 'usage_policy.operations')
}
export function stateFromProto(v: pb.KeyState): Exclude<KeyState, 'DESTROYED'> {
  return enumFromProto(v, pb.KeyState, 'KEY_STATE_', ['ENABLED', 'DISABLED', 'DESTRUCTION_SCHEDULED'] as const, 'state')
}

export function usagePolicyFromProto(rules: pb.UsageRule[]): UsageRule[] {
  return rules.map((r) => ({ principals: [...r.principals], operations: r.operations.map(operationFromProto) }))
}

/** A KeySpec from the wire; `keySpec` is required. */
export function keySpecFromProto(spec: pb.KeySpec | undefined, secureEnvironment?: string): NewKeySpec {
  if (spec === undefined) throw new M2msecError('ERR_INVALID_ARGUMENT', 'key_spec is required', { field: 'key_spec' })
  return {
    ...(spec.keyId === '' ? {} : { keyId: spec.keyId }),
    algorithm: algorithmFromProto(spec.algorithm, 'key_spec.algorithm'),
    purpose: spec.purpose,
    exportable: spec.exportable,
    usagePolicy: usagePolicyFromProto(spec.usagePolicy),
    labels: spec.labels,
    ...(secureEnvironment === undefined || secureEnvironment === '' ? {} : { secureEnvironment }),
  }
}

function publicJwk(spkiBase64: string): string {
  const jwk = createPublicKey({ key: Buffer.from(spkiBase64, 'base64'), format: 'der', type: 'spki' }).export({
    format: 'jwk',
  })
  return JSON.stringify(jwk)
}

/** Metadata and public keys only: SE refs never leave the service. */
export function keyToProto(k: KeyRecord): pb.Key {
  return pb.Key.fromPartial({
    id: k.id,
    tenant: k.tenant,
    algorithm: algorithmToProto(k.algorithm),
    purpose: k.purpose,
    state: enumToProto(k.state, pb.KeyState, 'KEY_STATE_'),
    ...(k.destroyAfter === undefined ? {} : { destroyAfter: new Date(k.destroyAfter) }),
    secureEnvironment: k.secureEnvironment,
    exportable: k.exportable,
    primaryVersion: k.primaryVersion,
    versions: k.versions.map((v) => ({
      version: v.version,
      state:
        v.destroyed === true
          ? pb.KeyVersionState.KEY_VERSION_STATE_DESTROYED
          : pb.KeyVersionState.KEY_VERSION_STATE_ENABLED,
      createdAt: new Date(v.createdAt),
      ...(v.publicKeySpki === undefined
        ? {}
        : { publicKeySpki: Buffer.from(v.publicKeySpki, 'base64'), publicJwk: publicJwk(v.publicKeySpki) }),
    })),
    usagePolicy: k.usagePolicy.map((r) => ({
      principals: [...r.principals],
      operations: r.operations.map((o) => enumToProto(o, pb.KeyOperation, 'KEY_OPERATION_')),
    })),
    labels: { ...k.labels },
    createdAt: new Date(k.createdAt),
    updatedAt: new Date(k.updatedAt),
    createdBy: k.createdBy,
  })
}

const SE_TYPES: Record<SeType, pb.SecureEnvironmentType> = {
  software: pb.SecureEnvironmentType.SECURE_ENVIRONMENT_TYPE_SOFTWARE,
  pkcs11: pb.SecureEnvironmentType.SECURE_ENVIRONMENT_TYPE_PKCS11,
  vault: pb.SecureEnvironmentType.SECURE_ENVIRONMENT_TYPE_VAULT,
  'aws-kms': pb.SecureEnvironmentType.SECURE_ENVIRONMENT_TYPE_AWS_KMS,
}

function seOperationToProto(op: SeOperation): pb.SecureEnvironmentOperation {
  return enumToProto(
    op.toUpperCase().replaceAll('-', '_'),
    pb.SecureEnvironmentOperation,
    'SECURE_ENVIRONMENT_OPERATION_',
  )
}

export function secureEnvironmentToProto(se: SecureEnvironmentInfo): pb.SecureEnvironment {
  return pb.SecureEnvironment.fromPartial({
    name: se.name,
    type: SE_TYPES[se.type],
    protectionLevel: se.protectionLevel,
    algorithms: se.capabilities.algorithms.map(algorithmToProto),
    operations: se.capabilities.operations.map(seOperationToProto),
    isDefault: se.isDefault,
  })
}
