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
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { uaTlsPskProtocolId } from '@m2msec/crypto'
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

/** Options of {@link gbaClientAssertion}. */
export interface GbaAssertionOptions {
  /** The UE; it bootstraps first when it has no current session. */
  readonly ue: GbaUeClient
  /** The authn entity the device is registered as (with a GBA credential naming its IMPI). */
  readonly entityId: string
  /** authn's MAF FQDN (its `maf.fqdn`): the NAF FQDN of Km. */
  readonly mafFqdn: string
  /** The token endpoint id (authn `token.endpointId`); default `m2msec-authn-token`. */
  readonly audience?: string
  /** Ua security protocol id of Km; default `01 00 01 00 ae`, the bootstrap service's RSPF default. */
  readonly uaProtocolId?: Uint8Array
  /** Assertion lifetime, seconds (at most 300); default 60. */
  readonly lifetimeSec?: number
}

/** An HS256 client assertion signed with Km, and how to check authn's server proof. */
export interface GbaAssertion {
  /** For `IssueTokenRequest.assertion`. */
  readonly assertion: string
  /** The B-TID (KmID), the assertion's `kid`. */
  readonly btid: string
  readonly jti: string
  /** True when `proof` (IssueTokenResponse.server_proof, HMAC type) was made with Km for this assertion. */
  verifyServerProof(proof: string, accessTokenId: string): boolean
}

/**
 * A client assertion for authn's IssueToken with the GBA session as credential (oneM2M GBA
 * RSPF with authn as the MAF): HS256 with Km = Ks_NAF for `mafFqdn`, `kid` = the B-TID.
 * authn fetches Km from the BSF over Zn the first time it sees the B-TID (docs/authn.md).
 *
 * @example
 * ```ts
 * const a = await gbaClientAssertion({ ue, entityId: 'urn:imei:490154203237518', mafFqdn: 'maf.example.com' })
 * const res = await authn.issueToken({ tenant: 'acme', assertion: a.assertion })
 * if (!a.verifyServerProof(res.serverProof, res.tokenId)) throw new Error('not our authn')
 * ```
 */
export async function gbaClientAssertion(opts: GbaAssertionOptions): Promise<GbaAssertion> {
  const { btid, key } = await opts.ue.ksNaf(opts.mafFqdn, opts.uaProtocolId ?? uaTlsPskProtocolId(0x00ae))
  const jti = randomBytes(16).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const claims = {
    iss: opts.entityId,
    sub: opts.entityId,
    aud: opts.audience ?? 'm2msec-authn-token',
    iat: now,
    exp: now + (opts.lifetimeSec ?? 60),
    jti,
  }
  const input = `${part({ alg: 'HS256', kid: btid })}.${part(claims)}`
  const assertion = `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
  return {
    assertion,
    btid,
    jti,
    verifyServerProof(proof, accessTokenId) {
      const expected = createHmac('sha256', key)
        .update(
          Buffer.concat([
            Buffer.from('m2msec-server-proof'),
            Buffer.of(0),
            Buffer.from(jti),
            Buffer.of(0),
            Buffer.from(accessTokenId),
          ]),
        )
        .digest()
      const got = Buffer.from(proof, 'base64url')
      return got.length === expected.length && timingSafeEqual(got, expected)
    },
  }
}
