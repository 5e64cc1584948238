/**
 * Batch AES-256-GCM in a worker thread, so a BatchEncrypt of many items does not hold the
 * gRPC event loop for the whole batch: the loop packs the inputs into one buffer (one copy),
 * the worker encrypts, and the result comes back as one transferred buffer. Measured by
 * `npm run bench -- kms` (BatchEncrypt row). The worker starts on first use, is unref'd, and
 * is replaced after a failure; its in-flight calls fail with ERR_SE_UNAVAILABLE.
 */
import type { KeyObject } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import { M2msecError } from '@m2msec/errors'
import type { AeadInput, SealedData } from '../api.ts'

/** A batch sent to the worker. */
export interface AeadJob {
  readonly id: number
  readonly key: KeyObject
  readonly count: number
  /** Per item: plaintext length, then AAD length. */
  readonly lengths: Uint32Array
  /** All plaintexts and AADs, item after item (plaintext, then AAD). */
  readonly data: ArrayBuffer
  readonly plaintextBytes: number
  /** 12 bytes per item. */
  readonly ivs: Uint8Array
}

/** The worker's answer: per item its ciphertext then its 16-byte tag, or an error. */
export type AeadReply =
  { readonly id: number; readonly out: ArrayBuffer } | { readonly id: number; readonly error: string }

const TAG_LENGTH = 16
const IV_LENGTH = 12

/** The offload of one software SE. */
export interface AeadOffload {
  /** Encrypts `items` with `key` and these IVs (12 bytes each, one per item), in order. */
  encrypt(key: KeyObject, items: readonly AeadInput[], ivs: readonly Uint8Array[]): Promise<SealedData[]>
  close(): Promise<void>
}

function startWorker(): Worker {
  const workerUrl = new URL('./aead-worker.ts', import.meta.url).href
  const tsxApi = import.meta.resolve('tsx/esm/api')
  const source = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl)}) })`
  const worker = new Worker(source, { eval: true })
  worker.unref()
  return worker
}

/**
 * @example
 * ```ts
 * const offload = createAeadOffload()
 * const sealed = await offload.encrypt(secretKeyObject, [{ plaintext, aad }], [iv])
 * ```
 */
export function createAeadOffload(): AeadOffload {
  let worker: Worker | undefined
  let nextId = 1
  const pending = new Map<number, { resolve: (out: ArrayBuffer) => void; reject: (err: unknown) => void }>()

  const fail = (why: string, cause?: unknown) => {
    const err = new M2msecError('ERR_SE_UNAVAILABLE', why, {}, cause === undefined ? {} : { cause })
    for (const p of pending.values()) p.reject(err)
    pending.clear()
  }

  const current = (): Worker => {
    if (worker !== undefined) return worker
    const w = startWorker()
    w.on('message', (reply: AeadReply) => {
      const p = pending.get(reply.id)
      if (p === undefined) return
      pending.delete(reply.id)
      if ('error' in reply) p.reject(new M2msecError('ERR_INTERNAL', 'batch encryption failed', { cause: reply.error }))
      else p.resolve(reply.out)
    })
    const drop = (why: string) => (cause?: unknown) => {
      if (worker === w) worker = undefined
      fail(why, cause)
    }
    w.on('error', drop('the encryption worker failed'))
    w.on('exit', drop('the encryption worker exited'))
    worker = w
    return w
  }

  return {
    async encrypt(key, items, ivs) {
      const lengths = new Uint32Array(items.length * 2)
      let plaintextBytes = 0
      let total = 0
      items.forEach(({ plaintext, aad }, i) => {
        lengths[2 * i] = plaintext.length
        lengths[2 * i + 1] = aad.length
        plaintextBytes += plaintext.length
        total += plaintext.length + aad.length
      })
      // One packed copy: posting views would clone each view's whole underlying buffer.
      const data = new Uint8Array(total)
      const ivBytes = new Uint8Array(items.length * IV_LENGTH)
      let at = 0
      items.forEach(({ plaintext, aad }, i) => {
        data.set(plaintext, at)
        data.set(aad, at + plaintext.length)
        at += plaintext.length + aad.length
        ivBytes.set(ivs[i] as Uint8Array, i * IV_LENGTH)
      })
      const id = nextId++
      const job: AeadJob = { id, key, count: items.length, lengths, data: data.buffer, plaintextBytes, ivs: ivBytes }
      const out = await new Promise<ArrayBuffer>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        current().postMessage(job, [data.buffer])
      })
      const bytes = Buffer.from(out)
      let read = 0
      return items.map(({ plaintext }, i) => {
        const ciphertext = bytes.subarray(read, read + plaintext.length)
        const tag = bytes.subarray(read + plaintext.length, read + plaintext.length + TAG_LENGTH)
        read += plaintext.length + TAG_LENGTH
        return { iv: ivs[i] as Uint8Array, ciphertext, tag }
      })
    },
    async close() {
      const w = worker
      worker = undefined
      fail('the secure environment is closed')
      if (w !== undefined) await w.terminate()
    },
  }
}
