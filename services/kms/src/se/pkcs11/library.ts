/**
 * C_Initialize and C_Finalize of a PKCS#11 library shared by several worker threads.
 *
 * A library is loaded once per process (dlopen returns the same copy to every thread), so its
 * initialisation is process-wide, and SoftHSM 2.6.1 does not make it thread-safe: its
 * C_Initialize tests `isInitialised` without a lock and sets it only at the end, after it has
 * replaced the slot, session and handle managers, and C_Finalize deletes them. Two workers
 * that initialise at the same time both get CKR_OK and the second discards the sessions and
 * slots of the first (seen as CKR_SLOT_ID_INVALID / CKR_GENERAL_ERROR / session errors right
 * after a successful login). So, as p11-kit does for its managed modules, every worker runs
 * C_Initialize and C_Finalize under a lock held in a SharedArrayBuffer that all workers of one
 * library share, together with the number of workers using the library: the last one out
 * calls C_Finalize (which would otherwise pull the library from under the others).
 */
import { realpathSync } from 'node:fs'
import pkcs11js from 'pkcs11js'
import { M2msecError } from '@m2msec/errors'
import { ckrCode, ckrName } from './errors.ts'

const P = pkcs11js

// Int32 slots of the shared state.
const LOCK = 0
const USERS = 1
/** 1 when our workers called C_Initialize (so the last of them may call C_Finalize). */
const OWNED = 2
const SLOTS = 3

/** Longest wait for another thread's C_Initialize / C_Finalize (SoftHSM takes ~20 ms). */
const LOCK_TIMEOUT_MS = 30_000

/** States per library file in this process (main thread side: handed to workers). */
const states = new Map<string, SharedArrayBuffer>()

/**
 * The shared state of the library at `modulePath`, one per library file in this process
 * (keyed by real path: a symlink loads the same copy). Call on the thread that starts the
 * workers and pass it to them in `workerData`.
 *
 * @example
 * ```ts
 * new Worker(url, { workerData: { modulePath, library: libraryState(modulePath) } })
 * ```
 */
export function libraryState(modulePath: string): SharedArrayBuffer {
  let key = modulePath
  try {
    key = realpathSync(modulePath)
  } catch {
    // A missing file fails later in load() with ERR_CONFIG_INVALID.
  }
  let state = states.get(key)
  if (state === undefined) {
    state = new SharedArrayBuffer(SLOTS * Int32Array.BYTES_PER_ELEMENT)
    states.set(key, state)
  }
  return state
}

function withLock<T>(shared: SharedArrayBuffer, fn: (state: Int32Array) => T): T {
  const state = new Int32Array(shared)
  const deadline = Date.now() + LOCK_TIMEOUT_MS
  while (Atomics.compareExchange(state, LOCK, 0, 1) !== 0) {
    const left = deadline - Date.now()
    if (left <= 0) {
      throw new M2msecError('ERR_SE_UNAVAILABLE', 'timed out waiting for another thread to (de)initialise PKCS#11')
    }
    Atomics.wait(state, LOCK, 1, left)
  }
  try {
    return fn(state)
  } finally {
    Atomics.store(state, LOCK, 0)
    Atomics.notify(state, LOCK, 1)
  }
}

/**
 * C_Initialize for one more user of the library (under the lock). CKR_CRYPTOKI_ALREADY_INITIALIZED
 * means an earlier user of this process initialised it, which is fine.
 */
export function acquireLibrary(p11: pkcs11js.PKCS11, shared: SharedArrayBuffer): void {
  withLock(shared, (state) => {
    try {
      p11.C_Initialize({ flags: P.CKF_OS_LOCKING_OK })
      Atomics.store(state, OWNED, 1)
    } catch (err) {
      if (ckrCode(err) !== P.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        throw new M2msecError(
          'ERR_SE_UNAVAILABLE',
          `PKCS#11 C_Initialize failed: ${ckrName(err)}`,
          { ckr: ckrName(err), function: 'C_Initialize' },
          { cause: err },
        )
      }
      // Initialised by code outside these workers: leave C_Finalize to it.
      if (Atomics.load(state, USERS) === 0) Atomics.store(state, OWNED, 0)
    }
    Atomics.add(state, USERS, 1)
  })
}

/** Drops one user of the library; the last one calls C_Finalize if our workers initialised it. */
export function releaseLibrary(p11: pkcs11js.PKCS11, shared: SharedArrayBuffer): void {
  withLock(shared, (state) => {
    const users = Math.max(0, Atomics.load(state, USERS) - 1)
    Atomics.store(state, USERS, users)
    if (users > 0 || Atomics.load(state, OWNED) !== 1) return
    Atomics.store(state, OWNED, 0)
    try {
      p11.C_Finalize()
    } catch {
      // Already finalised: nothing left to release.
    }
  })
}
