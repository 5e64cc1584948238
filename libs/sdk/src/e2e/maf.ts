/**
 * Keys distributed by the MAF (TS-0003 §8.8; authn `RegisterMafKey` / `RetrieveMafKey`) turned
 * into ESPrim and ESData keys. authn returns the 32-byte key (Kc) to the source at registration
 * and to each target at retrieval, every time as a JWE (`ECDH-ES+A256KW`, `A256GCM`) for the
 * caller's own P-256 public key: only the caller's private key opens it.
 *
 * Roles (TS-0003 table 8.8.1-1): for ESPrim (suid 33) the MAF source is the originator and
 * its single target the receiver; for ESData (suid 34) the source protects and the 1..n
 * targets open.
 *
 * Key splitting (§8.8.1, docs/authn.md): a protocol that needs one key uses the first half of
 * the distributed key. pairwiseESPrimKey and an ESData key-wrap key are one key each, so both
 * are the first 16 bytes of Kc (ESData then uses `A128KW`). TS-0003 also names a derivation of
 * pairwiseESPrimKey from Kc "and a reserved string"; that string is not in our digest of the
 * specification, so it is not used (docs/e2e-protection.md §7.1).
 */
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { decryptEsData } from './esdata.ts'
import type { EsprimPairwiseKey } from './esprim.ts'
import type { EcKey } from './provisioning.ts'

/** Length of a MAF-distributed key (Kc) as authn generates it. */
export const MAF_KEY_LENGTH = 32

/** Security usage identifiers of MAF-distributed keys (TS-0004 `m2m:suid` 32..35). */
export const MAF_SUID = Object.freeze({ saef: 32, esprim: 33, esdataEncryption: 34, esdataSignature: 35 })

/** Largest wrapped key accepted (a P-256 ECDH-ES JWE of 32 bytes is about 400 characters). */
const MAX_WRAPPED_LENGTH = 4096

/**
 * The fields of a `RegisterMafKeyResponse` / `RetrieveMafKeyResponse` read here; the generated
 * types of `@m2msec/proto/authn/v1` fit it.
 */
export interface MafKeyResponse {
  readonly key?:
    | {
        readonly keyIdentifier: string
        readonly sourceClientId: string
        readonly suid: number
        readonly targetIds: readonly string[]
        readonly expirationTime?: Date | undefined
      }
    | undefined
  /** JWE compact (`ECDH-ES+A256KW`, `A256GCM`) of the 32 key bytes. */
  readonly wrappedKey: string
}

/** An opened MAF key. */
export interface MafKey {
  /** `<RelativeKeyID>@<MAF-FQDN>` (TS-0003 §10.3.5): the `kid` of the ESPrim / ESData objects. */
  readonly keyIdentifier: string
  /** The MAF client that registered the key (authenticated by the MAF). */
  readonly sourceClientId: string
  readonly suid: number
  readonly targetIds: readonly string[]
  /** ms since the epoch; absent when the response had no expiration time. */
  readonly expiresAt?: number
  /** Kc, {@link MAF_KEY_LENGTH} bytes. */
  readonly key: Uint8Array
}

/**
 * Opens a MAF key response with the private key whose public JWK was sent as
 * `recipient_public_jwk`. Errors: ERR_INVALID_ARGUMENT (no registration in the response, a
 * JWE outside `ECDH-ES+A256KW`/`A256GCM`, or a key that is not 32 bytes), ERR_CIPHERTEXT_INVALID
 * (another private key, or modified bytes), ERR_PAYLOAD_TOO_LARGE.
 *
 * @example
 * ```ts
 * const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
 * const res = await authn.retrieveMafKey({ keyIdentifier, recipientPublicJwk: JSON.stringify(await exportJWK(publicKey)) }, call)
 * const maf = await openMafKey(res, privateKey)
 * ```
 */
export async function openMafKey(response: MafKeyResponse, privateKey: EcKey): Promise<MafKey> {
  const meta = response.key
  if (meta === undefined || meta.keyIdentifier.length === 0) {
    throw invalidArgument('the MAF response carries no key registration', { field: 'key' })
  }
  const { plaintext } = await decryptEsData(response.wrappedKey, {
    keys: [{ key: privateKey, alg: 'ECDH-ES+A256KW' }],
    algorithms: ['ECDH-ES+A256KW'],
    encryptions: ['A256GCM'],
    maxLength: MAX_WRAPPED_LENGTH,
  })
  if (plaintext.length !== MAF_KEY_LENGTH) {
    throw invalidArgument(`a MAF key has ${MAF_KEY_LENGTH} bytes`, { field: 'wrapped_key' })
  }
  const expiresAt = meta.expirationTime?.getTime()
  return {
    keyIdentifier: meta.keyIdentifier,
    sourceClientId: meta.sourceClientId,
    suid: meta.suid,
    targetIds: [...meta.targetIds],
    ...(expiresAt === undefined ? {} : { expiresAt }),
    key: plaintext,
  }
}

function requireSuid(maf: MafKey, suid: number, what: string): void {
  if (maf.suid !== suid) {
    throw new M2msecError('ERR_KEY_TYPE_MISMATCH', `a MAF key of suid ${maf.suid} is not a ${what} key`, {
      suid: maf.suid,
      expected: suid,
    })
  }
}

/** pairwiseESPrimKey and its ID from a MAF key (see {@link esprimKeyFromMaf}). */
export interface MafEsprimKey extends EsprimPairwiseKey {
  /** pairwiseESPrimKeyID = the MAF key identifier. */
  readonly keyId: string
}

/**
 * The pairwiseESPrimKey of a MAF key of suid 33: the first 16 bytes of Kc, the key identifier
 * as `kid`, the MAF's expiry, and the source client as the only originator (`fr`) the receiver
 * accepts under it. The originator passes `keyId`/`key` to `createEsprimOriginator`; the
 * receiver returns the object from its `pairwiseKey` lookup. ERR_KEY_TYPE_MISMATCH for another suid.
 *
 * @example
 * ```ts
 * const k = esprimKeyFromMaf(await openMafKey(res, privateKey))
 * const rx = createEsprimReceiver({ pairwiseKey: (kid) => (kid === k.keyId ? k : undefined), random: randomBytes, now: Date.now })
 * ```
 */
export function esprimKeyFromMaf(maf: MafKey): MafEsprimKey {
  requireSuid(maf, MAF_SUID.esprim, 'ESPrim')
  return {
    keyId: maf.keyIdentifier,
    key: maf.key.slice(0, MAF_KEY_LENGTH / 2),
    originatorId: maf.sourceClientId,
    ...(maf.expiresAt === undefined ? {} : { expiresAt: maf.expiresAt }),
  }
}

/** An ESData key-wrap key from a MAF key; usable as an `EsDataRecipient` and as an `EsDataKey`. */
export interface MafEsdataKey {
  readonly alg: 'A128KW'
  readonly kid: string
  readonly key: Uint8Array
}

/**
 * The ESData key-wrap key of a MAF key of suid 34: `A128KW` with the first 16 bytes of Kc,
 * `kid` = the key identifier. ERR_KEY_TYPE_MISMATCH for another suid.
 *
 * @example
 * ```ts
 * const k = esdataKeyFromMaf(maf)
 * const jwe = await encryptEsData(data, { serialization: 'json', recipients: [k, other] })
 * const { plaintext } = await decryptEsData(jwe, { keys: [k] })
 * ```
 */
export function esdataKeyFromMaf(maf: MafKey): MafEsdataKey {
  requireSuid(maf, MAF_SUID.esdataEncryption, 'ESData encryption')
  return { alg: 'A128KW', kid: maf.keyIdentifier, key: maf.key.slice(0, MAF_KEY_LENGTH / 2) }
}
