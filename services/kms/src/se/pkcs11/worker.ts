/**
 * The pkcs11 worker thread: owns one PKCS#11 session (token.ts) and serves calls from the
 * main thread one message at a time, so the gRPC event loop never blocks on the token.
 * Started by pool.ts with `workerData` = {@link WorkerConfig}.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { isM2msecError } from '@m2msec/errors'
import { mapError } from './errors.ts'
import type { CallMessage, ReplyMessage, SerializedError, StartMessage, WorkerConfig } from './protocol.ts'
import { Pkcs11Token } from './token.ts'

function serialize(thrown: unknown): SerializedError {
  // A PKCS#11 error that escaped the token's own mapping still becomes a typed error naming
  // the function and CKR.
  const err = mapError(thrown)
  if (isM2msecError(err)) return { code: err.code, message: err.message, details: err.details }
  // Not an M2msecError: a bug. Name and message say what broke; they carry no key material.
  const e = err instanceof Error ? err : new Error(String(err))
  return {
    code: 'ERR_INTERNAL',
    message: 'internal error in the pkcs11 worker',
    details: { cause: `${e.name}: ${e.message}`.slice(0, 200) },
  }
}

const port = parentPort
if (port === null) throw new Error('pkcs11 worker.ts must run in a worker thread')

let token: Pkcs11Token | undefined
try {
  token = Pkcs11Token.open(workerData as WorkerConfig)
  port.postMessage({ ready: token.info() } satisfies StartMessage)
} catch (err) {
  port.postMessage({ failed: serialize(err) } satisfies StartMessage)
}

// One batch at a time, calls in order: the session runs one operation at a time anyway.
let queue: Promise<void> = Promise.resolve()
port.on('message', (batch: readonly CallMessage[]) => {
  queue = queue.then(async () => {
    const replies: ReplyMessage[] = []
    for (const msg of batch) replies.push(await handle(msg))
    port.postMessage(replies)
  })
})

async function handle(msg: CallMessage): Promise<ReplyMessage> {
  try {
    if (token === undefined) throw new Error('token not open')
    if (msg.method === 'close') {
      token.close()
      token = undefined
      return { id: msg.id, ok: true, value: undefined }
    }
    const method = token[msg.method] as (...args: readonly unknown[]) => unknown
    const value: unknown = await method.apply(token, [...msg.args])
    return { id: msg.id, ok: true, value }
  } catch (err) {
    return { id: msg.id, ok: false, error: serialize(err) }
  }
}
