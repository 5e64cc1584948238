/**
 * The DAS ports over real key sources: this service's own DAS identity per tenant (signing
 * and verification with the tenant's KMS key) and the external DAS servers each tenant trusts
 * (a JWKS file read at start, or a JWKS URL fetched and cached by jose).
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  base64url,
  createLocalJWKSet,
  createRemoteJWKSet,
  importJWK,
  type CompactVerifyGetKey,
  type JSONWebKeySet,
  type JWK,
} from 'jose'
import { M2msecError } from '@m2msec/errors'
import type { DasSigner, DasTrust, TrustedIssuer } from '../domain/ports.ts'
import type { DasKms, SigningKeyInfo } from '../kms/kms-client.ts'

/** This service as a tenant's DAS (config `das.issuers[]`). */
export interface OwnIssuerConfig {
  readonly tenant: string
  readonly issuer: string
  readonly keyId: string
  readonly maxLifetimeSec: number
}

/** An external DAS a tenant trusts (config `das.trusted[]`). */
export interface TrustedIssuerConfig {
  readonly tenant: string
  readonly issuer: string
  readonly jwksFile?: string | undefined
  readonly jwksUrl?: string | undefined
  readonly algorithms: readonly string[]
  readonly requireAudience: boolean
}

/** The signer, plus the verification key resolver of each tenant's own DAS identity. */
export interface KmsDasSigner extends DasSigner {
  verificationKey(tenant: string): CompactVerifyGetKey
}

function jwsInput(header: Readonly<Record<string, unknown>>, payload: Readonly<Record<string, unknown>>): string {
  const enc = (v: unknown) => base64url.encode(new TextEncoder().encode(JSON.stringify(v)))
  return `${enc(header)}.${enc(payload)}`
}

/**
 * Signs with, and verifies against, each tenant's DAS key in the KMS (`kid` = `<keyId>/<version>`).
 * Key metadata is cached for `cacheMs`; a `kid` with an unknown version reloads it once (a
 * rotation), a primary version that changed while signing signs again.
 */
export function createKmsDasSigner(
  issuers: readonly OwnIssuerConfig[],
  kms: DasKms,
  opts: { cacheMs: number; now?: () => number },
): KmsDasSigner {
  const byTenant = new Map(issuers.map((i) => [i.tenant, i]))
  const now = opts.now ?? Date.now
  const cache = new Map<string, { at: number; info: Promise<SigningKeyInfo> }>()
  const imported = new Map<string, Promise<Awaited<ReturnType<typeof importJWK>>>>()

  function config(tenant: string): OwnIssuerConfig {
    const c = byTenant.get(tenant)
    if (c === undefined)
      throw new M2msecError('ERR_FAILED_PRECONDITION', 'this service issues no tokens for the tenant')
    return c
  }

  function load(tenant: string, fresh = false): Promise<SigningKeyInfo> {
    const hit = cache.get(tenant)
    const t = now()
    if (!fresh && hit !== undefined && t - hit.at < opts.cacheMs) return hit.info
    const info = kms.ensureSigningKey(tenant, config(tenant).keyId)
    const entry = { at: t, info }
    cache.set(tenant, entry)
    info.catch(() => {
      if (cache.get(tenant) === entry) cache.delete(tenant)
    })
    return info
  }

  return {
    identity(tenant) {
      const c = byTenant.get(tenant)
      return c === undefined ? undefined : { issuer: c.issuer, maxLifetimeSec: c.maxLifetimeSec }
    },
    newTokenId: () => randomUUID(),
    async sign(tenant, header, payload) {
      let info = await load(tenant)
      for (let attempt = 0; attempt < 3; attempt++) {
        const input = jwsInput({ ...header, alg: 'ES256', kid: `${info.keyId}/${info.primaryVersion}` }, payload)
        const { signature, version } = await kms.sign(tenant, info.keyId, new TextEncoder().encode(input))
        if (version === info.primaryVersion) return `${input}.${base64url.encode(signature)}`
        info = await load(tenant, true)
      }
      throw new M2msecError('ERR_UNAVAILABLE', 'the DAS signing key changed during signing; retry')
    },
    verificationKey(tenant) {
      const keyId = config(tenant).keyId
      return async (header) => {
        const m = typeof header.kid === 'string' ? /^(.+)\/([1-9][0-9]{0,8})$/.exec(header.kid) : null
        if (m === null || m[1] !== keyId) throw new M2msecError('ERR_TOKEN_INVALID', 'unknown key id', { claim: 'kid' })
        const version = Number(m[2])
        let info = await load(tenant)
        if (!info.versions.some((v) => v.version === version)) info = await load(tenant, true)
        const jwk = info.versions.find((v) => v.version === version)?.publicJwk
        if (jwk === undefined) throw new M2msecError('ERR_TOKEN_INVALID', 'unknown key version', { claim: 'kid' })
        const cacheKey = `${tenant}\0${header.kid as string}`
        let key = imported.get(cacheKey)
        if (key === undefined) {
          key = importJWK(JSON.parse(jwk) as JWK, 'ES256')
          imported.set(cacheKey, key)
          key.catch(() => imported.delete(cacheKey))
        }
        return key
      }
    },
  }
}

function jwksOf(c: TrustedIssuerConfig): CompactVerifyGetKey {
  if (c.jwksFile !== undefined) {
    let jwks: JSONWebKeySet
    try {
      jwks = JSON.parse(readFileSync(c.jwksFile, 'utf8')) as JSONWebKeySet
      return createLocalJWKSet(jwks)
    } catch (err) {
      throw new M2msecError(
        'ERR_CONFIG_INVALID',
        `das.trusted: cannot read a JWKS from ${c.jwksFile}`,
        { path: c.jwksFile },
        { cause: err },
      )
    }
  }
  if (c.jwksUrl !== undefined) {
    return createRemoteJWKSet(new URL(c.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 })
  }
  throw new M2msecError('ERR_CONFIG_INVALID', 'das.trusted: jwksFile or jwksUrl is required')
}

/**
 * The issuers each tenant trusts: the configured external DAS servers and, for tenants this
 * service issues for, its own DAS identity (ES256, audience required).
 */
export function createDasTrust(
  trusted: readonly TrustedIssuerConfig[],
  own: { issuers: readonly OwnIssuerConfig[]; signer: KmsDasSigner } | undefined,
): DasTrust {
  const byTenant = new Map<string, Map<string, TrustedIssuer>>()
  const add = (tenant: string, t: TrustedIssuer) => {
    let m = byTenant.get(tenant)
    if (m === undefined) byTenant.set(tenant, (m = new Map()))
    m.set(t.issuer, t)
  }
  for (const c of trusted) {
    add(c.tenant, {
      issuer: c.issuer,
      algorithms: c.algorithms,
      requireAudience: c.requireAudience,
      key: jwksOf(c),
    })
  }
  for (const c of own?.issuers ?? []) {
    add(c.tenant, {
      issuer: c.issuer,
      algorithms: ['ES256'],
      requireAudience: true,
      key: (own as { signer: KmsDasSigner }).signer.verificationKey(c.tenant),
    })
  }
  return { issuer: (tenant, iss) => byTenant.get(tenant)?.get(iss) }
}
