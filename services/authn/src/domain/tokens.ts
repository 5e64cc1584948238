/**
 * Wire formats of what the token endpoint produces: JWS signing inputs, the server proof of
 * symmetric credentials, and the JWKS of a signing key. docs/authn.md has the same rules.
 */
import { base64url, type JWK } from 'jose'
import type { KmsKeyInfo } from './ports.ts'

/** The JWT `typ` of access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYP = 'at+jwt'
/** The JWT `typ` of server proofs of certificate credentials. */
export const SERVER_PROOF_TYP = 'm2msec-server-proof+jwt'
const PROOF_LABEL = 'm2msec-server-proof'

/** `base64url(JSON(header)) "." base64url(JSON(payload))`. */
export function jwsSigningInput(header: Readonly<Record<string, unknown>>, payload: Readonly<Record<string, unknown>>) {
  const enc = new TextEncoder()
  return `${base64url.encode(enc.encode(JSON.stringify(header)))}.${base64url.encode(enc.encode(JSON.stringify(payload)))}`
}

/**
 * The data the HMAC server proof covers: UTF-8 `m2msec-server-proof` 0x00 assertion-jti 0x00
 * access-token-jti. The NUL separators keep the encoding unambiguous (jtis are printable
 * ASCII).
 *
 * @example
 * ```ts
 * const expected = createHmac('sha256', key).update(serverProofInput(assertionJti, tokenJti)).digest('base64url')
 * ```
 */
export function serverProofInput(assertionJti: string, tokenJti: string): Uint8Array {
  return new Uint8Array(Buffer.from(`${PROOF_LABEL}\0${assertionJti}\0${tokenJti}`, 'utf8'))
}

/** The `kid` of a signing key version. */
export function signingKid(keyId: string, version: number): string {
  return `${keyId}/${version}`
}

/** Splits a `kid` made by {@link signingKid}; undefined when it has another shape. */
export function parseSigningKid(kid: unknown): { keyId: string; version: number } | undefined {
  if (typeof kid !== 'string') return undefined
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,127})\/([1-9][0-9]{0,8})$/.exec(kid)
  return m === null ? undefined : { keyId: m[1] as string, version: Number(m[2]) }
}

/**
 * The public JWKs of a signing key to publish at `now`: the primary version, and every older
 * version that is not destroyed and whose successor was created less than `retainSec` ago
 * (tokens it signed may still be valid). Each JWK gets `kid` `<keyId>/<version>`, `alg`
 * ES256 and `use` sig.
 */
export function publishedJwks(key: KmsKeyInfo, now: Date, retainSec: number): JWK[] {
  const out: JWK[] = []
  for (const v of key.versions) {
    if (v.destroyed || v.publicJwk === undefined || v.publicJwk === '') continue
    const successor = key.versions.find((x) => x.version === v.version + 1)
    const current = v.version === key.primaryVersion
    const retained = successor !== undefined && successor.createdAt.getTime() + retainSec * 1000 > now.getTime()
    if (!current && !retained) continue
    const jwk = JSON.parse(v.publicJwk) as JWK
    out.push({
      kty: jwk.kty,
      crv: jwk.crv,
      x: jwk.x,
      y: jwk.y,
      kid: signingKid(key.id, v.version),
      alg: 'ES256',
      use: 'sig',
    } as JWK)
  }
  return out
}
