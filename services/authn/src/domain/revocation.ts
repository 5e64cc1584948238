/**
 * Certificate revocation by CRL (RFC 5280 §6.3, simplified): the CRL named by the leaf's CRL
 * distribution point (an http(s) URI), signed by the leaf's issuer, current (thisUpdate not
 * in the future, nextUpdate not passed), must not list the leaf's serial. The bootstrap
 * service's PKI writes such a distribution point into every certificate it issues
 * (`/pki/<tenant>/crl`, docs/pki-est.md).
 *
 * Fail closed: a leaf that names a distribution point whose CRL cannot be fetched, parsed or
 * verified is refused with ERR_UNAVAILABLE. A leaf without a distribution point is not
 * checked (documented in docs/authn.md). CRLs are cached per (URL, issuer) for `cacheMs`, never
 * beyond their nextUpdate, so a revocation is seen within `cacheMs`.
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { M2msecError } from '@m2msec/errors'
import type { CertificateRevocation, Clock } from './ports.ts'

const CRL_DP_OID = '2.5.29.31'
/** Tolerated clock skew on the CRL's thisUpdate. */
const SKEW_MS = 5 * 60_000
/** Cached CRLs at most (oldest dropped first). */
const MAX_CACHED = 256

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

/**
 * @example
 * ```ts
 * const revocation = createCrlRevocation({ fetchCrl, clock, cacheMs: 30_000, allowedUrlPrefixes: [] })
 * await revocation.check(validated.leaf, validated.issuer) // throws ERR_TOKEN_REVOKED when listed
 * ```
 */
export function createCrlRevocation(opts: CrlRevocationOptions): CertificateRevocation {
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
    async check(leaf, issuer) {
      const urls = crlDistributionUrls(leaf)
      if (urls.length === 0) return
      const url = urls.find(allowed)
      if (url === undefined) throw unavailable('the certificate names no permitted CRL distribution point')
      const crl = await current(url, issuer)
      if (crl.findRevoked(leaf) !== null) {
        throw new M2msecError('ERR_TOKEN_REVOKED', 'the certificate is revoked')
      }
    },
  }
}
