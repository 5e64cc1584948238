/**
 * Builds the KMS domain on in-memory stores and the real software SE, with a fixed clock and
 * a recording audit sink, for the operation unit tests.
 */
import { randomBytes } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import { create as createSoftwareSe } from '../../src/se/software/index.ts'
import type { SecureEnvironment } from '../../src/se/api.ts'
import { createKmsOperations } from '../../src/domain/operations/index.ts'
import type { AuditEntry, KeyEvent, KmsDeps } from '../../src/domain/ports.ts'
import type { Caller } from '../../src/domain/model.ts'
import { createMemoryKeyStore, createMemorySecretStore } from '../store/memory-stores.ts'

export const admin: Caller = { tenant: 'acme', id: 'ops-admin', roles: ['admin'] }
export const alice: Caller = { tenant: 'acme', id: 'alice', roles: [] }
export const bob: Caller = { tenant: 'acme', id: 'bob', roles: ['meter-reader'] }
export const mallory: Caller = { tenant: 'evil', id: 'ops-admin', roles: ['admin'] }

export async function kmsFixture() {
  const se: SecureEnvironment = await createSoftwareSe('software', { masterKey: randomBytes(32) })
  let now = new Date('2026-11-23T12:00:00.000Z')
  const audit: AuditEntry[] = []
  const events: KeyEvent[] = []
  let auditDown = false
  const deps: KmsDeps = {
    keys: createMemoryKeyStore(),
    secrets: createMemorySecretStore(),
    ses: {
      defaultName: 'software',
      get: (name) => {
        if (name !== 'software') throw new M2msecError('ERR_SE_NOT_FOUND', 'no such secure environment')
        return se
      },
      list: () => [se],
    },
    audit: {
      async append(e) {
        if (auditDown) throw new M2msecError('ERR_AUDIT_UNAVAILABLE', 'audit down')
        audit.push(e)
      },
    },
    events: {
      async publish(e) {
        events.push(e)
      },
    },
    clock: { now: () => now },
    random: { bytes: (n) => randomBytes(n) },
  }
  return {
    ops: createKmsOperations(deps),
    deps,
    se,
    audit,
    events,
    advance(ms: number) {
      now = new Date(now.getTime() + ms)
    },
    setAuditDown(down: boolean) {
      auditDown = down
    },
  }
}
