/**
 * @m2msec/authn: the authentication service. Other services embed only the revocation set
 * (to refuse revoked tokens without a call) and, for their own configuration docs, nothing
 * else; they talk to authn over gRPC and fetch its keys from the JWKS endpoint.
 *
 * @example
 * ```ts
 * import { createRevocationSet } from '@m2msec/authn'
 * import { tokenAuthenticator } from '@m2msec/runtime'
 * const revoked = await createRevocationSet(nc)
 * const auth = tokenAuthenticator({ jwks: 'http://authn:7080/.well-known/jwks.json', issuer: 'm2msec-authn',
 *   audience: 'm2msec', isRevoked: (t) => revoked.isRevoked(t.tenant, t.jti) })
 * ```
 */
export {
  createRevocationSet,
  revocationSetOn,
  REVOCATION_BUCKET,
  type RevocationSet,
  type RevocationSetOptions,
} from './store/revocation-set.ts'
/** The record of a revoked token in the `authn-revoked` bucket. */
export type { RevokedToken } from './domain/ports.ts'
export { authnConfigSchema, type AuthnConfig } from './config.ts'
