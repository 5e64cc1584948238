/**
 * A small world for the unit tests of the newer use cases: fakes with a settable clock, a
 * tenant `acme` with an admin, and helpers to register entities with a symmetric credential
 * (whose key the fake KMS reveals to the test) and to sign HS256 assertions with it.
 */
import { createHmac, randomBytes } from 'node:crypto'
import type { EntityKind } from '../../src/domain/model.ts'
import type { AuthnSettings } from '../../src/domain/ports.ts'
import { createAuthnOperations, type AuthnOperations } from '../../src/domain/operations/index.ts'
import { fakeDeps, SETTINGS, type FakeDeps } from './fakes.ts'

export const ADMIN = { tenant: 'acme', id: 'adm', roles: ['admin'] }
export const OPERATOR = { tenant: '_platform', id: 'op', roles: ['operator'] }
export const AUD = 'm2msec-authn-token'

/** A registered entity and the bytes of its symmetric credential. */
export interface Device {
  readonly id: string
  readonly kid: string
  readonly key: Buffer
  readonly kmsKeyId: string
}

export interface World {
  readonly deps: FakeDeps
  readonly ops: AuthnOperations
  /** The fake clock, ms since the epoch; tests move it. */
  now: number
  register(id: string, kind?: EntityKind): Promise<Device>
  /** An HS256 assertion of `d`, signed with `key` (default: its credential key). */
  assertion(d: Device, key?: Buffer): string
}

function b64(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url')
}

/** Builds the world; `settings` override the fakes' settings (e.g. flood limits). */
export async function createWorld(settings: Partial<AuthnSettings> = {}): Promise<World> {
  const base = fakeDeps({ ...SETTINGS, ...settings })
  const world: World = {
    now: Date.now(),
    deps: undefined as unknown as FakeDeps,
    ops: undefined as unknown as AuthnOperations,
    async register(id, kind = 'DEVICE') {
      await world.ops.registerEntity(ADMIN, { entityId: id, kind, roles: ['device'], labels: {} })
      const cred = await world.ops.addCredential(ADMIN, {
        entityId: id,
        credential: { type: 'SYMMETRIC', source: { kind: 'generate' } },
      })
      const kmsKeyId = cred.credential.kmsKeyId as string
      return { id, kid: cred.credential.id, key: world.deps.kms.secretOf('acme', kmsKeyId), kmsKeyId }
    },
    assertion(d, key = d.key) {
      const t = Math.floor(world.now / 1000)
      const claims = { iss: d.id, sub: d.id, aud: AUD, iat: t, exp: t + 60, jti: randomBytes(12).toString('base64url') }
      const input = `${b64({ alg: 'HS256', kid: d.kid })}.${b64(claims)}`
      return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
    },
  }
  const deps: FakeDeps = { ...base, clock: { now: () => new Date(world.now) } }
  Object.assign(world, { deps, ops: createAuthnOperations(deps) })
  await world.ops.createTenant(OPERATOR, {
    tenantId: 'acme',
    displayName: '',
    trustAnchorsPem: [],
    secureEnvironment: '',
  })
  return world
}

/** The error code of a rejected promise, or 'resolved'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return (err as { code: string }).code
  }
  return 'resolved'
}

/** The error of a rejected promise (fails the test when it resolves). */
export async function errorOf(p: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> }> {
  try {
    await p
  } catch (err) {
    return err as { code: string; details: Record<string, unknown> }
  }
  throw new Error('expected a rejection')
}
