/**
 * In-memory fakes of the authn ports for unit tests, and a builder of the whole dependency
 * set. The fake KMS really computes HMACs and ECDSA signatures (node:crypto), so assertions
 * and tokens made against it verify like real ones.
 */
import {
  createHmac,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  sign,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto'
import { CompactEncrypt, importJWK, type JWK } from 'jose'
import { M2msecError } from '@m2msec/errors'
import type {
  EntityRecord,
  MafClientRecord,
  MafKeyRecord,
  SessionKeyRecord,
  TenantRecord,
} from '../../src/domain/model.ts'
import type {
  AttemptStore,
  AuditEntry,
  AuthnDeps,
  AuthnEvent,
  AuthnSettings,
  EntityStore,
  JtiStore,
  FailureState,
  KmsKeyInfo,
  MafClientStore,
  MafKeyStore,
  PseudonymStore,
  RevocationStore,
  SessionKeyStore,
  RevokedToken,
  TenantKms,
  TenantStore,
  Versioned,
  VersionedPage,
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

export function memoryAttempts(): AttemptStore & { readonly states: Map<string, FailureState>; writes: number } {
  const states = new Map<string, FailureState>()
  const store = {
    states,
    writes: 0,
    get: (key: string) => states.get(key),
    async record(key: string, next: (cur: FailureState | undefined) => FailureState) {
      store.writes++
      const v = next(states.get(key))
      states.set(key, v)
      return v
    },
    async clear(key: string) {
      store.writes++
      states.delete(key)
    },
  }
  return store
}

export function memoryPseudonyms(): PseudonymStore & {
  readonly entries: Map<string, { entityId: string; audience: string }>
} {
  const entries = new Map<string, { entityId: string; audience: string }>()
  return {
    entries,
    async remember(t, p, e) {
      if (!entries.has(`${t}/${p}`)) entries.set(`${t}/${p}`, { ...e })
    },
    resolve: async (t, p) => entries.get(`${t}/${p}`),
  }
}

/** A tenant-scoped versioned map with list-all paging, for the expiring stores. */
class MemoryRecords<T> {
  readonly kv = new MemoryKv<T>()
  key(tenant: string, id: string) {
    return `${tenant}\u0000${id}`
  }
  page(p: { limit: number; after?: string }): VersionedPage<T> {
    const keys = [...this.kv.items.keys()].filter((k) => p.after === undefined || k > p.after).sort()
    const page = keys.slice(0, p.limit)
    const items = page.map((k) => this.kv.items.get(k) as Versioned<T>)
    return keys.length > p.limit ? { items, next: page.at(-1) as string } : { items }
  }
  delete(k: string, revision?: number) {
    const cur = this.kv.items.get(k)
    if (revision !== undefined && cur?.revision !== revision) throw new M2msecError('ERR_REVISION_CONFLICT', 'conflict')
    this.kv.items.delete(k)
  }
}

export function memorySessions(): SessionKeyStore & { readonly records: MemoryRecords<SessionKeyRecord> } {
  const records = new MemoryRecords<SessionKeyRecord>()
  return {
    records,
    create: async (r) => records.kv.create(records.key(r.tenant, r.sessionId), r),
    get: async (t, id) => records.kv.get(records.key(t, id)),
    delete: async (t, id, rev) => records.delete(records.key(t, id), rev),
    list: async (p) => records.page(p),
  }
}

export function memoryMafClients(): MafClientStore {
  const records = new MemoryRecords<MafClientRecord>()
  return {
    get: async (t, id) => records.kv.get(records.key(t, id)),
    async put(r) {
      const k = records.key(r.tenant, r.clientId)
      const cur = records.kv.get(k)
      return cur === undefined ? records.kv.create(k, r) : records.kv.update(k, r, cur.revision)
    },
    async delete(t, id, rev) {
      const k = records.key(t, id)
      if (records.kv.get(k) === undefined) throw new M2msecError('ERR_NOT_FOUND', 'gone')
      records.delete(k, rev)
    },
    list: async (p) => records.page(p),
  }
}

export function memoryMafKeys(): MafKeyStore & { readonly records: MemoryRecords<MafKeyRecord> } {
  const records = new MemoryRecords<MafKeyRecord>()
  return {
    records,
    get: async (t, id) => records.kv.get(records.key(t, id)),
    create: async (r) => records.kv.create(records.key(r.tenant, r.relativeKeyId), r),
    update: async (r, rev) => records.kv.update(records.key(r.tenant, r.relativeKeyId), r, rev),
    delete: async (t, id, rev) => records.delete(records.key(t, id), rev),
    list: async (p) => records.page(p),
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
  grantees?: readonly string[]
  labels?: Readonly<Record<string, string>>
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
    if (this.key(tenant, keyId).state !== 'ENABLED') throw new M2msecError('ERR_KEY_DISABLED', 'key is disabled')
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
    this.calls.push('wrapKey')
    const k = this.key(tenant, keyId)
    if (!k.exportable) throw new M2msecError('ERR_EXPORT_DENIED', 'key is not exportable')
    if (k.state !== 'ENABLED') throw new M2msecError('ERR_KEY_DISABLED', 'key is disabled')
    const recipient = await importJWK(JSON.parse(publicJwk) as JWK, 'ECDH-ES+A256KW')
    return new CompactEncrypt(this.secretOf(tenant, keyId))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(recipient)
  }
  async deriveHmacKey(
    tenant: string,
    baseKeyId: string,
    hkdf: { salt: Uint8Array; info: Uint8Array },
    spec: { labels: Readonly<Record<string, string>>; grantees: readonly string[] },
  ) {
    this.calls.push('deriveKey')
    const base = this.key(tenant, baseKeyId)
    if (base.state !== 'ENABLED') throw new M2msecError('ERR_KEY_DISABLED', 'key is disabled')
    const secret = Buffer.from(hkdfSync('sha256', this.secretOf(tenant, baseKeyId), hkdf.salt, hkdf.info, 32))
    const id = `derived-${++this.n}`
    this.keys.set(`${tenant}/${id}`, {
      id,
      algorithm: 'HMAC_SHA256',
      exportable: false,
      state: 'ENABLED',
      versions: [{ version: 1, createdAt: new Date(), secret }],
      grantees: spec.grantees,
      labels: spec.labels,
    })
    return this.info(this.key(tenant, id))
  }
  async scheduleDestruction(tenant: string, keyId: string) {
    this.calls.push('scheduleDestruction')
    this.key(tenant, keyId).state = 'DESTRUCTION_SCHEDULED'
  }
  stateOf(tenant: string, keyId: string): string {
    return this.key(tenant, keyId).state
  }
  grantsOf(tenant: string, keyId: string): readonly string[] | undefined {
    return this.key(tenant, keyId).grantees
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
  flood: {
    // Off unless a test turns it on: the assertion tables fail on purpose, many times.
    entity: { freeFailures: 1_000_000, baseDelayMs: 1000, maxDelayMs: 60_000 },
    source: { freeFailures: 1_000_000, baseDelayMs: 1000, maxDelayMs: 300_000 },
    failureWindowMs: 900_000,
    entityRate: { perSec: 0, burst: 1 },
    sourceRate: { perSec: 0, burst: 1 },
  },
  session: { defaultLifetimeSec: 3600, maxLifetimeSec: 86_400 },
  maf: { fqdn: 'maf.example.com', maxKeyLifetimeSec: 30 * 86_400, maxClientLifetimeSec: 365 * 86_400 },
}

export interface FakeDeps extends AuthnDeps {
  readonly kms: FakeKms
  readonly jti: ReturnType<typeof memoryJti>
  readonly revocations: ReturnType<typeof memoryRevocations>
  readonly attempts: ReturnType<typeof memoryAttempts>
  readonly pseudonyms: ReturnType<typeof memoryPseudonyms>
  readonly sessions: ReturnType<typeof memorySessions>
  readonly mafKeys: ReturnType<typeof memoryMafKeys>
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
    attempts: memoryAttempts(),
    pseudonyms: memoryPseudonyms(),
    sessions: memorySessions(),
    mafClients: memoryMafClients(),
    mafKeys: memoryMafKeys(),
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
