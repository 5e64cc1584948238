import { readFileSync } from 'node:fs'
import { M2msecError } from '@m2msec/errors'

/**
 * Reads and parses a JSON file synchronously (vector files, fixtures). The type parameter is
 * not checked at run time: validate the shape in the test if it matters.
 *
 * @example
 * ```ts
 * const vectors = loadJson<MilenageVector[]>(new URL('./vectors/milenage.json', import.meta.url))
 * ```
 */
export function loadJson<T>(path: URL | string): T {
  const text = readFileSync(path, 'utf8')
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'file is not valid JSON', { path: String(path) }, { cause: err })
  }
}
