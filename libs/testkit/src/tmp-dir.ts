import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A temporary directory and the function that removes it. */
export interface TmpDir {
  /** Absolute path of the new, empty directory. */
  readonly path: string
  /** Removes the directory and everything in it. Safe to call more than once. */
  cleanup(): Promise<void>
}

/**
 * Creates a fresh directory under the OS temp dir, named `<prefix>-XXXXXX`.
 *
 * @example
 * ```ts
 * const dir = await tmpDir('kms-test')
 * t.after(() => dir.cleanup())
 * ```
 */
export async function tmpDir(prefix: string): Promise<TmpDir> {
  const path = await mkdtemp(join(tmpdir(), `${prefix}-`))
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) }
}
