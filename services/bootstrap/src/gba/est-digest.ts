/**
 * EST enrolment authorized by GBA (RFC 7030 §3.2.3 HTTP Digest; TS 24.109 §5.2 and TS 33.222
 * §5.3 for the GBA profile): the EST endpoint is a NAF of this BSF.
 *
 * - Challenge: `Digest realm="3GPP-bootstrapping@<NAF FQDN>"`, a fresh one-time nonce (KV
 *   bucket `gba-est-nonces`, shared by the replicas), qop auth or auth-int, MD5.
 * - Response: username = B-TID, password = base64(Ks_NAF) with NAF_Id = NAF FQDN || Ua id of
 *   HTTP Digest (01 00 00 00 02).
 * - Digest needs H(A1) = MD5(B-TID:realm:password) at the verifier, so this NAF receives
 *   Ks_NAF over (in-process) Zn the way an external NAF does: derived in the KMS, wrapped for
 *   a key pair that exists only in this process. It keeps only H(A1), in memory, until the
 *   bootstrapping session expires, and zeroes Ks_NAF at once. H(A1) answers for this realm
 *   only; Ks and the other NAF keys stay in the KMS.
 * - The subscriber's `enrolmentNames` are what the CSR may ask for; without them GBA
 *   enrolment is refused.
 *
 * Order of checks, so that unauthenticated junk costs little and stores nothing beyond its
 * nonce: header syntax, realm, uri, nonce format (24 base64url characters) and B-TID format
 * (base64 RAND "@" bsfHost); then the nonce is consumed (one use, right or wrong; a second
 * use is ERR_REPLAY) and from there every attempt is audited as `bootstrap.EstGbaAuthenticate`;
 * then the session and the subscriber's enrolment names (none: ERR_PERMISSION_DENIED, and no
 * Ks_NAF is ever derived for it); then H(A1) and the response. Unknown, expired and foreign
 * B-TIDs and wrong responses all get the same ERR_UNAUTHENTICATED "Digest authentication
 * failed".
 */
import { timingSafeEqual } from 'node:crypto'
import { compactDecrypt, exportJWK, generateKeyPair, type GenerateKeyPairResult } from 'jose'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { UA_PROTOCOL_ID } from '@m2msec/crypto'
import type { SubjectNames } from '@m2msec/pki'
import {
  computeResponseWithHa1,
  digestHa1,
  formatWwwAuthenticate,
  parseAuthorization,
  type DigestCredentials,
} from '@m2msec/gba'
import type { EstGbaAuthenticator } from '../pki/index.ts'
import { gbaKey } from '../store/gba-stores.ts'
import { audited, type GbaDeps } from './context.ts'
import type { ZnOperations } from './zn.ts'

/** Realm prefix of GBA Digest on Ua (TS 24.109 §5.2.2.1): the UE knows it should use GBA. */
export const GBA_REALM_PREFIX = '3GPP-bootstrapping@'

/** Principal named in the audit records of this NAF. */
export const EST_NAF_PRINCIPAL = 'bootstrap-est'

/** Options of {@link createEstGbaAuthenticator}. */
export interface EstGbaOptions {
  /** The FQDN devices use to reach the EST endpoint (realm and NAF_Id). */
  readonly nafFqdn: string
  /** How long a nonce may be answered. */
  readonly nonceTtlMs: number
  /** Most H(A1) values kept; the oldest go first. Default 10 000. */
  readonly cacheMax?: number
}

interface CachedHa1 {
  readonly ha1: string
  readonly expiresAt: number
}

/** The nonces {@link createEstGbaAuthenticator} issues: 18 random bytes, base64url. */
const NONCE_RE = /^[A-Za-z0-9_-]{24}$/

const failed = () => new M2msecError('ERR_UNAUTHENTICATED', 'Digest authentication failed')

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'latin1')
  const y = Buffer.from(b, 'latin1')
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * @example
 * ```ts
 * const gba = createEstGbaAuthenticator(gbaDeps, zn, { nafFqdn: 'est.acme.example', nonceTtlMs: 300_000 })
 * const pki = await createPkiComponent({ config: config.pki, nc, kms, log, gba })
 * ```
 */
export function createEstGbaAuthenticator(deps: GbaDeps, zn: ZnOperations, opts: EstGbaOptions): EstGbaAuthenticator {
  const realm = `${GBA_REALM_PREFIX}${opts.nafFqdn}`
  const cacheMax = opts.cacheMax ?? 10_000
  const cache = new Map<string, CachedHa1>()
  let recipient: Promise<{ privateKey: GenerateKeyPairResult['privateKey']; publicJwk: string }> | undefined

  const recipientKey = () => {
    recipient ??= generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' }).then(async ({ privateKey, publicKey }) => ({
      privateKey,
      publicJwk: JSON.stringify(await exportJWK(publicKey)),
    }))
    return recipient
  }

  // B-TIDs this BSF makes: base64(16-byte RAND) "@" bsfHost. Anything else is refused before
  // any lookup or audit record, so junk usernames cost nothing and store nothing.
  const btidSuffix = `@${deps.settings.bsfHost}`
  const isOurBtid = (btid: string) =>
    btid.endsWith(btidSuffix) && /^[A-Za-z0-9+/]{22}==$/.test(btid.slice(0, -btidSuffix.length))

  /** The session's IMPI and the names its subscriber may enrol, or `failed()`. */
  const enrolee = async (tenant: string, btid: string): Promise<{ impi: string; names: SubjectNames }> => {
    const session = await deps.stores.sessions.get(gbaKey(btid))
    if (
      session === undefined ||
      session.value.tenant !== tenant ||
      Date.parse(session.value.expiresAt) <= deps.clock.now().getTime()
    ) {
      throw failed()
    }
    const impi = session.value.impi
    const subscriber = await deps.stores.subscribers.get(gbaKey(impi))
    const names = subscriber?.value.tenant === tenant ? subscriber.value.enrolmentNames : undefined
    // Checked before Ks_NAF is derived: a subscriber without names never causes an export.
    if (names === undefined) {
      throw new M2msecError('ERR_PERMISSION_DENIED', 'this subscriber has no names to enrol over EST with GBA')
    }
    return { impi, names }
  }

  const ha1For = async (tenant: string, btid: string): Promise<string> => {
    const now = deps.clock.now().getTime()
    const cacheKey = `${tenant}\n${btid}`
    const hit = cache.get(cacheKey)
    if (hit !== undefined && hit.expiresAt > now) return hit.ha1
    cache.delete(cacheKey)
    const { privateKey, publicJwk } = await recipientKey()
    let key
    try {
      key = await zn.serviceNafKey(tenant, EST_NAF_PRINCIPAL, {
        btid,
        nafFqdn: opts.nafFqdn,
        uaProtocolId: UA_PROTOCOL_ID.httpDigest,
        recipientPublicJwk: publicJwk,
      })
    } catch (err) {
      // Whatever the session's state (expired meanwhile, a Ks that cannot give exportable
      // keys): the same answer as a wrong password. Outages stay outages.
      if (isM2msecError(err) && err.status !== 'UNAVAILABLE' && err.status !== 'INTERNAL') throw failed()
      throw err
    }
    const { plaintext } = await compactDecrypt(key.wrappedKey ?? '', privateKey)
    // A view, not a copy: the only copy of Ks_NAF is zeroed right after.
    const password = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString('base64')
    plaintext.fill(0)
    const entry = { ha1: digestHa1(btid, realm, password), expiresAt: key.expiresAt.getTime() }
    if (cache.size >= cacheMax) cache.delete(cache.keys().next().value ?? '')
    cache.set(cacheKey, entry)
    return entry.ha1
  }

  const consumeNonce = async (tenant: string, nonce: string): Promise<void> => {
    const key = gbaKey(nonce)
    const found = await deps.stores.estNonces.get(key)
    if (found === undefined || found.value.tenant !== tenant || found.value.expiresAt <= deps.clock.now().getTime()) {
      throw new M2msecError('ERR_UNAUTHENTICATED', 'unknown, expired or used nonce: answer a new challenge')
    }
    try {
      await deps.stores.estNonces.delete(key, found.revision)
    } catch (err) {
      if (isM2msecError(err) && err.code === 'ERR_REVISION_CONFLICT') {
        throw new M2msecError('ERR_REPLAY', 'this nonce was used already')
      }
      throw err
    }
  }

  const checkShape = (c: DigestCredentials, uri: string): void => {
    if (c.algorithm !== undefined && c.algorithm !== 'MD5') {
      throw new M2msecError('ERR_UNAUTHENTICATED', 'GBA enrolment uses Digest algorithm MD5')
    }
    if (c.qop === undefined || c.nc === undefined || c.cnonce === undefined) {
      throw new M2msecError('ERR_UNAUTHENTICATED', 'GBA enrolment needs qop auth or auth-int')
    }
    if (c.realm !== realm) throw new M2msecError('ERR_UNAUTHENTICATED', 'wrong realm')
    if (c.uri !== uri) throw new M2msecError('ERR_UNAUTHENTICATED', 'the Digest uri is not the request target')
    // Our nonces are exactly 24 base64url characters; nothing else reaches the store.
    if (!NONCE_RE.test(c.nonce)) {
      throw new M2msecError('ERR_UNAUTHENTICATED', 'unknown, expired or used nonce: answer a new challenge')
    }
    if (!isOurBtid(c.username)) throw failed()
  }

  return {
    async challenge(tenant) {
      const nonce = Buffer.from(deps.randomBytes(18)).toString('base64url')
      const expiresAt = deps.clock.now().getTime() + opts.nonceTtlMs
      await deps.stores.estNonces.create(gbaKey(nonce), { tenant, expiresAt })
      return [formatWwwAuthenticate({ realm, nonce, algorithm: 'MD5', qop: ['auth', 'auth-int'] })]
    },

    async verify(request) {
      let c: DigestCredentials
      try {
        c = parseAuthorization(request.authorization)
      } catch (err) {
        throw new M2msecError('ERR_UNAUTHENTICATED', 'malformed Digest Authorization header', {}, { cause: err })
      }
      checkShape(c, request.uri)
      // Audited only from here: the request named a nonce we issued and a well-formed B-TID.
      await consumeNonce(request.tenant, c.nonce)
      const entry = {
        tenant: request.tenant,
        principal: EST_NAF_PRINCIPAL,
        action: 'bootstrap.EstGbaAuthenticate',
        resource: `btid/${c.username}`,
      }
      return audited(deps, entry, async () => {
        const { impi, names } = await enrolee(request.tenant, c.username)
        const expected = computeResponseWithHa1({
          ha1: await ha1For(request.tenant, c.username),
          username: c.username,
          realm,
          method: request.method,
          uri: c.uri,
          nonce: c.nonce,
          qop: c.qop,
          nc: c.nc,
          cnonce: c.cnonce,
          body: request.body,
        })
        if (!sameHex(expected, c.response)) throw failed()
        return { identity: impi, allowed: names }
      })
    },
  }
}
