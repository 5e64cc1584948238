/**
 * Messages between the pkcs11 SE (main thread) and its worker threads. Every PKCS#11 call
 * runs in a worker; the main thread validates arguments and passes plain data.
 */
import type { ErrorCode, ErrorDetails } from '@m2msec/errors'
import type { Pkcs11Token, TokenConfig, TokenInfo } from './token.ts'

/** The token methods a worker serves. */
export type TokenMethod =
  | 'generate'
  | 'import'
  | 'destroy'
  | 'evict'
  | 'encrypt'
  | 'decrypt'
  | 'sign'
  | 'verify'
  | 'mac'
  | 'derive3gpp'
  | 'wrap'
  | 'unwrap'
  | 'milenage'

/** The callable surface of a worker, typed after {@link Pkcs11Token}. */
export type TokenApi = Pick<Pkcs11Token, TokenMethod>

/** What a worker is started with (`workerData`). */
export type WorkerConfig = TokenConfig

/**
 * Main → worker: calls are sent in batches (an array of these), one batch per main-thread
 * tick, and answered with one array of {@link ReplyMessage}s: under load this saves a thread
 * wake-up per call. `close` takes no arguments (the worker decides on C_Finalize, library.ts).
 */
export interface CallMessage {
  readonly id: number
  readonly method: TokenMethod | 'close'
  readonly args: readonly unknown[]
}

/** An error as it crosses the thread boundary. */
export interface SerializedError {
  readonly code: ErrorCode
  readonly message: string
  readonly details: ErrorDetails
}

/** Worker → main, once, after opening the token. */
export type StartMessage = { readonly ready: TokenInfo } | { readonly failed: SerializedError }

/** Worker → main, per call. */
export type ReplyMessage =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError }
