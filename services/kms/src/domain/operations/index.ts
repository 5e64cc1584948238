/**
 * The KMS use cases, one file each. `createKmsOperations(deps)` binds them to their ports so
 * the gRPC layer (and tests) call `ops.encrypt(caller, req)`.
 */
import type { Caller } from '../model.ts'
import type { KmsDeps } from '../ports.ts'
import { batchDecrypt, batchEncrypt, batchMac, batchSign } from './batch.ts'
import { createKey } from './create-key.ts'
import { decrypt } from './decrypt.ts'
import { deriveKey } from './derive-key.ts'
import { encrypt } from './encrypt.ts'
import { generateRandom } from './generate-random.ts'
import { getKey } from './get-key.ts'
import { importKey, unwrapKey } from './import-key.ts'
import { listKeys } from './list-keys.ts'
import { listSecureEnvironments } from './list-secure-environments.ts'
import { mac, verifyMac } from './mac.ts'
import { milenage } from './milenage.ts'
import { rotateKey } from './rotate-key.ts'
import { deleteSecret, getSecret, listSecrets, putSecret } from './secrets.ts'
import { destroyDueKey, setKeyState } from './set-key-state.ts'
import { sign } from './sign.ts'
import { verify } from './verify.ts'
import { wrapKey } from './wrap-key.ts'

type Bound<F> = F extends (deps: KmsDeps, caller: Caller, ...rest: infer A) => infer R
  ? (caller: Caller, ...rest: A) => R
  : never

function bind<F extends (deps: KmsDeps, caller: Caller, ...rest: never[]) => unknown>(deps: KmsDeps, f: F): Bound<F> {
  return ((caller: Caller, ...rest: never[]) => f(deps, caller, ...rest)) as Bound<F>
}

export function createKmsOperations(deps: KmsDeps) {
  return {
    createKey: bind(deps, createKey),
    getKey: bind(deps, getKey),
    listKeys: bind(deps, listKeys),
    rotateKey: bind(deps, rotateKey),
    setKeyState: bind(deps, setKeyState),
    importKey: bind(deps, importKey),
    unwrapKey: bind(deps, unwrapKey),
    encrypt: bind(deps, encrypt),
    batchEncrypt: bind(deps, batchEncrypt),
    batchDecrypt: bind(deps, batchDecrypt),
    batchSign: bind(deps, batchSign),
    batchMac: bind(deps, batchMac),
    decrypt: bind(deps, decrypt),
    sign: bind(deps, sign),
    verify: bind(deps, verify),
    mac: bind(deps, mac),
    verifyMac: bind(deps, verifyMac),
    generateRandom: bind(deps, generateRandom),
    deriveKey: bind(deps, deriveKey),
    wrapKey: bind(deps, wrapKey),
    milenage: bind(deps, milenage),
    putSecret: bind(deps, putSecret),
    getSecret: bind(deps, getSecret),
    deleteSecret: bind(deps, deleteSecret),
    listSecrets: bind(deps, listSecrets),
    listSecureEnvironments: () => listSecureEnvironments(deps),
    destroyDueKey: (tenant: string, keyId: string) => destroyDueKey(deps, tenant, keyId),
  }
}

export type KmsOperations = ReturnType<typeof createKmsOperations>
