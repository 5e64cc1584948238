/**
 * The KeyManagement gRPC service: decode -> call the use case -> encode. Nothing else lives
 * here: validation, policy and audit are in the domain; authentication, error mapping, tracing
 * and limits in @m2msec/runtime.
 */
import { M2msecError } from '@m2msec/errors'
import type * as pb from '@m2msec/proto/kms/v1'
import { KeyAlgorithm } from '@m2msec/proto/kms/v1'
import type { Status } from '@m2msec/proto/google/rpc'
import { toRpcStatus, type UnaryHandlers } from '@m2msec/runtime'
import type { Caller } from '../domain/model.ts'
import type { KmsOperations } from '../domain/operations/index.ts'
import type { BatchOutcome } from '../domain/operations/batch.ts'
import { buf, keySpecFromProto, keyToProto, secureEnvironmentToProto, stateFromProto } from './mapping.ts'

export type KmsHandlers = UnaryHandlers<typeof pb.KeyManagementService>

/** Per-item results of a batch as the proto oneof: the response, or a google.rpc.Status. */
function outcomes<T, R>(
  items: readonly BatchOutcome<T>[],
  encode: (value: T) => R,
): Array<{ outcome: { $case: 'result'; value: R } | { $case: 'error'; value: Status } }> {
  return items.map((o) => ({
    outcome: o.ok
      ? { $case: 'result' as const, value: encode(o.value) }
      : { $case: 'error' as const, value: toRpcStatus(o.error) },
  }))
}

export function createKmsGrpcService(ops: KmsOperations): KmsHandlers {
  const encryptOne = async (r: pb.EncryptRequest, c: Caller) => {
    const out = await ops.encrypt(c, { keyId: r.keyId, plaintext: r.plaintext, aad: r.associatedData })
    return { ciphertext: buf(out.ciphertext), keyId: r.keyId, keyVersion: out.version }
  }
  const decryptOne = async (r: pb.DecryptRequest, c: Caller) => {
    const out = await ops.decrypt(c, { keyId: r.keyId, ciphertext: r.ciphertext, aad: r.associatedData })
    return { plaintext: buf(out.plaintext), keyId: out.keyId, keyVersion: out.version }
  }
  const signOne = async (r: pb.SignRequest, c: Caller) => {
    const out = await ops.sign(c, { keyId: r.keyId, message: r.message })
    return { signature: buf(out.signature), keyId: r.keyId, keyVersion: out.version }
  }
  const macOne = async (r: pb.MacRequest, c: Caller) => {
    const out = await ops.mac(c, { keyId: r.keyId, data: r.data })
    return { mac: buf(out.mac), keyId: r.keyId, keyVersion: out.version }
  }

  return {
    async createKey(r, { principal }) {
      return { key: keyToProto(await ops.createKey(principal, keySpecFromProto(r.keySpec, r.secureEnvironment))) }
    },
    async getKey(r, { principal }) {
      return { key: keyToProto(await ops.getKey(principal, r.keyId)) }
    },
    async listKeys(r, { principal }) {
      const out = await ops.listKeys(principal, { pageSize: r.pageSize, pageToken: r.pageToken })
      return { keys: out.keys.map(keyToProto), nextPageToken: out.nextPageToken ?? '' }
    },
    async rotateKey(r, { principal }) {
      return { key: keyToProto(await ops.rotateKey(principal, r.keyId)) }
    },
    async setKeyState(r, { principal }) {
      return { key: keyToProto(await ops.setKeyState(principal, r.keyId, stateFromProto(r.state), r.destroyAfter)) }
    },
    async importKey(r, { principal }) {
      const target = keySpecFromProto(r.keySpec)
      return {
        key: keyToProto(
          await ops.importKey(principal, { jwe: r.wrappedKey, unwrappingKeyId: r.unwrappingKeyId, target }),
        ),
      }
    },
    async unwrapKey(r, { principal }) {
      const target = keySpecFromProto(r.keySpec)
      return {
        key: keyToProto(
          await ops.unwrapKey(principal, { jwe: r.wrappedKey, unwrappingKeyId: r.unwrappingKeyId, target }),
        ),
      }
    },
    encrypt: (r, { principal }) => encryptOne(r, principal),
    decrypt: (r, { principal }) => decryptOne(r, principal),
    sign: (r, { principal }) => signOne(r, principal),
    async verify(r, { principal }) {
      return ops.verify(principal, {
        keyId: r.keyId,
        message: r.message,
        signature: r.signature,
        ...(r.keyVersion === 0 ? {} : { version: r.keyVersion }),
      })
    },
    mac: (r, { principal }) => macOne(r, principal),
    async verifyMac(r, { principal }) {
      return ops.verifyMac(principal, {
        keyId: r.keyId,
        data: r.data,
        mac: r.mac,
        ...(r.keyVersion === 0 ? {} : { version: r.keyVersion }),
      })
    },
    async generateRandom(r, { principal }) {
      return { data: buf(await ops.generateRandom(principal, r.length)) }
    },
    async batchEncrypt(r, { principal }) {
      const out = await ops.batchEncrypt(
        principal,
        r.items.map((i) => ({ keyId: i.keyId, plaintext: i.plaintext, aad: i.associatedData })),
      )
      return {
        results: outcomes(out, (v) => ({ ciphertext: buf(v.ciphertext), keyId: v.keyId, keyVersion: v.version })),
      }
    },
    async batchDecrypt(r, { principal }) {
      const out = await ops.batchDecrypt(
        principal,
        r.items.map((i) => ({ keyId: i.keyId, ciphertext: i.ciphertext, aad: i.associatedData })),
      )
      return { results: outcomes(out, (v) => ({ plaintext: buf(v.plaintext), keyId: v.keyId, keyVersion: v.version })) }
    },
    async batchSign(r, { principal }) {
      const out = await ops.batchSign(
        principal,
        r.items.map((i) => ({ keyId: i.keyId, message: i.message })),
      )
      return { results: outcomes(out, (v) => ({ signature: buf(v.signature), keyId: v.keyId, keyVersion: v.version })) }
    },
    async batchMac(r, { principal }) {
      const out = await ops.batchMac(
        principal,
        r.items.map((i) => ({ keyId: i.keyId, data: i.data })),
      )
      return { results: outcomes(out, (v) => ({ mac: buf(v.mac), keyId: v.keyId, keyVersion: v.version })) }
    },
    async deriveKey(r, { principal }) {
      const kdf = r.kdf
      if (kdf === undefined) throw new M2msecError('ERR_INVALID_ARGUMENT', 'kdf is required', { field: 'kdf' })
      const derivation =
        kdf.$case === 'hkdf'
          ? { kdf: 'HKDF_SHA256' as const, salt: kdf.value.salt, info: kdf.value.info }
          : kdf.$case === 'hmacSha256'
            ? { kdf: 'HMAC_SHA256' as const, data: kdf.value.data }
            : { kdf: 'KDF_3GPP' as const, fc: kdf.value.fc, params: kdf.value.params }
      const target = keySpecFromProto(r.keySpec)
      return { key: keyToProto(await ops.deriveKey(principal, { baseKeyId: r.baseKeyId, derivation, target })) }
    },
    async wrapKey(r, { principal }) {
      const rec = r.recipient
      if (rec === undefined)
        throw new M2msecError('ERR_INVALID_ARGUMENT', 'recipient is required', { field: 'recipient' })
      const recipient = rec.$case === 'kmsKeyId' ? { kmsKeyId: rec.value } : { publicJwk: rec.value }
      const out = await ops.wrapKey(principal, { keyId: r.keyId, recipient })
      return { wrappedKey: out.jwe, keyVersion: out.version }
    },
    async milenage(r, { principal }) {
      // ks_key_spec.algorithm may be left unset: Ks is always HMAC_SHA256.
      const ksSpec =
        r.ksKeySpec === undefined
          ? undefined
          : keySpecFromProto(
              r.ksKeySpec.algorithm === KeyAlgorithm.KEY_ALGORITHM_UNSPECIFIED
                ? { ...r.ksKeySpec, algorithm: KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256 }
                : r.ksKeySpec,
            )
      const o = await ops.milenage(principal, {
        keyId: r.keyId,
        rand: r.rand,
        sqn: r.sqn,
        amf: r.amf,
        ...(ksSpec === undefined ? {} : { ksKey: ksSpec }),
        omitCkIk: r.omitCkIk,
      })
      return {
        macA: buf(o.macA),
        macS: buf(o.macS),
        res: buf(o.res),
        ck: buf(o.ck),
        ik: buf(o.ik),
        ak: buf(o.ak),
        akStar: buf(o.akStar),
        ...(o.ksKey === undefined ? {} : { ksKey: keyToProto(o.ksKey) }),
      }
    },
    async putSecret(r, { principal }) {
      const info = await ops.putSecret(principal, { name: r.name, value: r.value })
      return { secret: { name: info.name, createdAt: new Date(info.createdAt), updatedAt: new Date(info.updatedAt) } }
    },
    async getSecret(r, { principal }) {
      const { value, info } = await ops.getSecret(principal, r.name)
      return {
        secret: { name: info.name, createdAt: new Date(info.createdAt), updatedAt: new Date(info.updatedAt) },
        value: buf(value),
      }
    },
    async deleteSecret(r, { principal }) {
      await ops.deleteSecret(principal, r.name)
      return {}
    },
    async listSecrets(r, { principal }) {
      const out = await ops.listSecrets(principal, { pageSize: r.pageSize, pageToken: r.pageToken })
      return {
        secrets: out.secrets.map((s) => ({
          name: s.name,
          createdAt: new Date(s.createdAt),
          updatedAt: new Date(s.updatedAt),
        })),
        nextPageToken: out.nextPageToken ?? '',
      }
    },
    async listSecureEnvironments() {
      return { secureEnvironments: ops.listSecureEnvironments().map(secureEnvironmentToProto) }
    },
  }
}
