/**
 * Certificate revocation of certificate credentials, by OCSP (RFC 6960) and by CRL (RFC 5280
 * §6.3, simplified). The bootstrap service's PKI writes both pointers (AIA OCSP URL, CRL
 * distribution point) into every certificate it issues (docs/pki-est.md).
 *
 * - **OCSP**: the responder of the leaf's AIA OCSP URL is asked (POST) about the leaf; the
 *   answer is checked in ./ocsp.ts (signed by the issuer or its delegated OCSP signer, names
 *   the leaf, current). good and revoked decide; unknown, an unreachable responder or a bad
 *   answer give no answer.
 * - **CRL**: the CRL named by the leaf's http(s) distribution point, signed by the leaf's
 *   issuer, current (thisUpdate not in the future, nextUpdate not passed), must not list the
 *   leaf's serial. A CRL that cannot be fetched, parsed or verified gives no answer.
 *
 * {@link createCertificateRevocation} asks the preferred source first and the other when the
 * first has no answer or no pointer. Fail closed: when a pointer exists but no source
 * answered, the credential is refused with ERR_UNAVAILABLE. A leaf with neither pointer is not
 * checked (documented in docs/authn.md). Answers are cached (CRLs per URL and issuer, OCSP
 * good/revoked per CertID) for `cacheMs`, never beyond their nextUpdate, so a revocation is
 * seen within `cacheMs`.
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { OcspProblem, buildOcspQuery, ocspUrls, verifyOcspResponse } from './ocsp.ts'
import type { CertificateRevocation, Clock } from './ports.ts'

const CRL_DP_OID = '2.5.29.31'
/** Tolerated clock skew on the CRL's thisUpdate. */
const SKEW_MS = 5 * 60_000
/** Cached CRLs at most (oldest dropped first). */
const MAX_CACHED = 256
/** Cached OCSP answers at most (oldest dropped first). */
const MAX_CACHED_OCSP = 10_000

/**
 * What one source learnt about a certificate: `none` = the certificate has no pointer this
 * source uses. A source throws ERR_UNAVAILABLE when a pointer exists but gives no answer.
 */
export type RevocationVerdict = 'good' | 'revoked' | 'none'

/** One way of learning revocation status (OCSP or CRL). */
export interface RevocationSource {
  status(leaf: x509.X509Certificate, issuer: x509.X509Certificate): Promise<RevocationVerdict>
}

/** Options of {@link createCrlRevocation}. */
export interface CrlRevocationOptions {
  /** Fetches the DER CRL at `url` (the adapter bounds size and time); throws when it cannot. */
  readonly fetchCrl: (url: string) => Promise<Uint8Array>
  readonly clock: Clock
  /** How long a fetched CRL is used before it is fetched again, ms (0 = every check). */
  readonly cacheMs: number
  /** URL prefixes a distribution point must start with; empty = any http(s) URL. */
  readonly allowedUrlPrefixes: readonly string[]
}

interface CachedCrl {
  readonly crl: x509.X509Crl
  readonly until: number
}

function unavailable(message: string, cause?: unknown): M2msecError {
  return new M2msecError('ERR_UNAVAILABLE', message, {}, cause === undefined ? undefined : { cause })
}

/** The http(s) URIs of the certificate's CRL distribution points. */
export function crlDistributionUrls(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(CRL_DP_OID)
  if (ext === null) return []
  const dp = new x509.CRLDistributionPointsExtension(ext.rawData)
  const urls: string[] = []
  for (const point of dp.distributionPoints) {
    for (const name of point.distributionPoint?.fullName ?? []) {
      const uri = name.uniformResourceIdentifier
      if (uri !== undefined && /^https?:\/\//i.test(uri)) urls.push(uri)
    }
  }
  return urls
}

function revoked(): M2msecError {
  return new M2msecError('ERR_TOKEN_REVOKED', 'the certificate is revoked')
}

/**
 * The CRL source (see the module comment).
 *
 * @example
 * ```ts
 * const crl = createCrlSource({ fetchCrl, clock, cacheMs: 60_000, allowedUrlPrefixes: [] })
 * await crl.status(leaf, issuer) // 'good' | 'revoked' | 'none'
 * ```
 */
export function createCrlSource(opts: CrlRevocationOptions): RevocationSource {
  const cache = new Map<string, CachedCrl>()
  const inflight = new Map<string, Promise<x509.X509Crl>>()

  const allowed = (url: string) =>
    opts.allowedUrlPrefixes.length === 0 || opts.allowedUrlPrefixes.some((p) => url.startsWith(p))

  async function load(url: string, issuer: x509.X509Certificate): Promise<x509.X509Crl> {
    let der: Uint8Array
    try {
      der = await opts.fetchCrl(url)
    } catch (err) {
      throw unavailable('the certificate revocation list cannot be fetched', err)
    }
    let crl: x509.X509Crl
    try {
      crl = new x509.X509Crl(der.slice().buffer)
    } catch (err) {
      throw unavailable('the certificate revocation list is malformed', err)
    }
    let signed = false
    try {
      signed = crl.issuer === issuer.subject && (await crl.verify({ publicKey: issuer.publicKey }))
    } catch {
      signed = false
    }
    if (!signed) throw unavailable('the certificate revocation list is not signed by the certificate issuer')
    return crl
  }

  async function current(url: string, issuer: x509.X509Certificate): Promise<x509.X509Crl> {
    const key = `${url}\0${issuer.subject}\0${Buffer.from(issuer.publicKey.rawData).toString('base64')}`
    const now = opts.clock.now().getTime()
    const hit = cache.get(key)
    if (hit !== undefined && hit.until > now) return hit.crl
    let pending = inflight.get(key)
    if (pending === undefined) {
      pending = load(url, issuer).finally(() => inflight.delete(key))
      inflight.set(key, pending)
    }
    const crl = await pending
    const next = crl.nextUpdate?.getTime() ?? Number.POSITIVE_INFINITY
    if (crl.thisUpdate.getTime() > now + SKEW_MS || next <= now) {
      throw unavailable('the certificate revocation list is not current')
    }
    if (opts.cacheMs > 0) {
      cache.delete(key)
      cache.set(key, { crl, until: Math.min(now + opts.cacheMs, next) })
      if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value as string)
    }
    return crl
  }

  return {
    async status(leaf, issuer) {
      const urls = crlDistributionUrls(leaf)
      if (urls.length === 0) return 'none'
      const url = urls.find(allowed)
      if (url === undefined) throw unavailable('the certificate names no permitted CRL distribution point')
      const crl = await current(url, issuer)
      return crl.findRevoked(leaf) === null ? 'good' : 'revoked'
    },
  }
}

/**
 * Revocation by CRL only.
 *
 * @example
 * ```ts
 * const revocation = createCrlRevocation({ fetchCrl, clock, cacheMs: 30_000, allowedUrlPrefixes: [] })
 * await revocation.check(validated.leaf, validated.issuer) // throws ERR_TOKEN_REVOKED when listed
 * ```
 */
export function createCrlRevocation(opts: CrlRevocationOptions): CertificateRevocation {
  return createCertificateRevocation({ order: [createCrlSource(opts)] })
}

/** Options of {@link createOcspSource}. */
export interface OcspRevocationOptions {
  /** POSTs the DER OCSPRequest to `url` and returns the DER OCSPResponse; throws when it cannot. */
  readonly postOcsp: (url: string, request: Uint8Array) => Promise<Uint8Array>
  readonly clock: Clock
  /** Random bytes for the request nonce. */
  readonly random: (n: number) => Uint8Array
  /** How long a good or revoked answer is reused, ms (0 = ask every time); never beyond nextUpdate. */
  readonly cacheMs: number
  /** URL prefixes an OCSP URL must start with; empty = any http(s) URL. */
  readonly allowedUrlPrefixes: readonly string[]
}

/**
 * The OCSP source (see the module comment and ./ocsp.ts).
 *
 * @example
 * ```ts
 * const ocsp = createOcspSource({ postOcsp, clock, random: (n) => randomBytes(n), cacheMs: 60_000, allowedUrlPrefixes: [] })
 * await ocsp.status(leaf, issuer) // 'good' | 'revoked' | 'none'; ERR_UNAVAILABLE when unknown or unreachable
 * ```
 */
export function createOcspSource(opts: OcspRevocationOptions): RevocationSource {
  const cache = new Map<string, { verdict: 'good' | 'revoked'; until: number }>()
  const allowed = (url: string) =>
    opts.allowedUrlPrefixes.length === 0 || opts.allowedUrlPrefixes.some((p) => url.startsWith(p))

  return {
    async status(leaf, issuer) {
      const urls = ocspUrls(leaf)
      if (urls.length === 0) return 'none'
      const url = urls.find(allowed)
      if (url === undefined) throw unavailable('the certificate names no permitted OCSP responder')
      const query = buildOcspQuery(leaf, issuer, opts.random(16))
      const key = `${url}\0${query.key}`
      const hit = cache.get(key)
      if (hit !== undefined && hit.until > opts.clock.now().getTime()) return hit.verdict
      let der: Uint8Array
      try {
        der = await opts.postOcsp(url, query.der)
      } catch (err) {
        throw unavailable('the OCSP responder cannot be reached', err)
      }
      const now = opts.clock.now().getTime()
      let answer
      try {
        answer = verifyOcspResponse(der, query, issuer, now)
      } catch (err) {
        if (err instanceof OcspProblem) throw unavailable(err.message, err)
        throw err
      }
      if (answer.status === 'unknown') throw unavailable('the OCSP responder does not know the certificate')
      if (opts.cacheMs > 0) {
        cache.delete(key)
        cache.set(key, { verdict: answer.status, until: Math.min(now + opts.cacheMs, answer.nextUpdate ?? now) })
        if (cache.size > MAX_CACHED_OCSP) cache.delete(cache.keys().next().value as string)
      }
      return answer.status
    },
  }
}

/** Options of {@link createCertificateRevocation}. */
export interface CertificateRevocationOptions {
  /** The sources in the order they are asked; a later one only when the earlier have no answer. */
  readonly order: readonly RevocationSource[]
}

/**
 * Asks the sources in order: the first `good` accepts, the first `revoked` refuses with
 * ERR_TOKEN_REVOKED; a source without an answer (ERR_UNAVAILABLE) or without a pointer passes
 * to the next. When a pointer existed but nothing answered: the first ERR_UNAVAILABLE (fail
 * closed). When no source found a pointer: not checked.
 *
 * @example
 * ```ts
 * const revocation = createCertificateRevocation({ order: [ocsp, crl] }) // OCSP, then CRL
 * await revocation.check(leaf, issuer)
 * ```
 */
export function createCertificateRevocation(opts: CertificateRevocationOptions): CertificateRevocation {
  return {
    async check(leaf, issuer) {
      let failure: M2msecError | undefined
      for (const source of opts.order) {
        let verdict: RevocationVerdict
        try {
          verdict = await source.status(leaf, issuer)
        } catch (err) {
          if (!isM2msecError(err) || err.code !== 'ERR_UNAVAILABLE') throw err
          failure ??= err
          continue
        }
        if (verdict === 'good') return
        if (verdict === 'revoked') throw revoked()
      }
      if (failure !== undefined) throw failure
    },
  }
}
