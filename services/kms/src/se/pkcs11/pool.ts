/**
 * A small pool of pkcs11 worker threads (one PKCS#11 session each) and the request/reply
 * plumbing to them. Calls go to the worker with the fewest calls in flight. A worker that dies
 * fails its pending calls with ERR_SE_UNAVAILABLE and takes no more calls.
 *
 * The PKCS#11 library is process-global: C_Initialize is shared by every worker of every
 * pkcs11 SE in the process. Workers run it and C_Finalize under a lock they share, and only
 * the last worker of the library to close calls C_Finalize (library.ts).
 */
import { Worker } from 'node:worker_threads'
import { M2msecError } from '@m2msec/errors'
import type {
  CallMessage,
  ReplyMessage,
  SerializedError,
  StartMessage,
  TokenApi,
  TokenMethod,
  WorkerConfig,
} from './protocol.ts'
import { libraryState } from './library.ts'
import type { TokenInfo } from './token.ts'

/** What a pool is started with: the worker configuration without the shared library state. */
export type PoolConfig = Omit<WorkerConfig, 'library'>

interface Pending {
  readonly resolve: (value: unknown) => void
  readonly reject: (err: unknown) => void
}

interface Slot {
  worker: Worker
  readonly pending: Map<number, Pending>
  /** Calls of the current tick, posted together by {@link WorkerPool.#flush}. */
  outbox: CallMessage[]
  dead: boolean
}

/** Longest wait for a worker to open the token (module load, C_Initialize, login). */
const START_TIMEOUT_MS = 30_000

function toError(e: SerializedError): M2msecError {
  return new M2msecError(e.code, e.message, e.details)
}

/**
 * Copies byte arrays that are views into larger buffers: structured clone would otherwise
 * copy (and expose to the other thread) the whole underlying buffer. Containers are copied
 * only when something inside them had to be; the rest is posted as it is (this runs for
 * every call, so plain key handles and strings cost nothing here).
 */
function tightClone(value: unknown): unknown {
  if (value instanceof Uint8Array) {
    return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && !Buffer.isBuffer(value)
      ? value
      : new Uint8Array(value)
  }
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    let out: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      const c = tightClone(v)
      if (c !== v) (out ??= value.slice())[i] = c
    }
    return out ?? value
  }
  let out: Record<string, unknown> | undefined
  for (const k in value) {
    const v: unknown = (value as Record<string, unknown>)[k]
    const c = tightClone(v)
    if (c !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = c
  }
  return out ?? value
}

/** Starts a worker, resolving when it has opened the token. */
function spawn(config: WorkerConfig): Promise<{ worker: Worker; info: TokenInfo }> {
  // Workers do not inherit the tsx loader of the main thread: register it, then load the
  // TypeScript worker module.
  const workerUrl = new URL('./worker.ts', import.meta.url).href
  const tsxApi = import.meta.resolve('tsx/esm/api')
  const source = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl)}) })`
  const worker = new Worker(source, { eval: true, workerData: config })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup()
      void worker.terminate()
      reject(new M2msecError('ERR_SE_UNAVAILABLE', 'the PKCS#11 worker did not start in time'))
    }, START_TIMEOUT_MS)
    const onMessage = (msg: StartMessage): void => {
      cleanup()
      if ('ready' in msg) {
        resolve({ worker, info: msg.ready })
      } else {
        void worker.terminate()
        reject(toError(msg.failed))
      }
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(new M2msecError('ERR_SE_UNAVAILABLE', 'the PKCS#11 worker failed to start', {}, { cause: err }))
    }
    const onExit = (): void => {
      cleanup()
      reject(new M2msecError('ERR_SE_UNAVAILABLE', 'the PKCS#11 worker exited during start'))
    }
    function cleanup(): void {
      clearTimeout(timer)
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
    }
    worker.on('message', onMessage)
    worker.on('error', onError)
    worker.on('exit', onExit)
  })
}

/**
 * The worker pool of one pkcs11 SE.
 *
 * @example
 * ```ts
 * const { pool, info } = await WorkerPool.start(config, 2)
 * const signature = await pool.call('sign', { ref, algorithm: 'EC_P256_SIGN' }, message)
 * await pool.close()
 * ```
 */
export class WorkerPool {
  readonly #slots: Slot[] = []
  #nextId = 1
  #closed = false

  private constructor() {}

  /** Starts `size` workers; fails (and stops them) if any cannot open the token. */
  static async start(options: PoolConfig, size: number): Promise<{ pool: WorkerPool; info: TokenInfo }> {
    const config: WorkerConfig = { ...options, library: libraryState(options.modulePath) }
    const pool = new WorkerPool()
    const started = await Promise.allSettled(Array.from({ length: size }, () => spawn(config)))
    for (const s of started) if (s.status === 'fulfilled') pool.#adopt(s.value.worker)
    const failure = started.find((s) => s.status === 'rejected')
    const first = started.find((s) => s.status === 'fulfilled')
    if (failure !== undefined || first === undefined) {
      await pool.close()
      throw failure?.status === 'rejected'
        ? failure.reason
        : new M2msecError('ERR_SE_UNAVAILABLE', 'no PKCS#11 worker started')
    }
    return { pool, info: first.value.info }
  }

  /** Calls `method` on the least busy worker. */
  async call<M extends TokenMethod>(
    method: M,
    ...args: Parameters<TokenApi[M]>
  ): Promise<Awaited<ReturnType<TokenApi[M]>>> {
    return (await this.#send(this.#pick(), method, args)) as Awaited<ReturnType<TokenApi[M]>>
  }

  /** Calls `method` on every live worker (cache eviction after a destroy). */
  async broadcast<M extends TokenMethod>(method: M, ...args: Parameters<TokenApi[M]>): Promise<void> {
    await Promise.all(this.#slots.filter((s) => !s.dead).map((s) => this.#send(s, method, args)))
  }

  /** Closes every session; the last worker of the module in this process also C_Finalizes. */
  async close(): Promise<void> {
    this.#closed = true
    for (const slot of this.#slots) {
      if (slot.dead) continue
      try {
        await this.#send(slot, 'close', [])
      } catch {
        // The worker is going away either way.
      }
      slot.dead = true
      await slot.worker.terminate()
    }
  }

  #adopt(worker: Worker): Slot {
    const slot: Slot = { worker, pending: new Map(), outbox: [], dead: false }
    worker.on('message', (replies: readonly ReplyMessage[]) => {
      for (const reply of replies) {
        const p = slot.pending.get(reply.id)
        if (p === undefined) continue
        slot.pending.delete(reply.id)
        if (reply.ok) p.resolve(reply.value)
        else p.reject(toError(reply.error))
      }
    })
    const fail = (): void => {
      slot.dead = true
      for (const p of slot.pending.values())
        p.reject(new M2msecError('ERR_SE_UNAVAILABLE', 'the PKCS#11 worker stopped'))
      slot.pending.clear()
    }
    worker.on('error', fail)
    worker.on('exit', fail)
    this.#slots.push(slot)
    return slot
  }

  #pick(): Slot {
    if (this.#closed) throw new M2msecError('ERR_SE_UNAVAILABLE', 'the secure environment is closed')
    let best: Slot | undefined
    for (const slot of this.#slots) {
      if (slot.dead) continue
      if (best === undefined || slot.pending.size < best.pending.size) best = slot
    }
    // Workers catch every error of a call, so only a fatal thread failure (out of memory)
    // ends one; the SE then reports itself unavailable until it is recreated.
    if (best === undefined) throw new M2msecError('ERR_SE_UNAVAILABLE', 'no PKCS#11 worker is running')
    return best
  }

  #send(slot: Slot, method: CallMessage['method'], args: readonly unknown[]): Promise<unknown> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject })
      if (slot.outbox.length === 0) queueMicrotask(() => this.#flush(slot))
      slot.outbox.push({ id, method, args: tightClone(args) as unknown[] })
    })
  }

  /** Posts the calls collected during this tick as one message. */
  #flush(slot: Slot): void {
    const batch = slot.outbox
    slot.outbox = []
    if (batch.length === 0) return
    try {
      slot.worker.postMessage(batch)
    } catch (err) {
      for (const call of batch) {
        slot.pending
          .get(call.id)
          ?.reject(
            new M2msecError(
              'ERR_INVALID_ARGUMENT',
              'arguments cannot be passed to the PKCS#11 worker',
              {},
              { cause: err },
            ),
          )
        slot.pending.delete(call.id)
      }
    }
  }
}
