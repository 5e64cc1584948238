/**
 * Minimal Vault / OpenBao HTTP client for the transit SE: JSON over global fetch, the token in
 * `X-Vault-Token` (read from a file, so Vault Agent can rotate it), optional
 * `X-Vault-Namespace`, a timeout per request.
 *
 * Failures that mean "Vault cannot serve us now" become ERR_SE_UNAVAILABLE here: network
 * errors, timeouts, 401/403 (after re-reading the token file once), 412/429/473 and 5xx.
 * Other statuses are returned to the caller, which knows what a 400 or 404 means for its
 * endpoint. The token never appears in a message.
 */
import { readFile } from 'node:fs/promises'
import { M2msecError } from '@m2msec/errors'

/** Connection settings. */
export interface VaultClientOptions {
  /** Base address, e.g. `https://vault.example:8200`. */
  readonly address: URL
  readonly tokenFile: string
  readonly namespace?: string | undefined
  readonly timeoutMs: number
}

/** A Vault reply that is not an "unavailable" failure. */
export interface VaultReply {
  readonly status: number
  /** The `data` object of the response body, when there is one. */
  readonly data: Readonly<Record<string, unknown>>
  /** `warnings` of the response body (Vault reports ignored parameters there). */
  readonly warnings: readonly string[]
  /** `errors` of the response body (4xx replies). */
  readonly errors: readonly string[]
}

/** Sends one request under `/v1/`; `close` aborts requests in flight. */
export interface VaultClient {
  request(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: Readonly<Record<string, unknown>>,
  ): Promise<VaultReply>
  close(): void
}

/**
 * Reads the token file once now (ERR_CONFIG_INVALID if missing or empty) and returns a client.
 *
 * @example
 * ```ts
 * const vault = await createVaultClient({ address: new URL('http://127.0.0.1:8200'), tokenFile: '/run/secrets/vault-token', timeoutMs: 5000 })
 * const reply = await vault.request('POST', 'transit/random/32', {})
 * ```
 */
export async function createVaultClient(opts: VaultClientOptions): Promise<VaultClient> {
  let token = await readToken(opts.tokenFile)
  const closer = new AbortController()

  async function send(method: string, path: string, payload: string | undefined): Promise<RawReply> {
    const url = new URL(`v1/${path}`, opts.address.href.endsWith('/') ? opts.address : `${opts.address.href}/`)
    const headers: Record<string, string> = {
      'X-Vault-Token': token,
      'X-Vault-Request': 'true',
    }
    if (opts.namespace !== undefined) headers['X-Vault-Namespace'] = opts.namespace
    if (payload !== undefined) headers['Content-Type'] = 'application/json'
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs), closer.signal])
      const res = await fetch(url, {
        method,
        headers,
        signal,
        ...(payload === undefined ? {} : { body: payload }),
      })
      // Read the body under the same signal, so a stalled body also times out.
      return { status: res.status, text: await res.text() }
    } catch (err) {
      const why = closer.signal.aborted
        ? 'the secure environment was closed'
        : (err as { name?: string }).name === 'TimeoutError'
          ? `no answer within ${opts.timeoutMs} ms`
          : 'connection failed'
      throw new M2msecError('ERR_SE_UNAVAILABLE', `Vault ${method} ${path}: ${why}`, { path }, { cause: err })
    }
  }

  return {
    async request(method, path, body) {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      let res = await send(method, path, payload)
      if (res.status === 401 || res.status === 403) {
        // Vault Agent may have written a new token since we read the file.
        const fresh = await readToken(opts.tokenFile).catch(() => token)
        if (fresh !== token) {
          token = fresh
          res = await send(method, path, payload)
        }
      }
      const parsed = parseBody(res.text)
      const errorText = parsed.errors.join('; ').slice(0, 300)
      if (res.status === 401 || res.status === 403) {
        throw new M2msecError(
          'ERR_SE_UNAVAILABLE',
          `Vault ${method} ${path}: the token was refused (permission denied); check the token file and the token's policy`,
          { path, httpStatus: res.status },
        )
      }
      if (res.status >= 500 || res.status === 412 || res.status === 429 || res.status === 473) {
        throw new M2msecError(
          'ERR_SE_UNAVAILABLE',
          `Vault ${method} ${path} is unavailable (HTTP ${res.status}) ${errorText}`.trim(),
          {
            path,
            httpStatus: res.status,
          },
        )
      }
      return { status: res.status, ...parsed }
    },
    close() {
      closer.abort()
    },
  }
}

async function readToken(file: string): Promise<string> {
  let token: string
  try {
    token = (await readFile(file, 'utf8')).trim()
  } catch (err) {
    throw new M2msecError('ERR_CONFIG_INVALID', `vault: cannot read token file ${file}`, {}, { cause: err })
  }
  if (token === '' || /\s/.test(token)) {
    throw new M2msecError('ERR_CONFIG_INVALID', `vault: token file ${file} must hold one token`)
  }
  return token
}

interface RawReply {
  readonly status: number
  readonly text: string
}

function parseBody(text: string): Omit<VaultReply, 'status'> {
  let body: { data?: unknown; warnings?: unknown; errors?: unknown } = {}
  if (text !== '') {
    try {
      body = JSON.parse(text) as typeof body
    } catch {
      // Not Vault answering (a proxy's HTML page): status alone decides.
    }
  }
  const strings = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
  const data = typeof body.data === 'object' && body.data !== null ? (body.data as Record<string, unknown>) : {}
  return {
    data,
    warnings: strings(body.warnings),
    errors: strings(body.errors),
  }
}
