/**
 * The AES-256-GCM worker thread of the software SE (see aead-offload.ts): encrypts the items
 * of one batch and answers with one transferred buffer, so the gRPC thread only copies bytes.
 * Its messages carry the key as a KeyObject (a handle to the same key data, never bytes).
 */
import { createCipheriv } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import type { AeadJob, AeadReply } from './aead-offload.ts'

const TAG_LENGTH = 16

const port = parentPort
if (port === null) throw new Error('aead-worker.ts must run in a worker thread')

port.on('message', (job: AeadJob) => {
  try {
    const data = new Uint8Array(job.data)
    const out = new Uint8Array(job.plaintextBytes + job.count * TAG_LENGTH)
    let at = 0
    let read = 0
    for (let i = 0; i < job.count; i++) {
      const ptLength = job.lengths[2 * i] ?? 0
      const aadLength = job.lengths[2 * i + 1] ?? 0
      const plaintext = data.subarray(read, read + ptLength)
      const aad = data.subarray(read + ptLength, read + ptLength + aadLength)
      read += ptLength + aadLength
      const cipher = createCipheriv('aes-256-gcm', job.key, job.ivs.subarray(12 * i, 12 * i + 12))
      cipher.setAAD(aad)
      out.set(cipher.update(plaintext), at)
      cipher.final()
      out.set(cipher.getAuthTag(), at + ptLength)
      at += ptLength + TAG_LENGTH
    }
    port.postMessage({ id: job.id, out: out.buffer } satisfies AeadReply, [out.buffer])
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 200) : 'unknown failure'
    port.postMessage({ id: job.id, error: message } satisfies AeadReply)
  }
})
