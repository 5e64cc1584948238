/**
 * `@m2msec/sdk/gba`: the UE side of GBA (3GPP TS 33.220 GBA_ME) over real HTTP. It runs Ub
 * (TS 24.109, Digest AKAv1-MD5) against a BSF with a USIM (real, or `createSimulatedUsim`
 * from `@m2msec/gba` holding K, OPc and the SQN array), follows resynchronisations, checks
 * rspauth, and derives Ks_NAF for NAFs from the session. Keys stay in memory; nothing is
 * logged.
 *
 * @example
 * ```ts
 * import { createGbaUeClient, createSimulatedUsim, UA_PROTOCOL_ID } from '@m2msec/sdk/gba'
 * const ue = createGbaUeClient({ bsfUrl: 'http://bsf.example:8084', impi, usim: createSimulatedUsim({ k, opc }) })
 * const session = await ue.bootstrap()
 * const ksNaf = await ue.ksNaf('naf.example.com', UA_PROTOCOL_ID.httpDigest)
 * ```
 */
import { M2msecError, type ErrorCode } from '@m2msec/errors'
import {
  answerChallenge,
  completeBootstrap,
  deriveSessionKsNaf,
  GBA_TMPI_PRODUCT_TOKEN,
  initialAuthorization,
  verifyAuthenticationInfo,
  type UeBootstrapSession,
  type Usim,
} from '@m2msec/gba'

export { createSimulatedUsim, type SimulatedUsim, type Usim, type UeBootstrapSession } from '@m2msec/gba'
export { UA_PROTOCOL_ID, uaTlsPskProtocolId } from '@m2msec/crypto'

/** Options of {@link bootstrapOverHttp} and {@link createGbaUeClient}. */
export interface GbaUeOptions {
  /** The BSF's Ub URL, e.g. `http://bsf.example:8084/` (its path is the request-URI; default `/`). */
  readonly bsfUrl: string
  /** The subscriber's IMPI. */
  readonly impi: string
  readonly usim: Usim
  /** Digest realm of the initial request (the UE's guess of the BSF host); default the URL's host name. */
  readonly realm?: string
  /** How many resynchronisations one bootstrap may go through; default 2. */
  readonly maxResyncs?: number
  /** Product tokens for `User-Agent`; `3gpp-gba-tmpi` is always added. Default `m2msec-sdk`. */
  readonly userAgent?: string
  /** HTTP client; default the global `fetch`. */
  readonly fetch?: typeof fetch
  /** Deadline per HTTP request, ms; default 10 s. */
  readonly timeoutMs?: number
}

/** A session plus how many resynchronisations it took. */
export interface GbaBootstrapResult extends UeBootstrapSession {
  readonly resyncs: number
}

function statusError(status: number, step: string): M2msecError {
  const code: ErrorCode =
    status === 400
      ? 'ERR_INVALID_ARGUMENT'
      : status === 401 || status === 403
        ? 'ERR_UNAUTHENTICATED'
        : status >= 500
          ? 'ERR_UNAVAILABLE'
          : 'ERR_INTERNAL'
  return new M2msecError(code, `the BSF answered ${status} to the ${step}`, { status, step })
}

/**
 * Runs one bootstrap: initial `GET`, `401`, the USIM, the answer, then `200` with
 * BootstrappingInfo (rspauth checked). On a synchronisation failure it sends AUTS and answers
 * the fresh challenge. Errors: ERR_MAC_INVALID when AUTN fails (the BSF is told, then the
 * bootstrap stops: do not trust that BSF), ERR_UNAUTHENTICATED for a refused answer or a wrong
 * rspauth, ERR_UNAVAILABLE when the BSF cannot be reached or fails.
 *
 * @example
 * ```ts
 * const session = await bootstrapOverHttp({ bsfUrl, impi, usim })
 * ```
 */
export async function bootstrapOverHttp(opts: GbaUeOptions): Promise<GbaBootstrapResult> {
  const url = new URL(opts.bsfUrl)
  const uri = `${url.pathname}${url.search}`
  const realm = opts.realm ?? url.hostname
  const doFetch = opts.fetch ?? fetch
  const userAgent = `${opts.userAgent ?? 'm2msec-sdk'}; ${GBA_TMPI_PRODUCT_TOKEN}`
  const get = async (authorization: string) => {
    try {
      const res = await doFetch(url, {
        method: 'GET',
        headers: { authorization, 'user-agent': userAgent },
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      })
      return { status: res.status, headers: res.headers, body: await res.text() }
    } catch (err) {
      throw new M2msecError('ERR_UNAVAILABLE', 'cannot reach the BSF', {}, { cause: err })
    }
  }

  let res = await get(initialAuthorization({ impi: opts.impi, realm, uri }))
  const maxResyncs = opts.maxResyncs ?? 2
  for (let resyncs = 0; ; resyncs++) {
    const challenge = res.headers.get('www-authenticate')
    if (res.status !== 401 || challenge === null) throw statusError(res.status, 'bootstrapping request')
    const a = await answerChallenge({ impi: opts.impi, wwwAuthenticate: challenge, usim: opts.usim, uri })
    if (a.kind === 'network-failure') {
      await get(a.authorization).catch(() => undefined)
      throw a.error
    }
    if (a.kind === 'resync') {
      if (resyncs >= maxResyncs) {
        throw new M2msecError('ERR_UNAUTHENTICATED', 'the BSF keeps sending stale sequence numbers', { resyncs })
      }
      res = await get(a.authorization)
      continue
    }
    res = await get(a.authorization)
    const info = res.headers.get('authentication-info')
    if (res.status !== 200) throw statusError(res.status, 'challenge answer')
    if (info === null) throw new M2msecError('ERR_UNAUTHENTICATED', 'the BSF sent no Authentication-Info')
    verifyAuthenticationInfo(a.state, info, res.body)
    return { ...completeBootstrap(a.state, res.body), resyncs }
  }
}

/** A UE that keeps its bootstrapping session and re-bootstraps when it expires. */
export interface GbaUeClient {
  /** Bootstraps now (replacing any current session). */
  bootstrap(): Promise<GbaBootstrapResult>
  /** The current session, bootstrapping first when there is none or it expires within `marginMs` (default 30 s). */
  session(marginMs?: number): Promise<UeBootstrapSession>
  /** Ks_(ext)_NAF for a NAF of the current session (TS 33.220 Annex B.3, "gba-me"). */
  ksNaf(nafFqdn: string, uaProtocolId: Uint8Array): Promise<{ btid: string; key: Uint8Array; expiresAt: Date }>
  /** Forgets the session (and its Ks). */
  clear(): void
}

/**
 * @example
 * ```ts
 * const ue = createGbaUeClient({ bsfUrl, impi, usim })
 * const { btid, key } = await ue.ksNaf('naf.example.com', UA_PROTOCOL_ID.httpDigest)
 * ```
 */
export function createGbaUeClient(opts: GbaUeOptions): GbaUeClient {
  let current: GbaBootstrapResult | undefined
  const clear = () => {
    current?.ks.fill(0)
    current = undefined
  }
  const client: GbaUeClient = {
    async bootstrap() {
      const next = await bootstrapOverHttp(opts)
      clear()
      current = next
      return next
    },
    async session(marginMs = 30_000) {
      if (current === undefined || current.lifetime.getTime() - marginMs <= Date.now()) return client.bootstrap()
      return current
    },
    async ksNaf(nafFqdn, uaProtocolId) {
      const s = await client.session()
      return { btid: s.btid, key: deriveSessionKsNaf(s, nafFqdn, uaProtocolId), expiresAt: s.lifetime }
    },
    clear,
  }
  return client
}
