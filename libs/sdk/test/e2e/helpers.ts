/** Test helpers: the jwcrypto peer (python3-jwcrypto in /usr/bin/python3) and key fixtures. */
import { execFile } from 'node:child_process'
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { fileURLToPath } from 'node:url'

/** Debian's python, the only one with jwcrypto on this machine (TOOLCHAIN.md item 24). */
export const SYSTEM_PYTHON = '/usr/bin/python3'
const TOOL = fileURLToPath(new URL('./py/jwcrypto_tool.py', import.meta.url))

/** One answer of the jwcrypto tool. */
export type JwcryptoAnswer = { ok: true; [k: string]: unknown } | { ok: false; error: string }

/**
 * Runs a batch of requests through py/jwcrypto_tool.py in one python process.
 *
 * @example
 * ```ts
 * const [a] = await jwcrypto([{ op: 'verify', token: jws, key: jwkOf(publicKey) }])
 * ```
 */
export function jwcrypto(requests: readonly Record<string, unknown>[]): Promise<JwcryptoAnswer[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(SYSTEM_PYTHON, [TOOL], { timeout: 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`jwcrypto tool failed (is python3-jwcrypto installed for ${SYSTEM_PYTHON}?): ${stderr}`))
        return
      }
      const answers = JSON.parse(stdout) as JwcryptoAnswer[]
      if (answers.length !== requests.length) reject(new Error('jwcrypto tool answered a different count'))
      else resolve(answers)
    })
    child.stdin?.end(JSON.stringify(requests))
  })
}

/** A key as a JWK for jwcrypto: bytes become `oct`, KeyObjects export themselves. */
export function jwkOf(key: Uint8Array | KeyObject): Record<string, unknown> {
  if (key instanceof Uint8Array) return { kty: 'oct', k: Buffer.from(key).toString('base64url') }
  return key.export({ format: 'jwk' }) as Record<string, unknown>
}

/** Decodes base64url text to a UTF-8 string. */
export function b64uText(text: unknown): string {
  return Buffer.from(String(text), 'base64url').toString('utf8')
}

/** Deterministic bytes for fixtures: SHA-256 blocks of a label (never a real key). */
export function fixedBytes(label: string, length = 32): Uint8Array {
  const out = new Uint8Array(length)
  for (let off = 0, i = 0; off < length; off += 32, i++) {
    const block = createHash('sha256').update(`${label}/${i}`).digest()
    out.set(block.subarray(0, Math.min(32, length - off)), off)
  }
  return out
}

/** Deterministic random source for tests (counter-mode SHA-256 of a seed). */
export function seededRandom(seed: string): (n: number) => Uint8Array {
  let counter = 0
  return (n) => fixedBytes(`${seed}#${counter++}`, n)
}

/** Fresh key pairs of every kind ESData uses. */
export function keyPairs(): Record<'p256' | 'p384' | 'p521' | 'rsa', { publicKey: KeyObject; privateKey: KeyObject }> {
  return {
    p256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    p384: generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    p521: generateKeyPairSync('ec', { namedCurve: 'P-521' }),
    rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  }
}
