import { createHash } from 'node:crypto'
import { isM2msecError, M2msecError } from '@m2msec/errors'
import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  PubHeaders,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream'
import { headers, type NatsConnection } from '@nats-io/transport-node'
import { isWrongLastSequence, toBusError } from './errors.ts'
import { decodeToken, encodeToken } from './tokens.ts'

/** The JetStream stream that holds every audit record. */
export const AUDIT_STREAM = 'AUDIT'
/** Records of writer `<source>` go to `audit.<encodeToken(source)>`. */
export const AUDIT_SUBJECT_PREFIX = 'audit'
/** `prev` of the first record of every source. */
export const AUDIT_GENESIS = '0'.repeat(64)

/** What happened, as the caller reports it. Values are data, never secrets. */
export interface AuditRecord {
  /** ISO 8601 time of the operation. */
  time: string
  tenant: string
  principal: string
  /** e.g. `kms.Encrypt`. */
  action: string
  /** e.g. the key id. */
  resource: string
  result: 'ok' | 'denied' | 'error'
  /** The error code when `result` is not `ok`. */
  code?: string
  details?: Record<string, string | number | boolean>
}

/** A record as stored: the caller's fields plus the chain fields (see README). */
export interface StoredAuditRecord extends AuditRecord {
  v: 1
  source: string
  seq: number
  prev: string
}

/** Options of {@link createAuditLog}. */
export interface AuditLogOptions {
  /** Writer identity, unique per running instance: service name + instance id (`kms-7f9c`). */
  source: string
  /** Records that may wait for the bus; the next append beyond this fails at once. Default 1000. */
  maxPending?: number
  /** Delay before a flush, to gather more records per message, ms. Default 0 (group commit only). */
  flushIntervalMs?: number
  /** Replicas of the AUDIT stream when this call creates it. Default 1. */
  replicas?: number
  /** How long to wait for JetStream's ack of one flush, ms. Default 2000. */
  ackTimeoutMs?: number
}

/** The audit writer of one source. */
export interface AuditLog {
  /**
   * Appends a record. Resolves only once JetStream has stored it. Rejects with
   * ERR_AUDIT_UNAVAILABLE when the log is closed, when more than `maxPending` records are
   * waiting, or when JetStream does not ack in time: callers must then fail their operation
   * rather than go unaudited. A rejected record may still have been stored (the ack may be
   * what got lost): the log can over-report attempts, never under-report them.
   * Rejects with ERR_INVALID_ARGUMENT for a malformed record.
   */
  append(record: AuditRecord): Promise<void>
  /** Stops accepting records and waits for the pending ones. Does not close the connection. */
  close(): Promise<void>
}

/** Result of {@link verifyAuditChain}. */
export interface AuditVerification {
  ok: boolean
  /** Records read (all sources, or the one asked for). */
  records: number
  /** The first problem: `seq` is the JetStream stream sequence of the offending message (0 for the stream config). */
  firstBad?: { seq: number; reason: string }
}

const MAX_FIELD_CHARS = 1024
const MAX_DETAILS = 32
const MAX_RECORD_BYTES = 16 * 1024
const MAX_BATCH_RECORDS = 500
const MAX_BATCH_BYTES = 256 * 1024
const CONFLICT_RETRIES = 3
const RESULTS = new Set(['ok', 'denied', 'error'])

/** The subject of one writer. */
export function auditSubject(source: string): string {
  return `${AUDIT_SUBJECT_PREFIX}.${encodeToken(source)}`
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * Creates (once) the AUDIT stream and returns the writer of `opts.source`. The stream takes
 * `audit.>`, denies message deletion and purges, rejects rollups, keeps everything (no
 * limits), and refuses new messages when full instead of dropping old ones. An existing AUDIT
 * stream that allows deletion, purge or rollup is refused with ERR_FAILED_PRECONDITION.
 *
 * The writer continues the chain of its source from the stream, so a restarted instance with
 * the same source appends after its last record. Records are batched: all records that arrive
 * while a flush is in flight go out together in the next message (one JetStream round trip).
 *
 * @example
 * ```ts
 * const audit = await createAuditLog(nc, { source: `kms-${instanceId}` })
 * await audit.append({ time: clock.now().toISOString(), tenant, principal, action: 'kms.Encrypt',
 *   resource: keyId, result: 'ok' })
 * ```
 */
export async function createAuditLog(nc: NatsConnection, opts: AuditLogOptions): Promise<AuditLog> {
  if (typeof opts.source !== 'string' || opts.source.length === 0 || opts.source.length > 128) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'audit source must have 1..128 characters')
  }
  const ackTimeoutMs = opts.ackTimeoutMs ?? 2_000
  let jsm: JetStreamManager
  try {
    jsm = await jetstreamManager(nc, { timeout: ackTimeoutMs })
    await ensureAuditStream(jsm, opts.replicas ?? 1)
  } catch (err) {
    throw toBusError(err, 'create audit log', {}, { unavailable: 'ERR_AUDIT_UNAVAILABLE' })
  }
  const writer = new AuditWriter({
    js: jetstream(nc, { timeout: ackTimeoutMs }),
    jsm,
    source: opts.source,
    maxPending: opts.maxPending ?? 1000,
    flushIntervalMs: opts.flushIntervalMs ?? 0,
    ackTimeoutMs,
    maxBatchBytes: Math.min(MAX_BATCH_BYTES, Math.floor((nc.info?.max_payload ?? 1024 * 1024) / 2)),
  })
  return writer
}

async function ensureAuditStream(jsm: JetStreamManager, replicas: number): Promise<void> {
  const config: Partial<StreamConfig> & { name: string } = {
    name: AUDIT_STREAM,
    subjects: [`${AUDIT_SUBJECT_PREFIX}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
    num_replicas: replicas,
  }
  try {
    const info = await jsm.streams.info(AUDIT_STREAM)
    assertAppendOnly(info.config)
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err
    // Two instances may race here; adding an identical stream twice succeeds.
    await jsm.streams.add(config)
  }
}

function assertAppendOnly(config: StreamConfig): void {
  const reason = appendOnlyProblem(config)
  if (reason !== undefined) {
    throw new M2msecError('ERR_FAILED_PRECONDITION', `the AUDIT stream is not append-only: ${reason}`)
  }
}

function appendOnlyProblem(config: StreamConfig): string | undefined {
  if (config.deny_delete !== true) return 'deny_delete is off'
  if (config.deny_purge !== true) return 'deny_purge is off'
  if (config.allow_rollup_hdrs === true) return 'rollup headers are allowed'
  return undefined
}

interface Pending {
  /** The record's fields as JSON, in the stored order, serialized once at append. */
  body: string
  /** Serialized size of the record, measured once at append. */
  size: number
  resolve: () => void
  reject: (err: unknown) => void
}

/** Where the chain of this source stands: the last stored record and its stream sequence. */
interface ChainHead {
  streamSeq: number
  seq: number
  hash: string
}

interface WriterDeps {
  js: JetStreamClient
  jsm: JetStreamManager
  source: string
  maxPending: number
  flushIntervalMs: number
  ackTimeoutMs: number
  maxBatchBytes: number
}

class AuditWriter implements AuditLog {
  readonly #d: WriterDeps
  readonly #subject: string
  #queue: Pending[] = []
  /** Undefined until read from the stream, and again after any failure (state unknown). */
  #head: ChainHead | undefined
  #flushing: Promise<void> | undefined
  /** Cancels the scheduled flush; set while one is scheduled. */
  #cancelScheduled: (() => void) | undefined
  #closed = false

  constructor(deps: WriterDeps) {
    this.#d = deps
    this.#subject = auditSubject(deps.source)
  }

  append(record: AuditRecord): Promise<void> {
    let body: string
    let size: number
    try {
      ;({ body, size } = validateRecord(record))
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#closed) return Promise.reject(unavailable('audit log is closed', this.#d.source))
    if (this.#queue.length >= this.#d.maxPending) {
      return Promise.reject(unavailable('too many audit records waiting for the bus', this.#d.source))
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ body, size, resolve, reject })
      this.#schedule()
    })
  }

  async close(): Promise<void> {
    this.#closed = true
    while (this.#queue.length > 0 || this.#flushing !== undefined || this.#cancelScheduled !== undefined) {
      if (this.#cancelScheduled !== undefined) {
        this.#cancelScheduled()
        this.#cancelScheduled = undefined
        this.#startFlush()
      }
      await this.#flushing
    }
  }

  #schedule(): void {
    if (this.#flushing !== undefined || this.#cancelScheduled !== undefined) return
    const fire = (): void => {
      this.#cancelScheduled = undefined
      this.#startFlush()
    }
    if (this.#d.flushIntervalMs > 0) {
      const timer = setTimeout(fire, this.#d.flushIntervalMs)
      this.#cancelScheduled = () => clearTimeout(timer)
    } else {
      // setTimeout(0) waits at least 1 ms; setImmediate lets just the appends of the current
      // event-loop turn join the batch.
      const immediate = setImmediate(fire)
      this.#cancelScheduled = () => clearImmediate(immediate)
    }
  }

  #startFlush(): void {
    if (this.#flushing !== undefined) return
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined
      if (this.#queue.length > 0) this.#schedule()
    })
  }

  async #flush(): Promise<void> {
    const batch = this.#takeBatch()
    if (batch.length === 0) return
    for (let attempt = 0; ; attempt++) {
      try {
        this.#head ??= await this.#readHead()
        const { payload, head } = this.#encode(batch, this.#head)
        const h = headers()
        // The chain cannot fork: the server stores the message only if our last record is
        // still the last one on this subject.
        h.set(PubHeaders.ExpectedLastSubjectSequenceHdr, String(this.#head.streamSeq))
        const ack = await this.#d.js.publish(this.#subject, payload, {
          headers: h,
          timeout: this.#d.ackTimeoutMs,
        })
        this.#head = { ...head, streamSeq: ack.seq }
        for (const p of batch) p.resolve()
        return
      } catch (err) {
        this.#head = undefined
        // Another writer with the same source appended first: re-read the head and re-chain.
        if (isWrongLastSequence(err) && attempt < CONFLICT_RETRIES) continue
        // Fail fast: everything waiting would hit the same outage.
        const failed = [...batch, ...this.#queue.splice(0)]
        const final =
          isM2msecError(err) && err.code === 'ERR_AUDIT_UNAVAILABLE'
            ? err
            : unavailable(
                isWrongLastSequence(err)
                  ? 'audit chain is contended by another writer with the same source'
                  : 'JetStream did not store the audit record',
                this.#d.source,
                err,
              )
        for (const p of failed) p.reject(final)
        return
      }
    }
  }

  #takeBatch(): Pending[] {
    let bytes = 0
    let n = 0
    for (const p of this.#queue) {
      // Rough size (records are validated to be small); the exact size is known after encoding.
      bytes += 300 + p.size
      if (n > 0 && (n >= MAX_BATCH_RECORDS || bytes > this.#d.maxBatchBytes)) break
      n++
    }
    return this.#queue.splice(0, n)
  }

  #encode(batch: Pending[], from: ChainHead): { payload: string; head: Omit<ChainHead, 'streamSeq'> } {
    let seq = from.seq
    let prev = from.hash
    const lines: string[] = []
    // Exactly JSON.stringify({ v: 1, source, seq, prev, ...pickRecord(record) }): the chain
    // fields first, then the body serialized at append (no second serialization per record).
    const source = JSON.stringify(this.#d.source)
    for (const { body } of batch) {
      seq += 1
      const line = `{"v":1,"source":${source},"seq":${seq},"prev":"${prev}",${body.slice(1)}`
      lines.push(line)
      prev = sha256Hex(line)
    }
    return { payload: lines.join('\n'), head: { seq, hash: prev } }
  }

  /** Reads the last record of this source from the stream (genesis when there is none). */
  async #readHead(): Promise<ChainHead> {
    const last = await this.#d.jsm.streams.getMessage(AUDIT_STREAM, { last_by_subj: this.#subject })
    if (last === null) return { streamSeq: 0, seq: 0, hash: AUDIT_GENESIS }
    const lines = last.string().split('\n')
    const line = lines[lines.length - 1] ?? ''
    const parsed = parseStoredRecord(line)
    if (typeof parsed === 'string' || parsed.source !== this.#d.source) {
      // Someone published garbage on our subject. Chaining onto it would hide it; refuse, so
      // operators run verifyAuditChain and look.
      throw new M2msecError(
        'ERR_AUDIT_UNAVAILABLE',
        'the last audit record of this source is invalid; run verifyAuditChain',
        {
          source: this.#d.source,
          streamSeq: last.seq,
        },
      )
    }
    return { streamSeq: last.seq, seq: parsed.seq, hash: sha256Hex(line) }
  }
}

function unavailable(message: string, source: string, cause?: unknown): M2msecError {
  return new M2msecError('ERR_AUDIT_UNAVAILABLE', message, { source }, cause === undefined ? undefined : { cause })
}

/** Copies the caller's fields in a fixed order, dropping anything else. */
function pickRecord(r: AuditRecord): AuditRecord {
  const out: AuditRecord = {
    time: r.time,
    tenant: r.tenant,
    principal: r.principal,
    action: r.action,
    resource: r.resource,
    result: r.result,
  }
  if (r.code !== undefined) out.code = r.code
  if (r.details !== undefined) out.details = { ...r.details }
  return out
}

/**
 * Throws ERR_INVALID_ARGUMENT for a malformed record; returns its fields serialized in the
 * stored order ({@link pickRecord}) and that size in bytes.
 */
function validateRecord(r: AuditRecord): { body: string; size: number } {
  const bad = (message: string): M2msecError => new M2msecError('ERR_INVALID_ARGUMENT', `audit record: ${message}`)
  if (typeof r !== 'object' || r === null) throw bad('not an object')
  for (const field of ['time', 'tenant', 'principal', 'action', 'resource'] as const) {
    const value: unknown = r[field]
    if (typeof value !== 'string' || value.length > MAX_FIELD_CHARS)
      throw bad(`${field} must be a string of at most ${MAX_FIELD_CHARS} characters`)
  }
  if (Number.isNaN(Date.parse(r.time))) throw bad('time must be an ISO 8601 timestamp')
  if (!RESULTS.has(r.result)) throw bad('result must be ok, denied or error')
  if (r.code !== undefined && (typeof r.code !== 'string' || r.code.length > MAX_FIELD_CHARS))
    throw bad('code must be a short string')
  if (r.details !== undefined) {
    if (typeof r.details !== 'object' || r.details === null) throw bad('details must be an object')
    const entries = Object.entries(r.details)
    if (entries.length > MAX_DETAILS) throw bad(`details may have at most ${MAX_DETAILS} entries`)
    for (const [, v] of entries) {
      if (!['string', 'number', 'boolean'].includes(typeof v))
        throw bad('details values must be string, number or boolean')
    }
  }
  const body = JSON.stringify(pickRecord(r))
  const size = Buffer.byteLength(body)
  if (size > MAX_RECORD_BYTES) throw bad(`larger than ${MAX_RECORD_BYTES} bytes`)
  return { body, size }
}

/** Parses one stored line; returns a reason string when it is not a well-formed record. */
function parseStoredRecord(line: string): StoredAuditRecord | string {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return 'not JSON'
  }
  const r = value as Partial<StoredAuditRecord> | null
  if (typeof r !== 'object' || r === null) return 'not an object'
  if (r.v !== 1) return 'unknown version'
  if (typeof r.source !== 'string') return 'no source'
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 1) return 'bad seq'
  if (typeof r.prev !== 'string' || !/^[0-9a-f]{64}$/.test(r.prev)) return 'bad prev'
  try {
    validateRecord(r as AuditRecord)
  } catch {
    return 'bad record fields'
  }
  return r as StoredAuditRecord
}

/** One stored message of the AUDIT stream, as the verifier sees it. */
export interface AuditMessage {
  /** JetStream stream sequence. */
  seq: number
  subject: string
  data: Uint8Array
}

/**
 * The pure part of {@link verifyAuditChain}: checks messages given in stream order. Every
 * source's records must carry `seq` 1, 2, 3… without gaps, and `prev` equal to the SHA-256
 * (hex) of the exact bytes of the previous record line of that source (the first: 64 zeros);
 * `source` must match the subject. So an edited, removed, inserted or reordered record breaks
 * the chain at or right after the change.
 */
export function checkAuditMessages(messages: Iterable<AuditMessage>): AuditVerification {
  const heads = new Map<string, { seq: number; hash: string }>()
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let records = 0
  let firstBad: AuditVerification['firstBad']
  const fail = (seq: number, reason: string): void => {
    firstBad ??= { seq, reason }
  }
  for (const m of messages) {
    let source: string
    try {
      const token = m.subject.slice(AUDIT_SUBJECT_PREFIX.length + 1)
      if (!m.subject.startsWith(`${AUDIT_SUBJECT_PREFIX}.`) || token.includes('.')) throw new Error('subject')
      source = decodeToken(token)
    } catch {
      fail(m.seq, `unexpected subject ${m.subject.slice(0, 100)}`)
      continue
    }
    let text: string
    try {
      text = decoder.decode(m.data)
    } catch {
      fail(m.seq, 'message is not UTF-8')
      continue
    }
    const head = heads.get(source) ?? { seq: 0, hash: AUDIT_GENESIS }
    for (const line of text.split('\n')) {
      records += 1
      const parsed = parseStoredRecord(line)
      if (typeof parsed === 'string') {
        fail(m.seq, `record after seq ${head.seq} of ${source}: ${parsed}`)
      } else if (parsed.source !== source) {
        fail(m.seq, `record seq ${parsed.seq} names source ${parsed.source} on the subject of ${source}`)
      } else if (parsed.seq !== head.seq + 1) {
        fail(m.seq, `record seq ${parsed.seq} of ${source} follows seq ${head.seq}`)
      } else if (parsed.prev !== head.hash) {
        fail(m.seq, `record seq ${parsed.seq} of ${source}: prev does not match the previous record`)
      }
      // Continue from this record, so one bad record is reported once, not for every successor.
      head.seq = typeof parsed === 'string' ? head.seq + 1 : parsed.seq
      head.hash = sha256Hex(line)
    }
    heads.set(source, head)
  }
  return firstBad === undefined ? { ok: true, records } : { ok: false, records, firstBad }
}

/**
 * Reads the AUDIT stream (all sources, or one) up to the moment of the call and checks every
 * hash chain (see {@link checkAuditMessages}) and that the stream is still append-only.
 * Throws ERR_UNAVAILABLE when NATS cannot answer.
 *
 * @example
 * ```ts
 * const result = await verifyAuditChain(nc)
 * if (!result.ok) log.error(result.firstBad, 'audit chain broken')
 * ```
 */
export async function verifyAuditChain(
  nc: NatsConnection,
  opts: { source?: string; timeoutMs?: number } = {},
): Promise<AuditVerification> {
  const filter = opts.source === undefined ? `${AUDIT_SUBJECT_PREFIX}.>` : auditSubject(opts.source)
  try {
    const jsm = await jetstreamManager(nc, { timeout: opts.timeoutMs ?? 5_000 })
    let info
    try {
      info = await jsm.streams.info(AUDIT_STREAM)
    } catch (err) {
      // Stream config cannot forbid deleting the whole stream (NATS permissions must): a
      // missing stream is reported, not treated as an empty log.
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
        return { ok: false, records: 0, firstBad: { seq: 0, reason: 'the AUDIT stream does not exist' } }
      }
      throw err
    }
    const configProblem = appendOnlyProblem(info.config)
    const timeoutMs = opts.timeoutMs ?? 5_000
    const messages = await readAll(jetstream(nc, { timeout: timeoutMs }), filter, timeoutMs)
    const result = checkAuditMessages(messages)
    if (configProblem !== undefined)
      return {
        ok: false,
        records: result.records,
        firstBad: { seq: 0, reason: `stream config: ${configProblem}` },
      }
    return result
  } catch (err) {
    throw toBusError(err, 'verify audit chain')
  }
}

/** Every message matching `filter` that exists when the consumer is created, in order. */
async function readAll(js: JetStreamClient, filter: string, timeoutMs: number): Promise<AuditMessage[]> {
  const consumer = await js.consumers.getPushConsumer(AUDIT_STREAM, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.All,
  })
  const out: AuditMessage[] = []
  try {
    // The consumer counted the matching messages when it was created: read exactly those.
    const pending = (await consumer.info(true)).num_pending
    if (pending === 0) return out
    const iter = await consumer.consume()
    // Between two messages the stream must keep delivering; a stall means NATS went away.
    let stalled = false
    let timer = setTimeout(() => ((stalled = true), iter.stop()), timeoutMs)
    try {
      for await (const m of iter) {
        out.push({ seq: m.seq, subject: m.subject, data: m.data })
        if (out.length >= pending) break
        clearTimeout(timer)
        timer = setTimeout(() => ((stalled = true), iter.stop()), timeoutMs)
      }
    } finally {
      clearTimeout(timer)
      iter.stop()
    }
    if (stalled && out.length < pending) {
      throw new M2msecError('ERR_UNAVAILABLE', 'verify audit chain: the stream stopped delivering', {
        read: out.length,
        pending,
      })
    }
    return out
  } finally {
    await consumer.delete().catch(() => false)
  }
}

/** An audit record as a service's domain writes it: the sink adds the time. */
export type AuditEntry = Omit<AuditRecord, 'time'>

/**
 * The `AuditSink` port every service domain uses (`append` resolves once the record is stored,
 * rejects with ERR_AUDIT_UNAVAILABLE otherwise), on an {@link AuditLog}; it stamps the time.
 *
 * @example
 * ```ts
 * const sink = createAuditSink(await createAuditLog(nc, { source: 'kms-1' }), systemClock)
 * await sink.append({ tenant, principal, action: 'kms.Encrypt', resource: 'key/k1', result: 'ok' })
 * ```
 */
export function createAuditSink(
  log: AuditLog,
  clock: { now(): Date },
): { append(entry: Readonly<AuditEntry>): Promise<void> } {
  return {
    append: (e) =>
      log.append({
        time: clock.now().toISOString(),
        tenant: e.tenant,
        principal: e.principal,
        action: e.action,
        resource: e.resource,
        result: e.result,
        ...(e.code === undefined ? {} : { code: e.code }),
        ...(e.details === undefined ? {} : { details: { ...e.details } }),
      }),
  }
}
