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
import { encryptManyWith } from './encrypt.ts'

/** One item's outcome. */
export type BatchOutcome<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: M2msecError }

interface Prepared<D> {
  readonly keyId: string
  readonly version?: number
  readonly data: D
}

type BatchSpec<I, D, T> = {
  readonly action: string
  readonly operation: KeyOperation
  /** Validates an item and names its key; throws a user error for a bad item. */
  prepare(item: I): Prepared<D>
  /** The key a bad item is counted under in the audit record, when known before `prepare`. */
  keyIdOf?(item: I): string
} & (
  | {
      /** One item; a user error fails that item. */
      run(key: KeyRecord, version: KeyVersion, data: D): Promise<T>
    }
  | {
      /** All items of one key version at once (checked in `prepare`); a user error fails them all. */
      runMany(key: KeyRecord, version: KeyVersion, data: readonly D[]): Promise<T[]>
    }
)

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

/** The items of one key (and version) of a batch. */
interface Group<D> {
  readonly keyId: string
  readonly version: number | undefined
  readonly at: number[]
  readonly data: D[]
}

async function runBatch<I, D, T>(
  deps: KmsDeps,
  caller: Caller,
  spec: BatchSpec<I, D, T>,
  items: readonly I[],
): Promise<BatchOutcome<T>[]> {
  checkItems(items.length)
  const outcomes = new Array<BatchOutcome<T>>(items.length)
  const tally = new Map<string, { ok: number; failed: number; denied: number }>()
  const succeed = (i: number, keyId: string, value: T) => {
    outcomes[i] = { ok: true, value }
    count(tally, keyId, 'ok')
  }
  const fail = (i: number, keyId: string, err: unknown) => {
    if (!isUserError(err)) throw err
    count(tally, keyId, err.status === 'PERMISSION_DENIED' || err.status === 'NOT_FOUND' ? 'denied' : 'failed')
    outcomes[i] = { ok: false, error: err }
  }

  // Each distinct key (and version) is loaded and authorized once.
  const groups = new Map<string, Group<D>>()
  items.forEach((item, i) => {
    let p: Prepared<D>
    try {
      p = spec.prepare(item)
    } catch (err) {
      fail(i, spec.keyIdOf?.(item) ?? '', err)
      return
    }
    const k = `${p.keyId}\0${p.version ?? ''}`
    let g = groups.get(k)
    if (g === undefined) {
      g = { keyId: p.keyId, version: p.version, at: [], data: [] }
      groups.set(k, g)
    }
    g.at.push(i)
    g.data.push(p.data)
  })
  await Promise.all(
    [...groups.values()].map(async (g) => {
      let loaded: { key: KeyRecord; version: KeyVersion }
      try {
        loaded = await loadKeyForUse(deps, caller, g.keyId, spec.operation, g.version)
      } catch (err) {
        for (const i of g.at) fail(i, g.keyId, err)
        return
      }
      const { key, version } = loaded
      if ('runMany' in spec) {
        let values: T[]
        try {
          values = await spec.runMany(key, version, g.data)
        } catch (err) {
          for (const i of g.at) fail(i, g.keyId, err)
          return
        }
        g.at.forEach((i, j) => succeed(i, g.keyId, values[j] as T))
        return
      }
      await Promise.all(
        g.at.map(async (i, j) => {
          try {
            succeed(i, g.keyId, await spec.run(key, version, g.data[j] as D))
          } catch (err) {
            fail(i, g.keyId, err)
          }
        }),
      )
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
      prepare: (i) => {
        checkSize('plaintext', i.plaintext, LIMITS.plaintextBytes)
        checkSize('associated_data', i.aad, LIMITS.aadBytes)
        return { keyId: i.keyId, data: i }
      },
      keyIdOf: (i) => i.keyId,
      runMany: async (key, version, data) =>
        (await encryptManyWith(deps, key, version, data)).map((ciphertext) => ({
          ciphertext,
          keyId: key.id,
          version: version.version,
        })),
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
      keyIdOf: (i) => i.keyId,
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
      keyIdOf: (i) => i.keyId,
      run: async (key, version, data) => ({
        mac: await deps.ses.get(key.secureEnvironment).mac({ ref: version.ref, algorithm: key.algorithm }, data),
        keyId: key.id,
        version: version.version,
      }),
    },
    items,
  )
}
