/**
 * BatchEncrypt / BatchDecrypt / BatchSign / BatchMac: up to 1000 items in one call.
 *
 * Each distinct key (and version) is authorized once per batch, items run concurrently, and
 * every item gets its own result or typed error (as Vault transit's batch_input). Auditing
 * follows Vault's model of one audit entry per request: one record per distinct key of the
 * batch, naming principal, key, operation and the counts of items that succeeded and failed.
 * If that record cannot be written the whole batch fails with ERR_AUDIT_UNAVAILABLE. Errors that
 * are not the caller's (a bug, an SE or store outage) fail the whole call.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { loadKeyForUse } from '../access.ts'
import { boundAad, decodeEnvelope } from '../ciphertext.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller, KeyOperation, KeyRecord, KeyVersion } from '../model.ts'
import type { KmsDeps } from '../ports.ts'
import { encryptWith } from './encrypt.ts'

/** One item's outcome. */
export type BatchOutcome<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: M2msecError }

interface Prepared<D> {
  readonly keyId: string
  readonly version?: number
  readonly data: D
}

interface BatchSpec<I, D, T> {
  readonly action: string
  readonly operation: KeyOperation
  /** Validates an item and names its key; throws a user error for a bad item. */
  prepare(item: I): Prepared<D>
  run(key: KeyRecord, version: KeyVersion, data: D): Promise<T>
}

function checkItems(n: number): void {
  if (n === 0) throw new M2msecError('ERR_INVALID_ARGUMENT', 'items must not be empty', { field: 'items' })
  if (n > LIMITS.batchItems) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `at most ${LIMITS.batchItems} items per batch`, { field: 'items' })
  }
}

/** A caller's mistake (reported per item), as opposed to a failure of the service. */
function isUserError(err: unknown): err is M2msecError {
  return isM2msecError(err) && err.status !== 'INTERNAL' && err.status !== 'UNAVAILABLE'
}

async function runBatch<I, D, T>(
  deps: KmsDeps,
  caller: Caller,
  spec: BatchSpec<I, D, T>,
  items: readonly I[],
): Promise<BatchOutcome<T>[]> {
  checkItems(items.length)
  const loads = new Map<string, Promise<{ key: KeyRecord; version: KeyVersion }>>()
  const tally = new Map<string, { ok: number; failed: number; denied: number }>()
  const outcomes = await Promise.all(
    items.map(async (item): Promise<BatchOutcome<T>> => {
      let keyId = ''
      try {
        const p = spec.prepare(item)
        keyId = p.keyId
        const loadKey = `${p.keyId}\0${p.version ?? ''}`
        let load = loads.get(loadKey)
        if (load === undefined) {
          load = loadKeyForUse(deps, caller, p.keyId, spec.operation, p.version)
          loads.set(loadKey, load)
        }
        const { key, version } = await load
        const value = await spec.run(key, version, p.data)
        count(tally, keyId, 'ok')
        return { ok: true, value }
      } catch (err) {
        if (!isUserError(err)) throw err
        count(tally, keyId, err.status === 'PERMISSION_DENIED' || err.status === 'NOT_FOUND' ? 'denied' : 'failed')
        return { ok: false, error: err }
      }
    }),
  )
  for (const [keyId, t] of tally) {
    const result = t.failed + t.denied === 0 ? 'ok' : t.ok + t.failed === 0 ? 'denied' : 'error'
    try {
      await deps.audit.append({
        tenant: caller.tenant,
        principal: caller.id,
        action: spec.action,
        resource: `key/${keyId}`,
        result,
        details: { items: t.ok + t.failed + t.denied, ok: t.ok, failed: t.failed, denied: t.denied },
      })
    } catch (err) {
      throw new M2msecError('ERR_AUDIT_UNAVAILABLE', 'audit log unavailable; batch not answered', {}, { cause: err })
    }
  }
  return outcomes
}

function count(
  tally: Map<string, { ok: number; failed: number; denied: number }>,
  keyId: string,
  what: 'ok' | 'failed' | 'denied',
): void {
  const t = tally.get(keyId) ?? { ok: 0, failed: 0, denied: 0 }
  t[what]++
  tally.set(keyId, t)
}

export function batchEncrypt(
  deps: KmsDeps,
  caller: Caller,
  items: readonly { keyId: string; plaintext: Uint8Array; aad: Uint8Array }[],
): Promise<BatchOutcome<{ ciphertext: Uint8Array; keyId: string; version: number }>[]> {
  return runBatch(
    deps,
    caller,
    {
      action: 'kms.BatchEncrypt',
      operation: 'ENCRYPT',
      prepare: (i) => ({ keyId: i.keyId, data: i }),
      run: async (key, version, i) => ({ ...(await encryptWith(deps, key, version, i)), keyId: key.id }),
    },
    items,
  )
}

export function batchDecrypt(
  deps: KmsDeps,
  caller: Caller,
  items: readonly { keyId?: string; ciphertext: Uint8Array; aad: Uint8Array }[],
): Promise<BatchOutcome<{ plaintext: Uint8Array; keyId: string; version: number }>[]> {
  return runBatch(
    deps,
    caller,
    {
      action: 'kms.BatchDecrypt',
      operation: 'DECRYPT',
      prepare: (i) => {
        checkSize('ciphertext', i.ciphertext, LIMITS.ciphertextBytes)
        checkSize('associated_data', i.aad, LIMITS.aadBytes)
        const env = decodeEnvelope(i.ciphertext)
        if (i.keyId !== undefined && i.keyId !== '' && i.keyId !== env.keyId) {
          throw new M2msecError('ERR_CIPHERTEXT_INVALID', 'ciphertext was not made with this key')
        }
        return { keyId: env.keyId, version: env.version, data: { env, aad: i.aad } }
      },
      run: async (key, version, { env, aad }) => ({
        plaintext: await deps.ses
          .get(key.secureEnvironment)
          .decrypt(
            { ref: version.ref, algorithm: key.algorithm },
            env.sealed,
            boundAad(key.tenant, key.id, version.version, aad),
          ),
        keyId: key.id,
        version: version.version,
      }),
    },
    items,
  )
}

export function batchSign(
  deps: KmsDeps,
  caller: Caller,
  items: readonly { keyId: string; message: Uint8Array }[],
): Promise<BatchOutcome<{ signature: Uint8Array; keyId: string; version: number }>[]> {
  return runBatch(
    deps,
    caller,
    {
      action: 'kms.BatchSign',
      operation: 'SIGN',
      prepare: (i) => {
        checkSize('message', i.message, LIMITS.messageBytes)
        return { keyId: i.keyId, data: i.message }
      },
      run: async (key, version, message) => ({
        signature: await deps.ses
          .get(key.secureEnvironment)
          .sign({ ref: version.ref, algorithm: key.algorithm }, message),
        keyId: key.id,
        version: version.version,
      }),
    },
    items,
  )
}

export function batchMac(
  deps: KmsDeps,
  caller: Caller,
  items: readonly { keyId: string; data: Uint8Array }[],
): Promise<BatchOutcome<{ mac: Uint8Array; keyId: string; version: number }>[]> {
  return runBatch(
    deps,
    caller,
    {
      action: 'kms.BatchMac',
      operation: 'MAC',
      prepare: (i) => {
        checkSize('data', i.data, LIMITS.messageBytes)
        return { keyId: i.keyId, data: i.data }
      },
      run: async (key, version, data) => ({
        mac: await deps.ses.get(key.secureEnvironment).mac({ ref: version.ref, algorithm: key.algorithm }, data),
        keyId: key.id,
        version: version.version,
      }),
    },
    items,
  )
}
