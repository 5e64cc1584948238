/**
 * A BSF in memory, wrapping the pure Ub core the way the BSF service will (minus HTTP,
 * KMS and NATS): pending challenges keyed by nonce and kept until they expire (so a second
 * answer is seen as a replay), AUTS handled by resynchronising the HE and challenging again.
 */
import { btid as makeBtid } from '@m2msec/crypto'
import { isM2msecError, type ErrorCode } from '@m2msec/errors'
import {
  authenticationInfo,
  bootstrappingInfo,
  BOOTSTRAPPING_INFO_CONTENT_TYPE,
  challenge,
  parseAuthorization,
  parseInitialRequest,
  verifyResponse,
  type GbaKeyMaterial,
  type UbFailureReason,
  type UbPending,
} from '../../src/index.ts'
import type { TestHe } from './he.ts'

export interface UbHttpRequest {
  method: string
  uri: string
  authorization?: string
  body?: string
}

export interface UbHttpResponse {
  status: number
  headers: Record<string, string>
  body: string
  /** Set on a refusal, for the tests (a real service would audit it). */
  error?: ErrorCode
  reason?: UbFailureReason | 'bad-request' | 'resync-mac'
}

export interface BsfSession extends GbaKeyMaterial {
  btid: string
  lifetime: Date
}

export interface InMemoryBsf {
  handle(request: UbHttpRequest): Promise<UbHttpResponse>
  /** Bootstrapping sessions by B-TID (what Zn would read). */
  sessions: Map<string, BsfSession>
  pending: Map<string, UbPending>
}

export function createInMemoryBsf(config: {
  he: TestHe
  realm: string
  bsfHost: string
  now: () => number
  randomBytes: (n: number) => Uint8Array
  keyLifetimeMs: number
  nonceTtlMs?: number
}): InMemoryBsf {
  const pending = new Map<string, UbPending>()
  const sessions = new Map<string, BsfSession>()

  const issueChallenge = async (impi: string): Promise<UbHttpResponse> => {
    const av = await config.he.authVector(config.randomBytes(16))
    const c = challenge(av, config.realm, config.now(), {
      impi,
      randomBytes: config.randomBytes,
      ...(config.nonceTtlMs === undefined ? {} : { ttlMs: config.nonceTtlMs }),
    })
    pending.set(c.pending.nonce, c.pending)
    return { status: 401, headers: { 'www-authenticate': c.wwwAuthenticate }, body: '' }
  }

  const refuse = (status: number, error: ErrorCode, reason: UbHttpResponse['reason']): UbHttpResponse => ({
    status,
    headers: {},
    body: '',
    error,
    ...(reason === undefined ? {} : { reason }),
  })

  return {
    sessions,
    pending,
    async handle(request) {
      if (request.authorization === undefined) return refuse(400, 'ERR_INVALID_ARGUMENT', 'bad-request')
      let nonce: string
      try {
        nonce = parseAuthorization(request.authorization).nonce
      } catch (err) {
        if (isM2msecError(err)) return refuse(400, err.code, 'bad-request')
        throw err
      }
      if (nonce === '') {
        try {
          return await issueChallenge(parseInitialRequest(request.authorization).impi)
        } catch (err) {
          if (isM2msecError(err)) return refuse(400, err.code, 'bad-request')
          throw err
        }
      }
      const record = pending.get(nonce)
      if (record === undefined) return refuse(401, 'ERR_UNAUTHENTICATED', 'nonce-mismatch')
      const r = verifyResponse(
        record,
        request.authorization,
        { method: request.method, uri: request.uri, body: request.body ?? '' },
        config.now(),
      )
      pending.set(nonce, r.pending)
      switch (r.kind) {
        case 'ok': {
          const btid = makeBtid(r.rand, config.bsfHost)
          const lifetime = new Date(config.now() + config.keyLifetimeMs)
          sessions.set(btid, { impi: r.impi, rand: r.rand, ks: r.ks, btid, lifetime })
          const body = bootstrappingInfo({ btid, lifetime })
          return {
            status: 200,
            headers: {
              'authentication-info': authenticationInfo(r.pending, r.credentials, body),
              'content-type': BOOTSTRAPPING_INFO_CONTENT_TYPE,
            },
            body,
          }
        }
        case 'resync':
          try {
            await config.he.resync(r.rand, r.auts)
          } catch (err) {
            if (isM2msecError(err) && err.code === 'ERR_MAC_INVALID') return refuse(403, err.code, 'resync-mac')
            throw err
          }
          return issueChallenge(r.impi)
        case 'failure':
          return refuse(r.error.code === 'ERR_INVALID_ARGUMENT' ? 400 : 403, r.error.code, r.reason)
      }
    },
  }
}
