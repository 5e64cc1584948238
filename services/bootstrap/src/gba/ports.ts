/**
 * What the GBA part of the bootstrap service needs from the outside: the KMS (the home
 * environment's secure environment), the three KV stores, the audit sink, a clock and
 * randomness. The real adapters are in ../kms and ../store; tests may pass fakes.
 */
import type { AuditEntry } from '@m2msec/bus'

/** Milenage outputs the BSF receives: never CK or IK (Ks stays in the KMS). */
export interface MilenageVector {
  macA: Uint8Array
  macS: Uint8Array
  res: Uint8Array
  ak: Uint8Array
  akStar: Uint8Array
}

/** The KMS operations of the BSF, each in the tenant named. Errors are the KMS's M2msecErrors. */
export interface GbaKms {
  /** Milenage keeping Ks = CK || IK as the new HMAC_SHA256 key `ksKeyId` (usage: DERIVE by the BSF). */
  milenageKeepKs(
    tenant: string,
    req: { keyId: string; rand: Uint8Array; sqn: Uint8Array; amf: Uint8Array; ksKeyId: string; exportable: boolean },
  ): Promise<MilenageVector>
  /** Milenage without CK/IK and without a new key (resynchronisation: AK*, MAC-S). */
  milenage(
    tenant: string,
    req: { keyId: string; rand: Uint8Array; sqn: Uint8Array; amf: Uint8Array },
  ): Promise<MilenageVector>
  /** The 3GPP KDF into a new HMAC_SHA256 key. */
  deriveKey(
    tenant: string,
    req: {
      baseKeyId: string
      fc: number
      params: Uint8Array[]
      keyId: string
      exportable: boolean
      usagePolicy: Array<{ principals: string[]; operations: Array<'MAC' | 'VERIFY_MAC' | 'DERIVE' | 'EXPORT'> }>
      labels: Record<string, string>
    },
  ): Promise<void>
  /** WrapKey of an exportable key to an external P-256 public JWK (JWE compact). */
  wrapKeyForJwk(tenant: string, keyId: string, publicJwk: string): Promise<string>
  /** ImportKey of K||OPc as a MILENAGE key; returns its id. */
  importMilenageKey(
    tenant: string,
    req: { wrappedKey: string; unwrappingKeyId: string; keyId: string },
  ): Promise<string>
  /** The algorithm of a key (checks that it exists and is visible). */
  keyAlgorithm(tenant: string, keyId: string): Promise<string>
  /** SetKeyState DESTRUCTION_SCHEDULED at `after` (at least one minute ahead). */
  scheduleDestruction(tenant: string, keyId: string, after: Date): Promise<void>
}

/** The audit port (`append` resolves once stored; ERR_AUDIT_UNAVAILABLE otherwise). */
export interface GbaAudit {
  append(entry: AuditEntry): Promise<void>
}
