/**
 * The Ub endpoint (TS 24.109 §4, Annex A; RFC 3310 Digest AKAv1-MD5) as a function from an
 * HTTP request to an HTTP response, around the pure core of `@m2msec/gba`:
 *
 * - `GET <uri>` with `Authorization: Digest username=<IMPI>, nonce="", response=""`: the
 *   subscriber's next SQN, Milenage in the KMS (Ks kept there), `401` with
 *   nonce = base64(RAND || AUTN). Unknown IMPI: `403`. While this replica's last challenge for
 *   the IMPI is unanswered (and has 30 s left), the same challenge is sent again: an initial
 *   request proves nothing, so it must not cost an SQN or a KMS key each time. A UE that did
 *   see that challenge rejects its SQN and resynchronises, which issues a new one.
 * - The answer: the challenge is looked up by nonce and marked used with a revision check
 *   BEFORE anything else happens, so each challenge is answered once across replicas. RES
 *   right: the session (B-TID = base64(RAND)@bsfHost) is stored and `200` carries
 *   BootstrappingInfo. `auts`: MAC-S checked in the KMS, SQN_HE := SQN_MS, a fresh `401`.
 * - Refusals (all audited, none echo request data): malformed header `400`; unknown or
 *   expired nonce `401` without a challenge (the UE starts again); replay, wrong RES,
 *   parameter mismatch, network authentication failure, bad MAC-S: `403`.
 * The Ks of a challenge that did not end in a session is scheduled for destruction.
 */
import { M2msecError, isM2msecError, type ErrorCode } from '@m2msec/errors'
import { base64ToBytes, btid as makeBtid } from '@m2msec/crypto'
import {
  authenticationInfo,
  bootstrappingInfo,
  BOOTSTRAPPING_INFO_CONTENT_TYPE,
  parseAuthorization,
  parseInitialRequest,
  verifyResponse,
  type DigestCredentials,
  type UbPending,
} from '@m2msec/gba'
import {
  gbaKey,
  recentRecordsOf,
  type ChallengeRecord,
  type SessionRecord,
  type SubscriberRecord,
} from '../store/gba-stores.ts'
import { audit, retireKeyInBackground, UNKNOWN_TENANT, type GbaDeps } from './context.ts'
import { challengeFor, issueChallenge, resynchronise, takeNextSqn } from './home-environment.ts'

/** An HTTP request as the Ub endpoint sees it. */
export interface UbHttpRequest {
  readonly method: string
  /** Request-target (path and query). */
  readonly url: string
  readonly authorization?: string | undefined
  /** Entity body (empty for a GET). */
  readonly body: Uint8Array
  /** Client address, for the audit record. */
  readonly peer?: string | undefined
}

/** The HTTP response to send. */
export interface UbHttpResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** Ub request handler. */
export interface UbEndpoint {
  handle(request: UbHttpRequest): Promise<UbHttpResponse>
}

const PLACEHOLDER_KEY = new Uint8Array(16)

/** Most IMPIs whose outstanding challenge a replica remembers (the oldest are forgotten). */
const OUTSTANDING_MAX = 100_000
/** An outstanding challenge is handed out again only while the UE has this long left to answer it. */
const REUSE_MARGIN_MS = 30_000

function plain(status: number, extra: Record<string, string> = {}): UbHttpResponse {
  return { status, headers: { 'cache-control': 'no-store', ...extra }, body: '' }
}

function pendingOf(r: ChallengeRecord): UbPending {
  return {
    impi: r.impi,
    realm: r.realm,
    nonce: r.nonce,
    opaque: r.opaque,
    qop: r.qop,
    av: {
      rand: base64ToBytes(r.rand),
      autn: base64ToBytes(r.autn),
      xres: base64ToBytes(r.xres),
      ck: PLACEHOLDER_KEY,
      ik: PLACEHOLDER_KEY,
    },
    issuedAt: r.issuedAt,
    expiresAt: r.expiresAt,
    used: r.used,
  }
}

/**
 * Creates the Ub endpoint.
 *
 * @example
 * ```ts
 * const ub = createUbEndpoint(deps)
 * const res = await ub.handle({ method: 'GET', url: '/', authorization, body: new Uint8Array() })
 * ```
 */
export function createUbEndpoint(deps: GbaDeps): UbEndpoint {
  const { settings } = deps

  const refuse = async (
    status: number,
    reason: string,
    code: ErrorCode,
    who: { tenant?: string; impi?: string },
    peer: string | undefined,
  ): Promise<UbHttpResponse> => {
    await audit(deps, {
      tenant: who.tenant ?? UNKNOWN_TENANT,
      principal: 'ue',
      action: 'bootstrap.Ub',
      resource: who.impi === undefined ? 'subscriber' : `subscriber/${who.impi}`,
      result: status === 400 ? 'error' : 'denied',
      code,
      details: { reason, ...(peer === undefined ? {} : { peer }) },
    })
    return plain(status)
  }

  // The unanswered challenge this replica last gave each IMPI. A repeated initial request gets
  // it again instead of a new one, so requests that prove nothing (anyone can send an IMPI)
  // do not advance the SQN or make the KMS create a Ks each time: at most one outstanding Ks
  // per subscriber and replica.
  const outstanding = new Map<string, { readonly key: string; readonly wwwAuthenticate: string }>()
  const remember = (impi: string, key: string, wwwAuthenticate: string) => {
    outstanding.delete(impi)
    if (outstanding.size >= OUTSTANDING_MAX) outstanding.delete(outstanding.keys().next().value ?? '')
    outstanding.set(impi, { key, wwwAuthenticate })
  }

  /** The outstanding challenge of `impi`, when it can still be answered (checked in KV: another replica may have taken it). */
  const stillOpen = async (impi: string): Promise<{ tenant: string; wwwAuthenticate: string } | undefined> => {
    const known = outstanding.get(impi)
    if (known === undefined) return undefined
    const stored = await deps.stores.challenges.get(known.key)
    const usableUntil = deps.clock.now().getTime() + REUSE_MARGIN_MS
    if (stored !== undefined && !stored.value.used && stored.value.expiresAt > usableUntil) {
      return { tenant: stored.value.tenant, wwwAuthenticate: known.wwwAuthenticate }
    }
    outstanding.delete(impi)
    return undefined
  }

  const challengeResponse = async (impi: string, peer: string | undefined, reason: string, sub?: SubscriberRecord) => {
    const issued = sub === undefined ? await issueChallenge(deps, impi) : await challengeFor(deps, sub)
    remember(impi, gbaKey(issued.record.nonce), issued.wwwAuthenticate)
    await audit(deps, {
      tenant: issued.record.tenant,
      principal: 'ue',
      action: 'bootstrap.Ub',
      resource: `subscriber/${impi}`,
      result: 'ok',
      details: { step: reason, ...(peer === undefined ? {} : { peer }) },
    })
    return plain(401, { 'www-authenticate': issued.wwwAuthenticate })
  }

  const initial = async (header: string, peer: string | undefined): Promise<UbHttpResponse> => {
    let impi: string
    try {
      impi = parseInitialRequest(header).impi
    } catch (err) {
      if (isM2msecError(err)) return refuse(400, 'malformed', err.code, {}, peer)
      throw err
    }
    const again = await stillOpen(impi)
    if (again !== undefined) {
      await audit(deps, {
        tenant: again.tenant,
        principal: 'ue',
        action: 'bootstrap.Ub',
        resource: `subscriber/${impi}`,
        result: 'ok',
        details: { step: 'challenge-again', ...(peer === undefined ? {} : { peer }) },
      })
      return plain(401, { 'www-authenticate': again.wwwAuthenticate })
    }
    // One read-modify-write of the subscriber (its next SQN) also tells whether it exists.
    let sub: SubscriberRecord
    try {
      sub = await takeNextSqn(deps, impi)
    } catch (err) {
      if (isM2msecError(err) && err.code === 'ERR_NOT_FOUND') {
        return refuse(403, 'unknown-impi', 'ERR_NOT_FOUND', { impi }, peer)
      }
      throw err
    }
    try {
      return await challengeResponse(impi, peer, 'challenge', sub)
    } catch (err) {
      if (isM2msecError(err) && (err.code === 'ERR_NOT_FOUND' || err.code === 'ERR_KEY_NOT_FOUND')) {
        return refuse(403, 'subscriber-unusable', err.code, { tenant: sub.tenant, impi }, peer)
      }
      throw err
    }
  }

  const answer = async (
    header: string,
    credentials: DigestCredentials,
    request: UbHttpRequest,
  ): Promise<UbHttpResponse> => {
    const peer = request.peer
    // Ub nonces are base64(RAND || AUTN), 44 characters: anything longer is not ours and must
    // not reach the KV lookup (its key goes into a NATS subject).
    if (credentials.nonce.length > 64) return refuse(401, 'unknown-nonce', 'ERR_UNAUTHENTICATED', {}, peer)
    const key = gbaKey(credentials.nonce)
    // A challenge this replica issued is known with its revision; the claim below is
    // revision-checked, so a copy another replica has since answered only fails that claim.
    const recent = recentRecordsOf(deps.stores).challenges
    const cached = recent.get(key)
    const stored =
      cached !== undefined && cached.value.expiresAt > deps.clock.now().getTime()
        ? cached
        : await deps.stores.challenges.get(key)
    if (stored === undefined) return refuse(401, 'unknown-nonce', 'ERR_UNAUTHENTICATED', {}, peer)
    const record = stored.value
    const who = { tenant: record.tenant, impi: record.impi }
    const now = deps.clock.now()
    const r = verifyResponse(
      pendingOf(record),
      header,
      { method: request.method, uri: request.url, body: request.body },
      now.getTime(),
    )
    if (r.kind === 'failure' && !(r.pending.used && !record.used)) {
      // Not consumed by this request (a replay, or unreadable): nothing to claim or retire.
      return refuse(r.error.code === 'ERR_INVALID_ARGUMENT' ? 400 : 403, r.reason, r.error.code, who, peer)
    }

    // The first answer ends the challenge: claim it with a revision check before acting.
    const btid = r.kind === 'ok' ? makeBtid(r.rand, settings.bsfHost) : undefined
    recent.delete(key)
    if (outstanding.get(record.impi)?.key === key) outstanding.delete(record.impi)
    try {
      await deps.stores.challenges.update(
        key,
        { ...record, used: true, ...(btid === undefined ? { retired: true } : { sessionBtid: btid }) },
        stored.revision,
      )
    } catch (err) {
      if (isM2msecError(err) && err.code === 'ERR_REVISION_CONFLICT') {
        return refuse(403, 'replayed', 'ERR_REPLAY', who, peer)
      }
      throw err
    }

    switch (r.kind) {
      case 'ok': {
        if (btid === undefined) throw new M2msecError('ERR_INTERNAL', 'no B-TID')
        const lifetime = new Date(now.getTime() + settings.keyLifetimeMs)
        const session: SessionRecord = {
          tenant: record.tenant,
          btid,
          impi: record.impi,
          rand: record.rand,
          ksKeyId: record.ksKeyId,
          bootstrappedAt: now.toISOString(),
          expiresAt: lifetime.toISOString(),
          nafKeyIds: [],
        }
        await deps.stores.sessions.create(gbaKey(btid), session)
        const body = bootstrappingInfo({ btid, lifetime })
        await audit(deps, {
          tenant: record.tenant,
          principal: 'ue',
          action: 'bootstrap.Ub',
          resource: `subscriber/${record.impi}`,
          result: 'ok',
          details: { step: 'bootstrapped', btid, ...(peer === undefined ? {} : { peer }) },
        })
        return {
          status: 200,
          headers: {
            'authentication-info': authenticationInfo(r.pending, r.credentials, body),
            'content-type': BOOTSTRAPPING_INFO_CONTENT_TYPE,
            'cache-control': 'no-store',
          },
          body,
        }
      }
      case 'resync': {
        retireKeyInBackground(deps, record.tenant, record.ksKeyId)
        const sub = await deps.stores.subscribers.get(gbaKey(record.impi))
        if (sub === undefined || sub.value.tenant !== record.tenant) {
          return refuse(403, 'subscriber-unusable', 'ERR_NOT_FOUND', who, peer)
        }
        try {
          await resynchronise(deps, sub.value, r.rand, r.auts)
        } catch (err) {
          if (isM2msecError(err) && (err.code === 'ERR_MAC_INVALID' || err.code === 'ERR_NOT_FOUND')) {
            return refuse(
              403,
              err.code === 'ERR_MAC_INVALID' ? 'resync-mac' : 'subscriber-unusable',
              err.code,
              who,
              peer,
            )
          }
          throw err
        }
        return challengeResponse(record.impi, peer, 'resynchronised')
      }
      case 'failure':
        retireKeyInBackground(deps, record.tenant, record.ksKeyId)
        return refuse(r.error.code === 'ERR_INVALID_ARGUMENT' ? 400 : 403, r.reason, r.error.code, who, peer)
    }
  }

  return {
    async handle(request) {
      const path = request.url.split('?')[0]
      if (path !== settings.uri) return plain(404)
      if (request.method !== 'GET') return plain(405, { allow: 'GET' })
      const header = request.authorization
      if (header === undefined || header === '') {
        return refuse(400, 'missing-authorization', 'ERR_INVALID_ARGUMENT', {}, request.peer)
      }
      let credentials: DigestCredentials
      try {
        credentials = parseAuthorization(header)
      } catch (err) {
        if (isM2msecError(err)) return refuse(400, 'malformed', err.code, {}, request.peer)
        throw err
      }
      return credentials.nonce === '' ? initial(header, request.peer) : answer(header, credentials, request)
    },
  }
}
