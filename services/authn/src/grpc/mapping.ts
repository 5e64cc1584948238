/** proto ⇄ domain conversions: the only place where both types meet. */
import { M2msecError } from '@m2msec/errors'
import * as pb from '@m2msec/proto/authn/v1'
import type { CredentialRecord, EntityKind, EntityRecord, TenantRecord } from '../domain/model.ts'
import type { AddCredentialInput, TokenClaims } from '../domain/operations/index.ts'

const date = (iso: string | undefined): Date | undefined => (iso === undefined ? undefined : new Date(iso))

/** A tenant record as the API shows it (trust anchors as subject and thumbprint only). */
export function tenantToProto(t: TenantRecord): pb.Tenant {
  return pb.Tenant.fromPartial({
    id: t.id,
    displayName: t.displayName,
    state: t.state === 'ENABLED' ? pb.TenantState.TENANT_STATE_ENABLED : pb.TenantState.TENANT_STATE_DISABLED,
    trustAnchors: t.trustAnchors.map((a) => ({
      subject: a.subject,
      sha256Thumbprint: a.sha256,
      notAfter: new Date(a.notAfter),
    })),
    signingKeyId: t.signingKeyId,
    secureEnvironment: t.secureEnvironment,
    createdAt: new Date(t.createdAt),
    updatedAt: new Date(t.updatedAt),
  })
}

const KINDS: Readonly<Record<EntityKind, pb.EntityKind>> = {
  AE: pb.EntityKind.ENTITY_KIND_AE,
  CSE: pb.EntityKind.ENTITY_KIND_CSE,
  DEVICE: pb.EntityKind.ENTITY_KIND_DEVICE,
  GATEWAY: pb.EntityKind.ENTITY_KIND_GATEWAY,
}

/** The domain entity kind of a proto enum value; undefined for UNSPECIFIED or unknown values. */
export function kindFromProto(kind: pb.EntityKind): EntityKind | undefined {
  return (Object.keys(KINDS) as EntityKind[]).find((k) => KINDS[k] === kind)
}

/** A credential as the API shows it (ids and metadata, never key material). */
export function credentialToProto(c: CredentialRecord): pb.Credential {
  return pb.Credential.fromPartial({
    id: c.id,
    type:
      c.type === 'SYMMETRIC'
        ? pb.CredentialType.CREDENTIAL_TYPE_SYMMETRIC
        : pb.CredentialType.CREDENTIAL_TYPE_CERTIFICATE,
    state:
      c.state === 'ACTIVE' ? pb.CredentialState.CREDENTIAL_STATE_ACTIVE : pb.CredentialState.CREDENTIAL_STATE_REVOKED,
    notBefore: new Date(c.notBefore),
    notAfter: date(c.notAfter),
    kmsKeyId: c.kmsKeyId ?? '',
    certificateSubject: c.certificateSubject ?? '',
    certificateSha256Thumbprint: c.certificateSha256 ?? '',
    createdAt: new Date(c.createdAt),
    revokedAt: date(c.revokedAt),
  })
}

/** An entity and its credentials as the API shows them. */
export function entityToProto(e: EntityRecord): pb.Entity {
  return pb.Entity.fromPartial({
    id: e.id,
    kind: KINDS[e.kind],
    state: e.state === 'ENABLED' ? pb.EntityState.ENTITY_STATE_ENABLED : pb.EntityState.ENTITY_STATE_DISABLED,
    roles: [...e.roles],
    labels: { ...e.labels },
    credentials: e.credentials.map(credentialToProto),
    createdAt: new Date(e.createdAt),
    updatedAt: new Date(e.updatedAt),
  })
}

/** The AddCredential use-case input; ERR_INVALID_ARGUMENT when a symmetric source is missing. */
export function addCredentialFromProto(r: pb.AddCredentialRequest): AddCredentialInput {
  const base = {
    entityId: r.entityId,
    credentialId: r.credentialId,
    ...(r.notBefore === undefined ? {} : { notBefore: r.notBefore }),
    ...(r.notAfter === undefined ? {} : { notAfter: r.notAfter }),
  }
  const c = r.credential
  if (c === undefined) return { ...base, credential: undefined }
  if (c.$case === 'certificate') {
    return { ...base, credential: { type: 'CERTIFICATE', chainPem: c.value.certificateChainPem } }
  }
  const s = c.value.source
  if (s === undefined) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'symmetric.source is required', { field: 'symmetric' })
  }
  const source =
    s.$case === 'generate'
      ? { kind: 'generate' as const, deliverToPublicJwk: s.value.deliverToPublicJwk }
      : s.$case === 'kmsKeyId'
        ? { kind: 'kms' as const, keyId: s.value }
        : { kind: 'import' as const, wrappedKey: s.value.wrappedKey, unwrappingKeyId: s.value.unwrappingKeyId }
  return { ...base, credential: { type: 'SYMMETRIC', source } }
}

/** Introspected claims (NumericDates become Timestamps). */
export function claimsToProto(c: TokenClaims): pb.TokenClaims {
  return pb.TokenClaims.fromPartial({
    iss: c.iss,
    sub: c.sub,
    aud: c.aud,
    tenant: c.tenant,
    loa: c.loa,
    roles: c.roles,
    iat: new Date(c.iat * 1000),
    exp: new Date(c.exp * 1000),
    jti: c.jti,
    cnfJkt: c.cnfJkt ?? '',
    cnfX5tS256: c.cnfX5tS256 ?? '',
  })
}
