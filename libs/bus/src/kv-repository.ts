import { setTimeout as sleep } from 'node:timers/promises'
import { isM2msecError, M2msecError } from '@m2msec/errors'
import { jetstream } from '@nats-io/jetstream'
import { Kvm, type KV, type KvEntry, type KvOptions } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import { jsonCodec, type Codec } from './codec.ts'
import { toBusError } from './errors.ts'
import { assertValidKvKey } from './tokens.ts'

/** A value with the KV revision it was read at (the input for a checked update). */
export interface Versioned<T> {
  value: T
  revision: number
}

/** One item of {@link KvRepository.list}. */
export interface KvItem<T> {
  key: string
  value: T
  revision: number
}

/** One change seen by {@link KvRepository.watch}. `value` is absent for deletes. */
export interface KvChange<T> {
  key: string
  value?: T
  revision: number
  op: 'put' | 'delete'
}

/** Options of {@link KvRepository.open}. Limits apply only when the bucket is created. */
export interface KvRepositoryOptions<T> {
  /** Value codec. Default: JSON. */
  codec?: Codec<T>
  /** Revisions kept per key (1..64). Default 1. */
  history?: number
  /** Replicas of the bucket's stream (1 in development, 3 in production). Default 1. */
  replicas?: number
  /** Age after which the server removes a value, ms (nonce/B-TID buckets). Default: none. */
  ttlMs?: number
  /** Largest encoded value in bytes; larger writes fail with ERR_PAYLOAD_TOO_LARGE. Default 1 MiB. */
  maxValueBytes?: number
  /**
   * Bound of the whole bucket in bytes (stream max_bytes); when full, new keys are refused
   * until old ones expire. Default: none. For buckets that unauthenticated requests write to.
   */
  maxBytes?: number
  /** Timeout of each KV request, ms. Default 5000. Short timeouts recover faster from failover. */
  timeoutMs?: number
}

/** Options of {@link KvRepository.list}. */
export interface KvListOptions {
  /** Page size, 1..1000. Default 100. */
  limit?: number
  /** Return only keys sorted after this one (the `next` of the previous page). */
  after?: string
}

/** A running watcher; `stop()` ends it and waits until no handler call is running. */
export interface KvWatch {
  stop(): Promise<void>
}

const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
const BUCKET_NAME = /^[-\w]+$/

/**
 * One JetStream KV bucket holding one aggregate type. Every write is checked by revision, so
 * concurrent replicas cannot lose each other's updates:
 * - `create` fails with ERR_ALREADY_EXISTS when the key exists;
 * - `update`/`delete(key, revision)` fail with ERR_REVISION_CONFLICT when someone wrote since;
 * - `modify` wraps read-modify-write in a retry loop on those two errors.
 * Keys must be valid KV keys: build them with `kvKey(...)`. When NATS cannot answer (timeout,
 * no responders, connection lost) methods throw ERR_UNAVAILABLE.
 *
 * @example
 * ```ts
 * const keys = await KvRepository.open<KeyRecord>(nc, 'kms-keys', { history: 5 })
 * const rev = await keys.create(kvKey(tenant, keyId), record)
 * await keys.modify(kvKey(tenant, keyId), (k) => ({ ...k!, state: 'disabled' }))
 * ```
 */
export class KvRepository<T> {
  readonly bucket: string
  readonly #kv: KV
  readonly #codec: Codec<T>
  readonly #maxValueBytes: number

  private constructor(bucket: string, kv: KV, codec: Codec<T>, maxValueBytes: number) {
    this.bucket = bucket
    this.#kv = kv
    this.#codec = codec
    this.#maxValueBytes = maxValueBytes
  }

  /**
   * Opens the bucket, creating it with the given limits when it does not exist (an existing
   * bucket keeps its configuration).
   */
  static async open<T>(
    nc: NatsConnection,
    bucket: string,
    opts: KvRepositoryOptions<T> = {},
  ): Promise<KvRepository<T>> {
    if (!BUCKET_NAME.test(bucket)) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'bucket names use only letters, digits, - and _', {
        bucket,
      })
    }
    const maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
    const kvOpts: Partial<KvOptions> = {
      history: opts.history ?? 1,
      replicas: opts.replicas ?? 1,
      maxValueSize: maxValueBytes,
    }
    if (opts.ttlMs !== undefined) kvOpts.ttl = opts.ttlMs
    if (opts.maxBytes !== undefined) kvOpts.max_bytes = opts.maxBytes
    try {
      const js = jetstream(nc, { timeout: opts.timeoutMs ?? 5_000 })
      const kv = await new Kvm(js).create(bucket, kvOpts)
      return new KvRepository(bucket, kv, opts.codec ?? jsonCodec<T>(), maxValueBytes)
    } catch (err) {
      throw toBusError(err, 'open KV bucket', { bucket })
    }
  }

  /** The current value and its revision, or undefined when the key does not exist or was deleted. */
  async get(key: string): Promise<Versioned<T> | undefined> {
    assertValidKvKey(key)
    let entry: KvEntry | null
    try {
      entry = await this.#kv.get(key)
    } catch (err) {
      throw toBusError(err, 'kv get', { bucket: this.bucket })
    }
    if (entry === null || entry.operation !== 'PUT') return undefined
    return { value: this.#codec.decode(entry.value), revision: entry.revision }
  }

  /** Stores a new key; returns its revision. ERR_ALREADY_EXISTS when the key exists. */
  async create(key: string, value: T): Promise<number> {
    assertValidKvKey(key)
    const bytes = this.#encode(value)
    try {
      return await this.#kv.create(key, bytes)
    } catch (err) {
      throw toBusError(err, 'kv create', { bucket: this.bucket }, { conflict: 'ERR_ALREADY_EXISTS' })
    }
  }

  /**
   * Replaces the value if the key is still at `revision`; returns the new revision.
   * ERR_REVISION_CONFLICT when another writer got there first (re-read and retry).
   */
  async update(key: string, value: T, revision: number): Promise<number> {
    assertValidKvKey(key)
    assertRevision(revision)
    const bytes = this.#encode(value)
    try {
      return await this.#kv.update(key, bytes, revision)
    } catch (err) {
      throw toBusError(err, 'kv update', { bucket: this.bucket })
    }
  }

  /**
   * Deletes the key (a delete marker; history keeps older revisions). With `revision`, only if
   * the key is still at that revision (ERR_REVISION_CONFLICT otherwise).
   */
  async delete(key: string, revision?: number): Promise<void> {
    assertValidKvKey(key)
    if (revision !== undefined) assertRevision(revision)
    try {
      await this.#kv.delete(key, revision === undefined ? {} : { previousSeq: revision })
    } catch (err) {
      throw toBusError(err, 'kv delete', { bucket: this.bucket })
    }
  }

  /**
   * Read-modify-write with compare-and-set: reads the key, calls `fn` with the current value
   * (undefined when absent), and writes the result with `create` or a revision-checked
   * `update`. On a conflict it re-reads and calls `fn` again, up to `retries` times (default
   * 10), then throws ERR_REVISION_CONFLICT. `fn` must be pure (it may run more than once);
   * throw from it to abort.
   */
  async modify(key: string, fn: (current: T | undefined) => T, opts: { retries?: number } = {}): Promise<Versioned<T>> {
    const retries = opts.retries ?? 10
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(key)
      const next = fn(current?.value)
      try {
        const revision =
          current === undefined ? await this.create(key, next) : await this.update(key, next, current.revision)
        return { value: next, revision }
      } catch (err) {
        const conflict =
          isM2msecError(err) && (err.code === 'ERR_REVISION_CONFLICT' || err.code === 'ERR_ALREADY_EXISTS')
        if (!conflict) throw err
        if (attempt >= retries) {
          throw new M2msecError('ERR_REVISION_CONFLICT', 'kv modify: too many concurrent writers', {
            bucket: this.bucket,
            attempts: attempt + 1,
          })
        }
        // A little jitter keeps two losers from colliding again in lockstep.
        await sleep(Math.floor(Math.random() * (2 + attempt * 2)))
      }
    }
  }

  /**
   * One page of the live keys under `prefix` (`''` for all keys, otherwise whole key tokens:
   * `list(kvKey(tenant))` lists `<tenant>.*…`), sorted by key. `next` is set when more keys
   * follow; pass it as `after` to get the next page. Each page reads the key list of the
   * prefix once (headers only) and then the page's values, so it suits buckets of up to tens
   * of thousands of keys per prefix.
   */
  async list(prefix: string, opts: KvListOptions = {}): Promise<{ items: Array<KvItem<T>>; next?: string }> {
    const limit = opts.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'limit must be an integer 1..1000', { limit })
    }
    const filter = prefixFilter(prefix)
    const keys: string[] = []
    try {
      const iter = await this.#kv.keys(filter)
      for await (const k of iter) keys.push(k)
    } catch (err) {
      throw toBusError(err, 'kv list', { bucket: this.bucket })
    }
    const after = opts.after
    const candidates = keys.filter((k) => after === undefined || k > after).sort()
    const page = candidates.slice(0, limit)
    const entries = await Promise.all(page.map(async (key) => ({ key, entry: await this.get(key) })))
    const items: Array<KvItem<T>> = []
    for (const { key, entry } of entries) {
      // A key deleted between listing and reading is simply left out.
      if (entry !== undefined) items.push({ key, value: entry.value, revision: entry.revision })
    }
    const last = page[page.length - 1]
    return candidates.length > limit && last !== undefined ? { items, next: last } : { items }
  }

  /**
   * Watches the keys under `prefix` (same rule as {@link list}): `onChange` first receives the
   * current value of every live key, then every put and delete as it happens, one call at a
   * time in revision order. Resolves once the watcher is set up; the initial values follow
   * asynchronously. Errors thrown by `onChange` (or a value that does not decode) go to
   * `onError` (default: a process warning) and do not stop the watcher.
   */
  async watch(
    prefix: string,
    onChange: (change: KvChange<T>) => void | Promise<void>,
    opts: { onError?: (err: unknown) => void } = {},
  ): Promise<KvWatch> {
    const filter = prefixFilter(prefix)
    const onError = opts.onError ?? ((err: unknown) => process.emitWarning(`kv watch ${this.bucket}: ${String(err)}`))
    let iter: Awaited<ReturnType<KV['watch']>>
    // Delete markers at or below the stream's last sequence before the watch are part of the
    // initial snapshot (keys removed earlier), not changes: they are skipped. Later ones are
    // real deletes. (nats.js's own isUpdate flag marks the last snapshot entry as an update.)
    let snapshotSeq: number
    try {
      snapshotSeq = (await this.#kv.status()).streamInfo.state.last_seq
      iter = await this.#kv.watch({ key: filter })
    } catch (err) {
      throw toBusError(err, 'kv watch', { bucket: this.bucket })
    }
    const loop = (async () => {
      for await (const e of iter) {
        const isDelete = e.operation !== 'PUT'
        if (isDelete && e.revision <= snapshotSeq) continue
        try {
          const change: KvChange<T> = isDelete
            ? { key: e.key, revision: e.revision, op: 'delete' }
            : { key: e.key, value: this.#codec.decode(e.value), revision: e.revision, op: 'put' }
          await onChange(change)
        } catch (err) {
          onError(err)
        }
      }
    })()
    return {
      async stop() {
        iter.stop()
        await loop
      },
    }
  }

  #encode(value: T): Uint8Array {
    const bytes = this.#codec.encode(value)
    if (bytes.length > this.#maxValueBytes) {
      throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', 'value is larger than the bucket allows', {
        bucket: this.bucket,
        bytes: bytes.length,
        max: this.#maxValueBytes,
      })
    }
    return bytes
  }
}

function prefixFilter(prefix: string): string {
  if (prefix === '') return '>'
  const trimmed = prefix.endsWith('.') ? prefix.slice(0, -1) : prefix
  assertValidKvKey(trimmed, 'prefix')
  return `${trimmed}.>`
}

function assertRevision(revision: number): void {
  if (!Number.isSafeInteger(revision) || revision < 1) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'revision must be a positive integer', { revision })
  }
}
