/**
 * The authn use cases bound to their dependencies: what the gRPC handlers and the JWKS HTTP
 * endpoint call.
 */
import type { Caller } from '../model.ts'
import type { AuthnDeps } from '../ports.ts'
import { createSigningKeys, type SigningKeys } from '../signing-keys.ts'
import { addCredential, revokeCredential, type AddCredentialInput } from './credentials.ts'
import { disableEntity, getEntity, listEntities, registerEntity, type RegisterEntityInput } from './entities.ts'
import { issueToken, type IssueTokenInput } from './issue-token.ts'
import { createTenant, disableTenant, listTenants, setTrustAnchors, type CreateTenantInput } from './tenants.ts'
import { introspect, platformJwks, revokeToken, rotateSigningKey, tenantJwks } from './tokens.ts'

export type { AddCredentialInput, AddCredentialResult, SymmetricSource } from './credentials.ts'
export type { RegisterEntityInput } from './entities.ts'
export type { IssueTokenInput, IssuedToken } from './issue-token.ts'
export type { CreateTenantInput } from './tenants.ts'
export type { TokenClaims } from './tokens.ts'

/**
 * @example
 * ```ts
 * const ops = createAuthnOperations({ tenants, entities, jti, revocations, kms, audit, events, clock, random, settings })
 * const issued = await ops.issueToken({ tenant: 'acme', assertion, audience: '', popPublicJwk: '' })
 * ```
 */
export function createAuthnOperations(deps: AuthnDeps) {
  const signing: SigningKeys = createSigningKeys(deps)
  return {
    signing,
    createTenant: (c: Caller, i: CreateTenantInput) => createTenant(deps, c, i),
    listTenants: (c: Caller, r: { pageSize: number; pageToken: string }) => listTenants(deps, c, r),
    disableTenant: (c: Caller, tenantId: string) => disableTenant(deps, c, tenantId),
    setTrustAnchors: (c: Caller, pems: readonly string[]) => setTrustAnchors(deps, c, pems),
    registerEntity: (c: Caller, i: RegisterEntityInput) => registerEntity(deps, c, i),
    getEntity: (c: Caller, entityId: string) => getEntity(deps, c, entityId),
    listEntities: (c: Caller, r: { pageSize: number; pageToken: string }) => listEntities(deps, c, r),
    disableEntity: (c: Caller, entityId: string) => disableEntity(deps, c, entityId),
    addCredential: (c: Caller, i: AddCredentialInput) => addCredential(deps, c, i),
    revokeCredential: (c: Caller, r: { entityId: string; credentialId: string }) => revokeCredential(deps, c, r),
    issueToken: (i: IssueTokenInput) => issueToken(deps, signing, i),
    introspect: (c: Caller, token: string) => introspect(deps, signing, c, token),
    revokeToken: (c: Caller, tokenId: string) => revokeToken(deps, c, tokenId),
    rotateSigningKey: (c: Caller) => rotateSigningKey(deps, signing, c),
    tenantJwks: (tenantId: string) => tenantJwks(deps, signing, tenantId),
    platformJwks: () => platformJwks(deps, signing),
  }
}

/** The bound use cases. */
export type AuthnOperations = ReturnType<typeof createAuthnOperations>
