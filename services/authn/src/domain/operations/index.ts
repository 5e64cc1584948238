/**
 * The authn use cases bound to their dependencies: what the gRPC handlers and the JWKS HTTP
 * endpoint call.
 */
import { createFloodGuard } from '../flood.ts'
import type { AuthPolicyRecord, Caller } from '../model.ts'
import type { AuthnDeps } from '../ports.ts'
import { createPseudonyms } from '../pseudonyms.ts'
import { createSigningKeys, type SigningKeys } from '../signing-keys.ts'
import { addCredential, revokeCredential, type AddCredentialInput } from './credentials.ts'
import { disableEntity, getEntity, listEntities, registerEntity, type RegisterEntityInput } from './entities.ts'
import { issueToken, type IssueTokenInput } from './issue-token.ts'
import {
  addTrustAnchors,
  createTenant,
  disableTenant,
  listTenants,
  setTrustAnchors,
  type CreateTenantInput,
} from './tenants.ts'
import { introspect, platformJwks, revokeToken, rotateSigningKey, tenantJwks } from './tokens.ts'
import {
  deregisterMafClient,
  deregisterMafKey,
  getMafClient,
  registerMafClient,
  registerMafKey,
  retrieveMafKey,
  updateMafKey,
  type RegisterMafClientInput,
  type RegisterMafKeyInput,
  type UpdateMafKeyInput,
} from './maf.ts'
import { setAuthPolicy } from './policy.ts'
import { deriveSessionKey, type DeriveSessionKeyInput } from './session-keys.ts'
import { sweepExpired } from './sweep.ts'

export type { AddCredentialInput, AddCredentialResult, SymmetricSource } from './credentials.ts'
export type { RegisterEntityInput } from './entities.ts'
export type { IssueTokenInput, IssuedToken } from './issue-token.ts'
export type { CreateTenantInput } from './tenants.ts'
export type { IntrospectResult, TokenClaims } from './tokens.ts'
export type { RegisterMafClientInput, RegisterMafKeyInput, UpdateMafKeyInput } from './maf.ts'
export type { EffectivePolicy } from './policy.ts'
export type { DeriveSessionKeyInput, DerivedSessionKey } from './session-keys.ts'
export type { SweepResult } from './sweep.ts'

/**
 * @example
 * ```ts
 * const ops = createAuthnOperations({ tenants, entities, jti, revocations, kms, audit, events, clock, random, settings })
 * const issued = await ops.issueToken({ tenant: 'acme', assertion, audience: '', popPublicJwk: '' })
 * ```
 */
export function createAuthnOperations(deps: AuthnDeps) {
  const signing: SigningKeys = createSigningKeys(deps)
  const tokenServices = { signing, flood: createFloodGuard(deps), pseudonyms: createPseudonyms(deps) }
  return {
    signing,
    createTenant: (c: Caller, i: CreateTenantInput) => createTenant(deps, c, i),
    listTenants: (c: Caller, r: { pageSize: number; pageToken: string }) => listTenants(deps, c, r),
    disableTenant: (c: Caller, tenantId: string) => disableTenant(deps, c, tenantId),
    setTrustAnchors: (c: Caller, pems: readonly string[]) => setTrustAnchors(deps, c, pems),
    addTrustAnchors: (c: Caller, pems: readonly string[]) => addTrustAnchors(deps, c, pems),
    registerEntity: (c: Caller, i: RegisterEntityInput) => registerEntity(deps, c, i),
    getEntity: (c: Caller, entityId: string) => getEntity(deps, c, entityId),
    listEntities: (c: Caller, r: { pageSize: number; pageToken: string }) => listEntities(deps, c, r),
    disableEntity: (c: Caller, entityId: string) => disableEntity(deps, c, entityId),
    addCredential: (c: Caller, i: AddCredentialInput) => addCredential(deps, c, i),
    revokeCredential: (c: Caller, r: { entityId: string; credentialId: string }) => revokeCredential(deps, c, r),
    issueToken: (i: IssueTokenInput) => issueToken(deps, tokenServices, i),
    introspect: (c: Caller, token: string) => introspect(deps, signing, c, token),
    revokeToken: (c: Caller, tokenId: string) => revokeToken(deps, c, tokenId),
    rotateSigningKey: (c: Caller) => rotateSigningKey(deps, signing, c),
    tenantJwks: (tenantId: string) => tenantJwks(deps, signing, tenantId),
    platformJwks: () => platformJwks(deps, signing),
    setAuthPolicy: (c: Caller, r: { entityId: string; policy: AuthPolicyRecord }) => setAuthPolicy(deps, c, r),
    deriveSessionKey: (c: Caller, i: DeriveSessionKeyInput) => deriveSessionKey(deps, c, i),
    registerMafClient: (c: Caller, i: RegisterMafClientInput) => registerMafClient(deps, c, i),
    getMafClient: (c: Caller, clientId: string) => getMafClient(deps, c, clientId),
    deregisterMafClient: (c: Caller, clientId: string) => deregisterMafClient(deps, c, clientId),
    registerMafKey: (c: Caller, i: RegisterMafKeyInput) => registerMafKey(deps, c, i),
    retrieveMafKey: (c: Caller, r: { keyIdentifier: string; recipientPublicJwk: string }) => retrieveMafKey(deps, c, r),
    updateMafKey: (c: Caller, i: UpdateMafKeyInput) => updateMafKey(deps, c, i),
    deregisterMafKey: (c: Caller, relativeKeyId: string) => deregisterMafKey(deps, c, relativeKeyId),
    sweepExpired: () => sweepExpired(deps),
  }
}

/** The bound use cases. */
export type AuthnOperations = ReturnType<typeof createAuthnOperations>
