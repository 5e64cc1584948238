/**
 * `GET /fetchCredentials/<KeID>/<SUID>` over HTTPS (TS-0003 §8.3.2.1 "Use by Enrolment
 * Target"). The target authenticates with a client certificate of the platform PKI (mTLS) or
 * a bearer token, through the service's Authenticator; the authenticated principal must be a
 * configured target, and an `X-M2M-Origin` header, when sent, must name that target. The
 * answer carries the usage-constrained key wrapped for the target's configured public JWK
 * (JWE ECDH-ES+A256KW / A256GCM, made inside the KMS), never in the clear:
 * `{ status: true, credential, enroleeId, lifetime, suid, keyKind }`; errors are
 * `{ status: false, errorString, code }` with the matching HTTP status.
 */
import https from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import * as grpc from '@grpc/grpc-js'
import { ERROR_CODES, isM2msecError, M2msecError, type ErrorCode } from '@m2msec/errors'
import type { Authenticator, Logger } from '@m2msec/runtime'
import { derivationFor, derivedKeyId, targetName } from '../domain/derivation.ts'
import type { RspfDirectory } from '../domain/directory.ts'
import { authorizeFetch } from '../domain/enrolment.ts'
import { parseKeId, parseSuid } from '../domain/ids.ts'
import type { EnrolmentStore, RspfKms } from '../domain/ports.ts'

/** Options of {@link createFetchCredentialsServer}. */
export interface FetchCredentialsOptions {
  readonly certPem: string
  readonly keyPem: string
  /** CA of target client certificates; undefined = no client certificates requested. */
  readonly clientCaPem?: string
  readonly mefFqdn: string
  readonly directory: RspfDirectory
  readonly store: EnrolmentStore
  readonly kms: RspfKms
  readonly authenticator: Authenticator
  readonly log: Logger
  readonly now: () => Date
}

const HTTP_STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  FAILED_PRECONDITION: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
}

/** HTTP status of an error code (its gRPC status class). */
export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[ERROR_CODES[code]] ?? 500
}

const PATH_RE = /^\/fetchCredentials\/([^/?]+)\/([^/?]+)$/

/**
 * @example
 * ```ts
 * const server = createFetchCredentialsServer({ certPem, keyPem, clientCaPem, mefFqdn, directory, store, kms, authenticator, log, now })
 * server.listen(7445)
 * // GET https://mef:7445/fetchCredentials/<KeID>/21 with a target's client certificate
 * ```
 */
export function createFetchCredentialsServer(opts: FetchCredentialsOptions): https.Server {
  const handle = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    if (req.method !== 'GET') throw new M2msecError('ERR_INVALID_ARGUMENT', 'only GET (RETRIEVE) is supported')
    const match = PATH_RE.exec(new URL(req.url ?? '/', 'https://mef').pathname)
    if (match === null) throw new M2msecError('ERR_NOT_FOUND', 'no such resource')
    let keIdText: string
    try {
      keIdText = decodeURIComponent(match[1] ?? '')
    } catch {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'KeID is not URI-encoded', { field: 'keId' })
    }

    const metadata = new grpc.Metadata()
    const authorization = req.headers.authorization
    if (authorization !== undefined) metadata.set('authorization', authorization)
    const socket = req.socket as TLSSocket
    const peerCertificate = socket.authorized ? socket.getPeerCertificate() : undefined
    const principal = await opts.authenticator.authenticate(
      peerCertificate === undefined ? { metadata } : { metadata, peerCertificate },
    )
    const target = opts.directory.targetByPrincipal(principal.tenant, principal.id)
    if (target === undefined) throw new M2msecError('ERR_PERMISSION_DENIED', 'the caller is not an enrolment target')
    const origin = req.headers['x-m2m-origin']
    if (origin !== undefined && origin !== targetName(target.target)) {
      throw new M2msecError('ERR_PERMISSION_DENIED', 'X-M2M-Origin does not name the authenticated target')
    }

    const suid = parseSuid(match[2] ?? '')
    const { relativeHex } = parseKeId(keIdText, opts.mefFqdn)
    const record = await opts.store.get(principal.tenant, relativeHex)
    const { enrolment } = authorizeFetch({
      enrolment: record,
      enrolee: record === undefined ? undefined : opts.directory.byCredentialId(record.credentialId),
      target,
      suid,
      now: opts.now(),
    })
    const derivation = derivationFor(target.target, suid)
    const keyId = derivedKeyId(relativeHex, suid, target.target)
    const tenant = enrolment.tenant
    await opts.kms.deriveHmacKey(tenant, enrolment.keKeyId, keyId, derivation.data, new Date(enrolment.expiresAt))
    const credential = await opts.kms.wrapForJwk(tenant, keyId, target.publicJwk)
    opts.log.info(
      { tenant, keId: enrolment.keId, target: targetName(target.target), suid, keyKind: derivation.kind },
      'rspf credentials fetched',
    )
    return {
      status: true,
      credential,
      enroleeId: enrolment.enroleeId,
      lifetime: enrolment.expiresAt,
      suid,
      keyKind: derivation.kind,
    }
  }

  const send = (res: ServerResponse, status: number, body: Record<string, unknown>) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    res.end(text)
  }

  return https.createServer(
    {
      cert: opts.certPem,
      key: opts.keyPem,
      minVersion: 'TLSv1.2',
      ...(opts.clientCaPem === undefined ? {} : { ca: opts.clientCaPem, requestCert: true, rejectUnauthorized: false }),
    },
    (req, res) => {
      // The request body is never read: RETRIEVE has none.
      req.resume()
      handle(req).then(
        (body) => send(res, 200, body),
        (err: unknown) => {
          const code: ErrorCode = isM2msecError(err) ? err.code : 'ERR_INTERNAL'
          if (code === 'ERR_INTERNAL') opts.log.error({ err }, 'rspf fetchCredentials failed')
          const errorString = code === 'ERR_INTERNAL' ? 'internal error' : (err as M2msecError).message
          send(res, httpStatusOf(code), { status: false, errorString, code })
        },
      )
    },
  )
}
