import { loadKeyForUse } from '../access.ts'
import { audited } from '../audit.ts'
import { aadBinder, boundAad, encodeEnvelope, envelopeEncoder } from '../ciphertext.ts'
import { LIMITS, checkSize } from '../limits.ts'
import type { Caller, KeyRecord, KeyVersion } from '../model.ts'
import type { KmsDeps } from '../ports.ts'

/** Encrypts with an already authorized key version (shared by Encrypt and BatchEncrypt). */
export async function encryptWith(
  deps: KmsDeps,
  key: KeyRecord,
  version: KeyVersion,
  req: { plaintext: Uint8Array; aad: Uint8Array },
): Promise<{ ciphertext: Uint8Array; version: number }> {
  checkSize('plaintext', req.plaintext, LIMITS.plaintextBytes)
  checkSize('associated_data', req.aad, LIMITS.aadBytes)
  const sealed = await deps.ses
    .get(key.secureEnvironment)
    .encrypt(
      { ref: version.ref, algorithm: key.algorithm },
      req.plaintext,
      boundAad(key.tenant, key.id, version.version, req.aad),
    )
  return { ciphertext: encodeEnvelope({ keyId: key.id, version: version.version, sealed }), version: version.version }
}

/**
 * Encrypts many items (sizes already checked) with one authorized key version: through the
 * SE's `encryptMany` when it has one, else item by item. Returns the envelopes in order.
 */
export async function encryptManyWith(
  deps: KmsDeps,
  key: KeyRecord,
  version: KeyVersion,
  items: readonly { plaintext: Uint8Array; aad: Uint8Array }[],
): Promise<Uint8Array[]> {
  const se = deps.ses.get(key.secureEnvironment)
  const handle = { ref: version.ref, algorithm: key.algorithm }
  const bind = aadBinder(key.tenant, key.id, version.version)
  const bound = items.map((i) => ({ plaintext: i.plaintext, aad: bind(i.aad) }))
  const sealed =
    se.encryptMany === undefined
      ? await Promise.all(bound.map((i) => se.encrypt(handle, i.plaintext, i.aad)))
      : await se.encryptMany(handle, bound)
  return sealed.map(envelopeEncoder(key.id, version.version))
}

/** Encrypt: AES-256-GCM under the primary version; returns a self-describing envelope. */
export async function encrypt(
  deps: KmsDeps,
  caller: Caller,
  req: { keyId: string; plaintext: Uint8Array; aad: Uint8Array },
): Promise<{ ciphertext: Uint8Array; version: number }> {
  return audited(deps, caller, { action: 'kms.Encrypt', resource: `key/${req.keyId}` }, async () => {
    checkSize('plaintext', req.plaintext, LIMITS.plaintextBytes)
    checkSize('associated_data', req.aad, LIMITS.aadBytes)
    const { key, version } = await loadKeyForUse(deps, caller, req.keyId, 'ENCRYPT')
    return encryptWith(deps, key, version, req)
  })
}
