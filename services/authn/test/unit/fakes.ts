/**
 * In-memory fakes of the authn ports for unit tests, and a builder of the whole dependency
 * set. The fake KMS really computes HMACs and ECDSA signatures (node:crypto), so assertions
 * and tokens made against it verify like real ones.
 */
import { createHmac, generateKeyPairSync, randomBytes, sign, timingSafeEqual, type KeyObject } from 'node:crypto'
import { CompactEncrypt, importJWK, type JWK } from 'jose'
import { M2msecError } from '@m2msec/errors'
import type { EntityRecord, TenantRecord } from '../../src/domain/model.ts'
import type {
  AuditEntry,
  AuthnDeps,
  AuthnEvent,
  AuthnSettings,
  EntityStore,
  JtiStore,
  KmsKeyInfo,
  RevocationStore,
  RevokedToken,
  TenantKms,
  TenantStore,
  Versioned,
} from '../../src/domain/ports.ts'

class MemoryKv<T> {
  readonly items = new Map<string, Versioned<T>>()
  private rev = 0
  get(k: string) {
    return this.items.get(k)
  }
  create(k: string, value: T): number {
    if (this.items.has(k)) throw new M2msecError('ERR_ALREADY_EXISTS', 'exists')
    this.items.set(k, { value, revision: ++this.rev })
    return this.rev
  }
  update(k: string, value: T, revision: number): number {
    if (this.items.get(k)?.revision !== revision) throw new M2msecError('ERR_REVISION_CONFLICT', 'conflict')
    this.items.set(k, { value, revision: ++this.rev })
    return this.rev
  }
  list(prefix: string, limit: number, after?: string) {
    const keys = [...this.items.keys()].filter((k) => k.startsWith(prefix) && (after === undefined || k > after)).sort()
    const page = keys.slice(0, limit)
    const items = page.map((k) => (this.items.get(k) as Versioned<T>).value)
    return keys.length > limit ? { items, next: page.at(-1) as string } : { items }
  }
}

export function memoryTenants(): TenantStore {
  const kv = new MemoryKv<TenantRecord>()
  return {
    get: async (id) => kv.get(id),
    create: async (t) => kv.create(t.id, t),
    update: async (t, r) => kv.update(t.id, t, r),
    list: async (p) => kv.list('', p.limit, p.after),
  }
}

export function memoryEntities(): EntityStore {
  const kv = new MemoryKv<EntityRecord>()
  const key = (t: string, id: string) => `${t}\u0000${id}`
  return {
    get: async (t, id) => kv.get(key(t, id)),
    create: async (e) => kv.create(key(e.tenant, e.id), e),
    update: async (e, r) => kv.update(key(e.tenant, e.id), e, r),
    async list(t, p) {
      const page = kv.list(`${t}\u0000`, p.limit, p.after === undefined ? undefined : key(t, p.after))
      return page.next === undefined ? page : { items: page.items, next: page.next.split('\u0000')[1] as string }
    },
  }
}

export function memoryJti(): JtiStore & { readonly used: Set<string> } {
  const used = new Set<string>()
  return {
    used,
    async claim(t, e, j) {
      const k = JSON.stringify([t, e, j])
      if (used.has(k)) return false
      used.add(k)
      return true
    },
  }
}

export function memoryRevocations(): RevocationStore & { readonly tokens: RevokedToken[] } {
  const tokens: RevokedToken[] = []
  return {
    tokens,
    async revoke(t) {
      tokens.push(t)
    },
    isRevoked: (tenant, jti) => tokens.some((t) => t.tenant === tenant && t.jti === jti),
  }
}

interface FakeVersion {
  version: number
  createdAt: Date
  secret?: Buffer
  privateKey?: KeyObject
  publicJwk?: string
}
interface FakeKey {
  id: string
  algorithm: 'HMAC_SHA256' | 'EC_P256_SIGN'
  exportable: boolean
  state: string
  versions: FakeVersion[]
}

/** A KMS that holds keys in memory. `secretOf` exposes HMAC keys to tests (the real KMS never does). */
export class FakeKms implements TenantKms {
  readonly keys = new Map<string, FakeKey>()
  readonly calls: string[] = []
  private n = 0

  private key(tenant: string, id: string): FakeKey {
    const k = this.keys.get(`${tenant}/${id}`)
    if (k === undefined) throw new M2msecError('ERR_KEY_NOT_FOUND', 'key not found')
    return k
  }
  private version(k: FakeKey): FakeVersion {
    const version = k.versions.length + 1
    if (k.algorithm === 'HMAC_SHA256') return { version, createdAt: new Date(), secret: randomBytes(32) }
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    return {
      version,
      createdAt: new Date(),
      privateKey,
      publicJwk: JSON.stringify(publicKey.export({ format: 'jwk' })),
    }
  }
  private info(k: FakeKey): KmsKeyInfo {
    return {
      id: k.id,
      algorithm: k.algorithm,
      state: k.state,
      exportable: k.exportable,
      primaryVersion: k.versions.length,
      versions: k.versions.map((v) => ({
        version: v.version,
        createdAt: v.createdAt,
        ...(v.publicJwk === undefined ? {} : { publicJwk: v.publicJwk }),
        destroyed: false,
      })),
    }
  }
  private primary(k: FakeKey): FakeVersion {
    return k.versions.at(-1) as FakeVersion
  }
  secretOf(tenant: string, keyId: string): Buffer {
    return this.primary(this.key(tenant, keyId)).secret as Buffer
  }
  /** Adds an HMAC key with known bytes (what an admin would import). */
  putHmacKey(tenant: string, id: string, secret: Buffer): void {
    this.keys.set(`${tenant}/${id}`, {
      id,
      algorithm: 'HMAC_SHA256',
      exportable: false,
      state: 'ENABLED',
      versions: [{ version: 1, createdAt: new Date(), secret }],
    })
  }
  async createKey(tenant: string, spec: Parameters<TenantKms['createKey']>[1]) {
    this.calls.push('createKey')
    const id = spec.keyId ?? `key-${++this.n}`
    if (this.keys.has(`${tenant}/${id}`)) throw new M2msecError('ERR_ALREADY_EXISTS', 'exists')
    const k: FakeKey = { id, algorithm: spec.algorithm, exportable: spec.exportable, state: 'ENABLED', versions: [] }
    k.versions.push(this.version(k))
    this.keys.set(`${tenant}/${id}`, k)
    return this.info(k)
  }
  async importHmacKey(): Promise<KmsKeyInfo> {
    throw new M2msecError('ERR_SE_NOT_SUPPORTED', 'the fake KMS does not import')
  }
  async getKey(tenant: string, keyId: string) {
    return this.info(this.key(tenant, keyId))
  }
  async rotateKey(tenant: string, keyId: string) {
    const k = this.key(tenant, keyId)
    k.versions.push(this.version(k))
    return this.info(k)
  }
  async sign(tenant: string, keyId: string, message: Uint8Array) {
    this.calls.push('sign')
    const k = this.key(tenant, keyId)
    const v = this.primary(k)
    const signature = sign('sha256', message, { key: v.privateKey as KeyObject, dsaEncoding: 'ieee-p1363' })
    return { signature: new Uint8Array(signature), version: v.version }
  }
  async mac(tenant: string, keyId: string, data: Uint8Array) {
    this.calls.push('mac')
    return new Uint8Array(createHmac('sha256', this.secretOf(tenant, keyId)).update(data).digest())
  }
  async verifyMac(tenant: string, keyId: string, data: Uint8Array, mac: Uint8Array) {
    this.calls.push('verifyMac')
    const k = this.key(tenant, keyId)
    if (k.state !== 'ENABLED') throw new M2msecError('ERR_KEY_DISABLED', 'key is disabled')
    const expected = createHmac('sha256', this.secretOf(tenant, keyId)).update(data).digest()
    return expected.length === mac.length && timingSafeEqual(expected, mac)
  }
  async wrapKeyForJwk(tenant: string, keyId: string, publicJwk: string) {
    const recipient = await importJWK(JSON.parse(publicJwk) as JWK, 'ECDH-ES+A256KW')
    return new CompactEncrypt(this.secretOf(tenant, keyId))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(recipient)
  }
}

export const SETTINGS: AuthnSettings = {
  issuer: 'm2msec-authn',
  tokenEndpointId: 'm2msec-authn-token',
  defaultAudience: 'm2msec',
  tokenLifetimeSec: 300,
  maxAssertionLifetimeSec: 300,
  clockSkewSec: 30,
  maxAssertionBytes: 8192,
  operatorTenant: '_platform',
  signingKeyCacheMs: 0,
}

export interface FakeDeps extends AuthnDeps {
  readonly kms: FakeKms
  readonly jti: ReturnType<typeof memoryJti>
  readonly revocations: ReturnType<typeof memoryRevocations>
  readonly auditLog: AuditEntry[]
  readonly published: AuthnEvent[]
}

export function fakeDeps(settings: Partial<AuthnSettings> = {}): FakeDeps {
  const auditLog: AuditEntry[] = []
  const published: AuthnEvent[] = []
  return {
    tenants: memoryTenants(),
    entities: memoryEntities(),
    jti: memoryJti(),
    revocations: memoryRevocations(),
    kms: new FakeKms(),
    audit: { append: async (e) => void auditLog.push(e) },
    events: { publish: async (e) => void published.push(e) },
    clock: { now: () => new Date() },
    random: { bytes: (n) => new Uint8Array(randomBytes(n)) },
    settings: { ...SETTINGS, ...settings },
    auditLog,
    published,
  }
}
