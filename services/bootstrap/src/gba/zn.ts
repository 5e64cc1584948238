/**
 * Zn (TS 33.220 §4.5.3, §4.5.4): a NAF asks for Ks_(ext)_NAF by B-TID and NAF_Id.
 *
 * Ks_NAF = KDF(Ks, FC 0x01, "gba-me", RAND, IMPI, NAF_Id) (Annex B.3) runs inside the KMS
 * (DeriveKey KDF_3GPP on the session's Ks handle): the BSF never holds Ks or Ks_NAF.
 * - KEY_HANDLE: a KMS key whose usage policy lets the calling NAF MAC, VERIFY_MAC and DERIVE;
 *   its id is a hash of (tenant, B-TID, NAF_Id, caller), so asking twice gives the same key.
 *   It is destroyed with the session.
 * - WRAPPED (an external NAF, where the policy allows): an exportable derived key that only
 *   the BSF may EXPORT, wrapped for the caller's public JWK, then scheduled for destruction.
 *
 * The same path gives the oneM2M GBA RSPF credentials (TS-0003 §8.3.2.3): Km (target a MAF) or
 * Kpsa (target a CSE) = Ks_NAF for the target's FQDN; KmID = KpsaID = KeID = B-TID.
 */
import { createHash } from 'node:crypto'
import type { Versioned } from '@m2msec/bus'
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { base64ToBytes, bytesToHex, GBA_FC, nafId, uaTlsPskProtocolId, utf8Nfkc } from '@m2msec/crypto'
import { gbaKey, type SessionRecord } from '../store/gba-stores.ts'
import type { NafRule } from '../config.ts'
import { audited, retireKeyInBackground, type GbaCaller, type GbaDeps } from './context.ts'

/** How the key is handed over. */
export type NafKeyDelivery = 'KEY_HANDLE' | 'WRAPPED'

/** GetNafKey input. */
export interface NafKeyRequest {
  readonly btid: string
  readonly nafFqdn: string
  readonly uaProtocolId: Uint8Array
  readonly delivery: NafKeyDelivery
  /** With WRAPPED: the recipient's P-256 public JWK (JSON). */
  readonly recipientPublicJwk?: string
}

/** A NAF key and its session. */
export interface NafKeyResult {
  readonly keyId?: string
  readonly wrappedKey?: string
  readonly btid: string
  readonly impi: string
  readonly bootstrappedAt: Date
  readonly expiresAt: Date
}

/** oneM2M RSPF target kinds. */
export type RspfTarget = 'MAF' | 'CSE'

/** The Zn operations. */
export interface ZnOperations {
  getNafKey(caller: GbaCaller, req: NafKeyRequest): Promise<NafKeyResult>
  getRspfCredential(
    caller: GbaCaller,
    req: Omit<NafKeyRequest, 'nafFqdn' | 'uaProtocolId'> & {
      target: RspfTarget
      targetFqdn: string
      uaProtocolId?: Uint8Array
    },
  ): Promise<NafKeyResult & { keyIdentifier: string; target: RspfTarget }>
  /**
   * Ks_NAF for a NAF that is part of this service (the EST endpoint, GBA enrolment): wrapped
   * for `recipientPublicJwk` and without the Zn rules, which govern outside NAFs. Audited as
   * `principal`.
   */
  serviceNafKey(
    tenant: string,
    principal: string,
    req: Omit<NafKeyRequest, 'delivery' | 'recipientPublicJwk'> & { recipientPublicJwk: string },
  ): Promise<NafKeyResult>
}

/**
 * Ua security protocol id used for RSPF credentials when none is given: TS 33.222 shared-key
 * TLS with TLS_PSK_WITH_AES_128_CBC_SHA256 (0x00AE), oneM2M's mandatory PSK suite. TS-0003
 * names no Ua id: this is a project assumption (docs/gba-ub.md).
 */
export const DEFAULT_RSPF_UA_PROTOCOL_ID = uaTlsPskProtocolId(0x00ae)

const FQDN_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/

function principalMatches(entry: string, caller: GbaCaller): boolean {
  if (entry === '*') return true
  if (entry.startsWith('role:')) return caller.roles.includes(entry.slice(5))
  return entry === caller.id
}

function fqdnMatches(pattern: string, fqdn: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, '')
  const f = fqdn.toLowerCase().replace(/\.$/, '')
  if (p.startsWith('*.')) return f.endsWith(p.slice(1)) && f.length > p.length - 1
  return p === f
}

/**
 * Whether the Zn policy lets `caller` have keys for `fqdn` (and wrapped ones when asked).
 *
 * @example
 * ```ts
 * nafAuthorized([{ principal: 'role:naf', fqdns: ['*.example.com'], allowWrapped: false }], caller, 'naf.example.com', false)
 * ```
 */
export function nafAuthorized(rules: readonly NafRule[], caller: GbaCaller, fqdn: string, wrapped: boolean): boolean {
  return rules.some(
    (r) =>
      (r.tenant === undefined || r.tenant === caller.tenant) &&
      principalMatches(r.principal, caller) &&
      r.fqdns.some((p) => fqdnMatches(p, fqdn)) &&
      (!wrapped || r.allowWrapped),
  )
}

/**
 * @example
 * ```ts
 * const zn = createZnOperations(deps)
 * const k = await zn.getNafKey(naf, { btid, nafFqdn: 'naf.example.com', uaProtocolId: UA_PROTOCOL_ID.httpDigest, delivery: 'KEY_HANDLE' })
 * ```
 */
export function createZnOperations(deps: GbaDeps): ZnOperations {
  const { settings } = deps

  const session = async (caller: GbaCaller, btid: string) => {
    const found = await deps.stores.sessions.get(gbaKey(btid))
    if (found === undefined || found.value.tenant !== caller.tenant) {
      throw new M2msecError('ERR_NOT_FOUND', 'unknown B-TID')
    }
    if (Date.parse(found.value.expiresAt) <= deps.clock.now().getTime()) {
      throw new M2msecError('ERR_FAILED_PRECONDITION', 'the bootstrapping session has expired', {
        reason: 'BTID_EXPIRED',
      })
    }
    return found
  }

  // The session lists its Ks_NAF handles so they are destroyed with it. One revision-checked
  // write on the record just read (no second read); a concurrent writer makes it re-read.
  const recordNafKey = async (stored: Versioned<SessionRecord>, keyId: string): Promise<void> => {
    if (stored.value.nafKeyIds.includes(keyId)) return
    const key = gbaKey(stored.value.btid)
    try {
      await deps.stores.sessions.update(
        key,
        { ...stored.value, nafKeyIds: [...stored.value.nafKeyIds, keyId] },
        stored.revision,
      )
      return
    } catch (err) {
      if (!(err instanceof M2msecError && err.code === 'ERR_REVISION_CONFLICT')) throw err
    }
    await deps.stores.sessions.modify(key, (current) => {
      if (current === undefined) throw new M2msecError('ERR_NOT_FOUND', 'unknown B-TID')
      return current.nafKeyIds.includes(keyId) ? current : { ...current, nafKeyIds: [...current.nafKeyIds, keyId] }
    })
  }

  const derive = async (caller: GbaCaller, req: NafKeyRequest, checkRules = true): Promise<NafKeyResult> => {
    if (typeof req.btid !== 'string' || req.btid.length === 0 || req.btid.length > 512) {
      throw invalidArgument('btid is required', { field: 'btid' })
    }
    if (!FQDN_RE.test(req.nafFqdn)) throw invalidArgument('naf_fqdn must be a DNS name', { field: 'naf_fqdn' })
    if (req.uaProtocolId.length !== 5) {
      throw invalidArgument('ua_protocol_id must be 5 bytes', { field: 'ua_protocol_id' })
    }
    const wrapped = req.delivery === 'WRAPPED'
    if (wrapped && (req.recipientPublicJwk === undefined || req.recipientPublicJwk === '')) {
      throw invalidArgument('WRAPPED needs recipient_public_jwk', { field: 'recipient_public_jwk' })
    }
    if (checkRules && !nafAuthorized(settings.nafRules, caller, req.nafFqdn, wrapped)) {
      throw new M2msecError(
        'ERR_PERMISSION_DENIED',
        wrapped ? 'this NAF may not receive wrapped keys for this FQDN' : 'this NAF may not ask for this FQDN',
      )
    }
    const stored = await session(caller, req.btid)
    const s: SessionRecord = stored.value
    const id = nafId(req.nafFqdn, req.uaProtocolId) // as given: the UE derives from the same bytes
    const params = [utf8Nfkc('gba-me'), base64ToBytes(s.rand), utf8Nfkc(s.impi), id]
    const meta = {
      btid: s.btid,
      impi: s.impi,
      bootstrappedAt: new Date(s.bootstrappedAt),
      expiresAt: new Date(s.expiresAt),
    }
    const hash = createHash('sha256')
      .update([caller.tenant, s.btid, bytesToHex(id), caller.id, wrapped ? 'wrapped' : 'handle'].join('\0'))
      .digest('hex')
    if (!wrapped) {
      const keyId = `gbanaf-${hash.slice(0, 40)}`
      try {
        await deps.kms.deriveKey(s.tenant, {
          baseKeyId: s.ksKeyId,
          fc: GBA_FC,
          params,
          keyId,
          exportable: false,
          usagePolicy: [{ principals: [caller.id], operations: ['MAC', 'VERIFY_MAC', 'DERIVE'] }],
          labels: { 'gba.naf': req.nafFqdn.toLowerCase() },
        })
      } catch (err) {
        // Asked before: the same key (same session, NAF_Id and caller) already exists.
        if (!(err instanceof M2msecError && err.code === 'ERR_ALREADY_EXISTS')) throw err
        return { keyId, ...meta }
      }
      await recordNafKey(stored, keyId)
      return { keyId, ...meta }
    }
    const keyId = `gbanafx-${hash.slice(0, 32)}-${bytesToHex(deps.randomBytes(4))}`
    await deps.kms.deriveKey(s.tenant, {
      baseKeyId: s.ksKeyId,
      fc: GBA_FC,
      params,
      keyId,
      exportable: true,
      usagePolicy: [{ principals: [settings.kmsPrincipal], operations: ['EXPORT'] }],
      labels: { 'gba.naf': req.nafFqdn.toLowerCase() },
    })
    try {
      // Listed with the session too, so the sweeper destroys it should the scheduling below fail.
      await recordNafKey(stored, keyId)
      const wrappedKey = await deps.kms.wrapKeyForJwk(s.tenant, keyId, req.recipientPublicJwk ?? '')
      return { wrappedKey, ...meta }
    } finally {
      retireKeyInBackground(deps, s.tenant, keyId)
    }
  }

  const base = (caller: GbaCaller, action: string, btid: string, naf: string, delivery: NafKeyDelivery) => ({
    tenant: caller.tenant,
    principal: caller.id,
    action: `bootstrap.${action}`,
    resource: `btid/${btid}`,
    details: { naf, delivery },
  })

  return {
    getNafKey(caller, req) {
      return audited(deps, base(caller, 'GetNafKey', req.btid, req.nafFqdn, req.delivery), () => derive(caller, req))
    },
    getRspfCredential(caller, req) {
      return audited(
        deps,
        { ...base(caller, 'GetRspfCredential', req.btid, req.targetFqdn, req.delivery) },
        async () => {
          if (req.target !== 'MAF' && req.target !== 'CSE') {
            throw invalidArgument('target must be MAF or CSE', { field: 'target' })
          }
          const ua =
            req.uaProtocolId === undefined || req.uaProtocolId.length === 0
              ? DEFAULT_RSPF_UA_PROTOCOL_ID
              : req.uaProtocolId
          const key = await derive(caller, { ...req, nafFqdn: req.targetFqdn, uaProtocolId: ua })
          return { ...key, keyIdentifier: key.btid, target: req.target }
        },
      )
    },
    serviceNafKey(tenant, principal, req) {
      const caller: GbaCaller = { tenant, id: principal, roles: [] }
      return audited(deps, base(caller, 'GetNafKey', req.btid, req.nafFqdn, 'WRAPPED'), () =>
        derive(caller, { ...req, delivery: 'WRAPPED' }, false),
      )
    },
  }
}
