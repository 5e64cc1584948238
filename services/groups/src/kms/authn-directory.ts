/**
 * The CredentialDirectory port over authn's gRPC API: a member's credential is the newest
 * ACTIVE SYMMETRIC credential of its entity that is inside its validity window (authn stores
 * its key as a KMS HMAC key handle, `kms_key_id`). Calls name the tenant in the
 * `m2msec-tenant` header (platform identity `m2msec://_platform/groups`).
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import {
  AuthenticationClient,
  AuthenticationService,
  CredentialState,
  CredentialType,
  GetEntityRequest,
} from '@m2msec/proto/authn/v1'
import { createTenantCaller, promiseClient } from '@m2msec/runtime'
import type { CredentialDirectory } from '../domain/ports.ts'
import type { KmsClientOptions } from './kms-client.ts'

/** A directory that owns its channel. */
export interface AuthnDirectory extends CredentialDirectory {
  close(): void
}

/**
 * @example
 * ```ts
 * const directory = createAuthnDirectory({ target: 'authn:7003', tls, timeoutMs: 5000 })
 * const keyId = await directory.credentialKeyOf('acme', 'meter-7')
 * ```
 */
export function createAuthnDirectory(
  opts: KmsClientOptions,
  clock: { now(): Date } = { now: () => new Date() },
): AuthnDirectory {
  const creds =
    opts.tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(
          readFileSync(opts.tls.caFile),
          opts.tls.keyFile === undefined ? null : readFileSync(opts.tls.keyFile),
          opts.tls.certFile === undefined ? null : readFileSync(opts.tls.certFile),
        )
  const raw = new AuthenticationClient(
    opts.target,
    creds,
    opts.tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': opts.tls.serverName },
  )
  const authn = promiseClient(AuthenticationService, raw)
  const call = createTenantCaller({ token: opts.token, timeoutMs: opts.timeoutMs })
  return {
    async credentialKeyOf(tenant, entityId) {
      let entity
      try {
        entity = (await call(tenant, (o) => authn.getEntity(GetEntityRequest.fromPartial({ entityId }), o))).entity
      } catch (e) {
        if (isM2msecError(e) && e.code === 'ERR_NOT_FOUND') {
          throw new M2msecError('ERR_FAILED_PRECONDITION', 'member is not a registered entity', { memberId: entityId })
        }
        throw e
      }
      const now = clock.now().getTime()
      const usable = (entity?.credentials ?? []).filter(
        (c) =>
          c.type === CredentialType.CREDENTIAL_TYPE_SYMMETRIC &&
          c.state === CredentialState.CREDENTIAL_STATE_ACTIVE &&
          c.kmsKeyId !== '' &&
          (c.notBefore === undefined || c.notBefore.getTime() <= now) &&
          (c.notAfter === undefined || c.notAfter.getTime() > now),
      )
      const newest = usable.sort((a, b) => (b.notBefore?.getTime() ?? 0) - (a.notBefore?.getTime() ?? 0))[0]
      if (newest === undefined) {
        throw new M2msecError('ERR_FAILED_PRECONDITION', 'member has no active symmetric credential', {
          memberId: entityId,
        })
      }
      return newest.kmsKeyId
    },
    close() {
      raw.close()
    },
  }
}
