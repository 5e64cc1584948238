/**
 * The Authentication gRPC service: decode → call the use case → encode. Validation, access
 * checks and audit are in the domain; authentication, error mapping and tracing in
 * @m2msec/runtime. IssueToken is registered as an unauthenticated method (its caller proves
 * itself with the assertion).
 */
import * as pb from '@m2msec/proto/authn/v1'
import type { UnaryHandlers } from '@m2msec/runtime'
import type { AuthnOperations } from '../domain/operations/index.ts'
import { sourceOfPeer } from '../domain/flood.ts'
import {
  addCredentialFromProto,
  mafClientToProto,
  mafKeyToProto,
  policyFromProto,
  policyToProto,
  claimsToProto,
  credentialToProto,
  entityToProto,
  kindFromProto,
  tenantToProto,
} from './mapping.ts'

/** The handlers of every Authentication RPC. */
export type AuthnHandlers = UnaryHandlers<typeof pb.AuthenticationService>

/** Methods callable without credentials. */
export const UNAUTHENTICATED_METHODS = ['issueToken'] as const

/** The Authentication handlers over the domain operations (register IssueToken as unauthenticated). */
export function createAuthnGrpcService(ops: AuthnOperations, opts: { mafFqdn: string }): AuthnHandlers {
  const fqdn = opts.mafFqdn
  return {
    async createTenant(r, { principal }) {
      const tenant = await ops.createTenant(principal, {
        tenantId: r.tenantId,
        displayName: r.displayName,
        trustAnchorsPem: r.trustAnchorsPem,
        secureEnvironment: r.secureEnvironment,
      })
      return { tenant: tenantToProto(tenant) }
    },
    async listTenants(r, { principal }) {
      const out = await ops.listTenants(principal, { pageSize: r.pageSize, pageToken: r.pageToken })
      return { tenants: out.tenants.map(tenantToProto), nextPageToken: out.nextPageToken ?? '' }
    },
    async disableTenant(r, { principal }) {
      return { tenant: tenantToProto(await ops.disableTenant(principal, r.tenantId)) }
    },
    async setTrustAnchors(r, { principal }) {
      return { tenant: tenantToProto(await ops.setTrustAnchors(principal, r.trustAnchorsPem)) }
    },
    async addTrustAnchors(r, { principal }) {
      return { tenant: tenantToProto(await ops.addTrustAnchors(principal, r.trustAnchorsPem)) }
    },
    async registerEntity(r, { principal }) {
      const entity = await ops.registerEntity(principal, {
        entityId: r.entityId,
        kind: kindFromProto(r.kind),
        roles: r.roles,
        labels: r.labels,
      })
      return { entity: entityToProto(entity) }
    },
    async getEntity(r, { principal }) {
      return { entity: entityToProto(await ops.getEntity(principal, r.entityId)) }
    },
    async listEntities(r, { principal }) {
      const out = await ops.listEntities(principal, { pageSize: r.pageSize, pageToken: r.pageToken })
      return { entities: out.entities.map(entityToProto), nextPageToken: out.nextPageToken ?? '' }
    },
    async disableEntity(r, { principal }) {
      return { entity: entityToProto(await ops.disableEntity(principal, r.entityId)) }
    },
    async addCredential(r, { principal }) {
      const out = await ops.addCredential(principal, addCredentialFromProto(r))
      return { credential: credentialToProto(out.credential), wrappedKey: out.wrappedKey ?? '' }
    },
    async revokeCredential(r, { principal }) {
      const c = await ops.revokeCredential(principal, { entityId: r.entityId, credentialId: r.credentialId })
      return { credential: credentialToProto(c) }
    },
    async issueToken(r, { peer, peerCertificateDer }) {
      const t = await ops.issueToken({
        tenant: r.tenant,
        assertion: r.assertion,
        audience: r.audience,
        popPublicJwk: r.popPublicJwk,
        source: sourceOfPeer(peer),
        entityId: r.entityId,
        ...(peerCertificateDer === undefined ? {} : { clientCertificateDer: peerCertificateDer }),
      })
      return {
        accessToken: t.accessToken,
        tokenType: 'Bearer',
        expiresAt: t.expiresAt,
        tokenId: t.tokenId,
        loa: t.loa,
        serverProofType:
          t.proofType === 'HMAC_SHA256'
            ? pb.ServerProofType.SERVER_PROOF_TYPE_HMAC_SHA256
            : t.proofType === 'JWS_ES256'
              ? pb.ServerProofType.SERVER_PROOF_TYPE_JWS_ES256
              : pb.ServerProofType.SERVER_PROOF_TYPE_UNSPECIFIED,
        serverProof: t.proof,
      }
    },
    async introspect(r, { principal }) {
      const out = await ops.introspect(principal, r.token)
      return out.active
        ? { active: true, claims: claimsToProto(out.claims), entityId: out.entityId }
        : { active: false, entityId: '' }
    },
    async revokeToken(r, { principal }) {
      await ops.revokeToken(principal, r.tokenId)
      return {}
    },
    async rotateSigningKey(_r, { principal }) {
      return ops.rotateSigningKey(principal)
    },
    async setAuthPolicy(r, { principal }) {
      const effective = await ops.setAuthPolicy(principal, { entityId: r.entityId, policy: policyFromProto(r.policy) })
      return { effective: policyToProto(effective) }
    },
    async deriveSessionKey(r, { principal }) {
      const k = await ops.deriveSessionKey(principal, {
        entityId: r.entityId,
        credentialId: r.credentialId,
        grantees: r.grantees,
      })
      return {
        sessionId: k.sessionId,
        kmsKeyId: k.kmsKeyId,
        credentialId: k.credentialId,
        salt: Buffer.from(k.salt),
        info: Buffer.from(k.info),
        expiresAt: k.expiresAt,
      }
    },
    async registerMafClient(r, { principal }) {
      const c = await ops.registerMafClient(principal, {
        clientId: r.clientId,
        expirationTime: r.expirationTime,
        labels: r.labels,
        adminFqdn: r.adminFqdn,
      })
      return { client: mafClientToProto(c, fqdn) }
    },
    async getMafClient(r, { principal }) {
      return { client: mafClientToProto(await ops.getMafClient(principal, r.clientId), fqdn) }
    },
    async deregisterMafClient(r, { principal }) {
      await ops.deregisterMafClient(principal, r.clientId)
      return {}
    },
    async registerMafKey(r, { principal }) {
      const out = await ops.registerMafKey(principal, {
        sourceClientId: r.sourceClientId,
        suid: r.suid,
        targetIds: r.targetIds,
        expirationTime: r.expirationTime,
        labels: r.labels,
        adminFqdn: r.adminFqdn,
        recipientPublicJwk: r.recipientPublicJwk,
      })
      return { key: mafKeyToProto(out.key, fqdn), wrappedKey: out.wrappedKey }
    },
    async retrieveMafKey(r, { principal }) {
      const out = await ops.retrieveMafKey(principal, {
        keyIdentifier: r.keyIdentifier,
        recipientPublicJwk: r.recipientPublicJwk,
      })
      return { key: mafKeyToProto(out.key, fqdn), wrappedKey: out.wrappedKey }
    },
    async updateMafKey(r, { principal }) {
      const k = await ops.updateMafKey(principal, {
        relativeKeyId: r.relativeKeyId,
        ...(r.expirationTime === undefined ? {} : { expirationTime: r.expirationTime }),
        ...(r.replaceTargets ? { targetIds: r.targetIds } : {}),
        ...(r.replaceLabels ? { labels: r.labels } : {}),
      })
      return { key: mafKeyToProto(k, fqdn) }
    },
    async deregisterMafKey(r, { principal }) {
      await ops.deregisterMafKey(principal, r.relativeKeyId)
      return {}
    },
  }
}
