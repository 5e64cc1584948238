/** proto ⇄ domain conversions: the only place where both types meet. */
import { M2msecError } from '@m2msec/errors'
import * as pb from '@m2msec/proto/authn/v1'
import type {
  AuthPolicyRecord,
  CredentialRecord,
  EntityKind,
  EntityRecord,
  MafClientRecord,
  MafKeyRecord,
  SubjectType,
  TenantRecord,
} from '../domain/model.ts'
import type { AddCredentialInput, EffectivePolicy, TokenClaims } from '../domain/operations/index.ts'

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
    policy: policyToProto(t.policy),
  })
}

const SUBJECT_TYPES: Readonly<Record<SubjectType, pb.SubjectType>> = {
  PUBLIC: pb.SubjectType.SUBJECT_TYPE_PUBLIC,
  PAIRWISE: pb.SubjectType.SUBJECT_TYPE_PAIRWISE,
}

/** A stored or effective policy as the API shows it (unset fields stay 0 / UNSPECIFIED). */
export function policyToProto(p: AuthPolicyRecord | EffectivePolicy | undefined): pb.AuthPolicy {
  return pb.AuthPolicy.fromPartial({
    subjectType: p?.subjectType === undefined ? pb.SubjectType.SUBJECT_TYPE_UNSPECIFIED : SUBJECT_TYPES[p.subjectType],
    sessionKeyLifetimeSec: p?.sessionKeyLifetimeSec ?? 0,
  })
}

/** The domain policy of a request; an unknown subject type is passed on for the domain to refuse. */
export function policyFromProto(p: pb.AuthPolicy | undefined): AuthPolicyRecord {
  const type = p?.subjectType ?? pb.SubjectType.SUBJECT_TYPE_UNSPECIFIED
  const subjectType =
    type === pb.SubjectType.SUBJECT_TYPE_UNSPECIFIED
      ? undefined
      : ((Object.keys(SUBJECT_TYPES) as SubjectType[]).find((k) => SUBJECT_TYPES[k] === type) ??
        ('UNKNOWN' as SubjectType))
  const lifetime = p?.sessionKeyLifetimeSec ?? 0
  return {
    ...(subjectType === undefined ? {} : { subjectType }),
    ...(lifetime === 0 ? {} : { sessionKeyLifetimeSec: lifetime }),
  }
}

/** A MAF client registration as the API shows it. */
export function mafClientToProto(c: MafClientRecord, mafFqdn: string): pb.MafClient {
  return pb.MafClient.fromPartial({
    registrationId: c.registrationId,
    clientId: c.clientId,
    expirationTime: new Date(c.expiresAt),
    labels: [...c.labels],
    adminFqdn: c.adminFqdn,
    mafFqdn,
    updatedAt: new Date(c.updatedAt),
  })
}

/** A MAF key registration as the API shows it (never the key). */
export function mafKeyToProto(k: MafKeyRecord, mafFqdn: string): pb.MafKey {
  return pb.MafKey.fromPartial({
    relativeKeyId: k.relativeKeyId,
    keyIdentifier: `${k.relativeKeyId}@${mafFqdn}`,
    sourceClientId: k.sourceClientId,
    suid: k.suid,
    targetIds: [...k.targetIds],
    expirationTime: new Date(k.expiresAt),
    labels: [...k.labels],
    adminFqdn: k.adminFqdn,
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

const CREDENTIAL_TYPES: Readonly<Record<CredentialRecord['type'], pb.CredentialType>> = {
  SYMMETRIC: pb.CredentialType.CREDENTIAL_TYPE_SYMMETRIC,
  CERTIFICATE: pb.CredentialType.CREDENTIAL_TYPE_CERTIFICATE,
  GBA: pb.CredentialType.CREDENTIAL_TYPE_GBA,
}

/** A credential as the API shows it (ids and metadata, never key material). */
export function credentialToProto(c: CredentialRecord): pb.Credential {
  return pb.Credential.fromPartial({
    id: c.id,
    type: CREDENTIAL_TYPES[c.type],
    state:
      c.state === 'ACTIVE' ? pb.CredentialState.CREDENTIAL_STATE_ACTIVE : pb.CredentialState.CREDENTIAL_STATE_REVOKED,
    notBefore: new Date(c.notBefore),
    notAfter: date(c.notAfter),
    kmsKeyId: c.kmsKeyId ?? '',
    certificateSubject: c.certificateSubject ?? '',
    certificateSha256Thumbprint: c.certificateSha256 ?? '',
    createdAt: new Date(c.createdAt),
    revokedAt: date(c.revokedAt),
    gbaImpi: c.gbaImpi ?? '',
    gbaSubscriptionId: c.gbaSubscriptionId ?? '',
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
    policy: policyToProto(e.policy),
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
  if (c.$case === 'gba') return { ...base, credential: { type: 'GBA', impi: c.value.impi } }
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
