/**
 * The CRL and OCSP answers of a tenant's issuing CA, both signed by its KMS key. CRLs are
 * cached per tenant until a revocation (the CA's revocation counter) or half their validity
 * passes; the CRL number is the issue time in seconds, so it grows across replicas too.
 */
import { M2msecError } from '@m2msec/errors'
import { kvKey } from '@m2msec/bus'
import {
  buildCrl,
  buildOcspResponse,
  ocspErrorResponse,
  parseOcspRequest,
  type OcspStatus,
  type RevokedEntry,
} from '@m2msec/pki'
import { der, kmsSigner, loadCa } from './ca.ts'
import type { PkiContext } from './model.ts'

/** CRL and OCSP for every tenant, with a per-tenant CRL cache. */
export interface RevocationService {
  /** DER CRL of the tenant's issuing CA. ERR_NOT_FOUND without a CA. */
  crl(tenant: string): Promise<Uint8Array>
  /**
   * DER OCSPResponse for a DER OCSPRequest. Malformed requests and unknown tenants get the
   * unsigned malformedRequest / unauthorized responses (RFC 6960 §2.3), never an exception
   * for bad input.
   */
  ocsp(tenant: string, request: Uint8Array): Promise<Uint8Array>
}

/** Creates the revocation service over the PKI context. */
export function createRevocationService(ctx: PkiContext): RevocationService {
  const cache = new Map<string, { revocations: number; issuedAt: number; der: Uint8Array }>()

  async function revokedEntries(tenant: string): Promise<RevokedEntry[]> {
    const out: RevokedEntry[] = []
    let after: string | undefined
    for (;;) {
      const page = await ctx.store.revoked.list(kvKey(tenant), {
        limit: 1000,
        ...(after === undefined ? {} : { after }),
      })
      for (const { value } of page.items) {
        out.push({ serialHex: value.serial, revokedAt: new Date(value.revokedAt), reason: value.reason })
      }
      if (page.next === undefined) return out
      after = page.next
    }
  }

  return {
    async crl(tenant) {
      const ca = (await loadCa(ctx, tenant)).value
      const now = ctx.clock.now().getTime()
      const validityMs = ctx.settings.crlValiditySec * 1000
      const hit = cache.get(tenant)
      if (hit !== undefined && hit.revocations === ca.revocations && now - hit.issuedAt < validityMs / 2) return hit.der
      const thisUpdate = new Date(Math.floor(now / 1000) * 1000)
      const crl = await buildCrl(
        {
          issuerCertificate: der(ca.issuingCert),
          entries: await revokedEntries(tenant),
          crlNumber: Math.floor(now / 1000),
          thisUpdate,
          nextUpdate: new Date(thisUpdate.getTime() + validityMs),
        },
        kmsSigner(ctx, tenant, ca.issuingKeyId),
      )
      cache.set(tenant, { revocations: ca.revocations, issuedAt: now, der: crl })
      return crl
    },

    async ocsp(tenant, body) {
      let request
      try {
        request = parseOcspRequest(body)
      } catch {
        return ocspErrorResponse('malformedRequest')
      }
      let ca
      try {
        ca = (await loadCa(ctx, tenant)).value
      } catch (err) {
        if (err instanceof M2msecError && err.code === 'ERR_NOT_FOUND') return ocspErrorResponse('unauthorized')
        throw err
      }
      const now = ctx.clock.now()
      const statusOf = async (serial: string): Promise<OcspStatus> => {
        const found = await ctx.store.certs.get(kvKey(tenant, serial))
        if (found === undefined || found.value.tenant !== tenant) return { status: 'unknown' }
        const c = found.value
        return c.status === 'revoked'
          ? { status: 'revoked', revokedAt: new Date(c.revokedAt ?? c.issuedAt), reason: c.reason ?? 'unspecified' }
          : { status: 'good' }
      }
      return buildOcspResponse(
        {
          request,
          issuerCertificate: der(ca.issuingCert),
          statusOf,
          producedAt: now,
          nextUpdate: new Date(now.getTime() + ctx.settings.ocspValiditySec * 1000),
        },
        kmsSigner(ctx, tenant, ca.issuingKeyId),
      )
    },
  }
}
