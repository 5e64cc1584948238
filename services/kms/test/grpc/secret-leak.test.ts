/**
 * Secret-leak sweep of the KMS. Issue requirements: "A test walks every RPC's responses and
 * fails if any contains secret or private key material" and "Secrets never appear in logs,
 * errors, traces, events or API responses".
 *
 * Exhaustive by construction:
 * - `scenarios` has one entry per method of the generated `KeyManagementService` (a `Record`
 *   over its keys, so a new RPC does not type-check without a scenario; the first test also
 *   compares the table with the definition at run time), and every method must have been
 *   called at least once successfully and once with an error.
 * - Keys are imported with KNOWN material through the real path (JWE under a KMS key), in the
 *   software and the SoftHSM2 SE wherever the SE supports the algorithm; derived keys,
 *   transport keys and stored secret values are known too.
 * - Every observable output is collected as an artifact: the response bytes off the wire,
 *   response headers and trailers, error details, the service's log lines, every AUDIT stream
 *   message, every event on `m2msec.evt.>`, every finished span, and every message of the
 *   `kms-keys` and `kms-secrets` KV buckets.
 * - Each artifact is searched for every 16-byte window of every secret: in the raw bytes, in
 *   every hex and base64/base64url run (decoded at every alignment), in JSON byte arrays and in
 *   JSON string values (unescaped); plus the whole secret as hex, HEX, base64 and base64url.
 *
 * Failure messages name the secret (a label) and where it was found, never its bytes.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  createHmac,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  verify as verifySignature,
  type KeyObject,
} from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import * as jose from 'jose'
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base'
import { connectNats, type NatsConnection } from '@m2msec/bus'
import { aes128EcbBlockCipher, hkdfSha256, kdf3gpp, kdf3gppInput, milenage } from '@m2msec/crypto'
import type { ErrorCode } from '@m2msec/errors'
import { fromGrpcError, startTelemetry, type TelemetryShutdown } from '@m2msec/runtime'
import * as pb from '@m2msec/proto/kms/v1'
import { startKmsHarness, type Identity, type KmsHarness } from './kms-harness.ts'

// ---------------------------------------------------------------------------------------------
// Secrets and the detector
// ---------------------------------------------------------------------------------------------

const WINDOW = 16
/** A window of a private key document counts only if at least this many bytes are of the scalar. */
const MIN_SCALAR_BYTES = 8

/** Something that must never be observable, with the 16-byte windows that identify it. */
interface Secret {
  readonly label: string
  readonly bytes: Buffer
  readonly windowStarts: readonly number[]
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i)
}

/** Raw secret bytes: every 16-byte window is secret. */
function rawSecret(label: string, bytes: Buffer): Secret {
  assert.ok(bytes.length >= WINDOW, `${label}: secrets are at least ${WINDOW} bytes`)
  return { label, bytes, windowStarts: range(0, bytes.length - WINDOW + 1) }
}

/**
 * A PKCS#8 document: its header is a constant and its optional public key is published on
 * purpose (GetKey), so only windows holding at least MIN_SCALAR_BYTES of the private scalar are
 * secret. The whole document is still searched in its text encodings.
 */
function pkcs8Secret(label: string, pkcs8: Buffer, scalar: Buffer): Secret {
  const at = pkcs8.indexOf(scalar)
  assert.ok(at >= 0, `${label}: the private scalar is inside the PKCS#8 document`)
  const first = Math.max(0, at - (WINDOW - MIN_SCALAR_BYTES))
  const last = Math.min(pkcs8.length - WINDOW, at + scalar.length - MIN_SCALAR_BYTES)
  return { label, bytes: pkcs8, windowStarts: range(first, last + 1) }
}

/** The scalar `d` and the PKCS#8 DER of a private key, as secrets. */
function privateKeySecrets(label: string, privateKey: KeyObject): { secrets: Secret[]; pkcs8: Buffer; d: Buffer } {
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' })
  const d = Buffer.from(String(privateKey.export({ format: 'jwk' }).d), 'base64url')
  return { secrets: [rawSecret(`${label} private scalar d`, d), pkcs8Secret(`${label} PKCS#8`, pkcs8, d)], pkcs8, d }
}

/** One observable output of the KMS. `allow` names secrets this artifact may carry by design. */
interface Artifact {
  readonly source: string
  readonly bytes: Buffer
  readonly json?: boolean
  readonly allow?: ReadonlySet<string>
}

interface Finding {
  readonly secret: string
  readonly source: string
  readonly form: string
}

interface View {
  readonly form: string
  readonly bytes: Buffer
}

const BASE64_RUN = /[A-Za-z0-9+/_-]{22,}/g
const HEX_RUN = /[0-9a-fA-F]{32,}/g
const NUMBER_LIST = /\d{1,3}(?:\s*,\s*\d{1,3}){15,}/g
const INDEXED_OBJECT = /"\d+"\s*:\s*\d{1,3}(?:\s*,\s*"\d+"\s*:\s*\d{1,3}){15,}/g

/** Byte strings hidden in text: hex and base64 runs at every alignment, JSON byte arrays. */
function decodedViews(text: string): View[] {
  const views: View[] = []
  for (const [run] of text.matchAll(BASE64_RUN)) {
    // Node's base64 decoder accepts both alphabets; a run may start 1-3 characters early.
    for (let off = 0; off < 4; off++) views.push({ form: 'base64', bytes: Buffer.from(run.slice(off), 'base64') })
  }
  for (const [run] of text.matchAll(HEX_RUN)) {
    for (let off = 0; off < 2; off++) views.push({ form: 'hex', bytes: Buffer.from(run.slice(off), 'hex') })
  }
  for (const [run] of text.matchAll(NUMBER_LIST)) {
    views.push({ form: 'number array', bytes: Buffer.from(run.split(',').map((n) => Number(n.trim()))) })
  }
  for (const [run] of text.matchAll(INDEXED_OBJECT)) {
    views.push({
      form: 'indexed object',
      bytes: Buffer.from(run.split(',').map((p) => Number(p.split(':')[1]?.trim()))),
    })
  }
  return views
}

/** Every string (keys and values) of the JSON documents in `text` (one per line, or the whole). */
function jsonStrings(text: string): string[] {
  const docs: unknown[] = []
  try {
    docs.push(JSON.parse(text))
  } catch {
    for (const line of text.split('\n')) {
      try {
        docs.push(JSON.parse(line))
      } catch {
        // Not JSON: the raw and decoded views still cover this line.
      }
    }
  }
  const out: string[] = []
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v)
    else if (Array.isArray(v)) v.forEach(walk)
    else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        out.push(k)
        walk(x)
      }
    }
  }
  docs.forEach(walk)
  return out
}

function viewsOf(a: Artifact): View[] {
  const text = a.bytes.toString('latin1')
  const views: View[] = [{ form: 'raw', bytes: a.bytes }, ...decodedViews(text)]
  if (a.json === true) {
    for (const s of jsonStrings(a.bytes.toString('utf8'))) {
      views.push(
        { form: 'json string', bytes: Buffer.from(s, 'utf8') },
        { form: 'json string', bytes: Buffer.from(s, 'latin1') },
      )
      for (const v of decodedViews(s)) views.push({ form: `json string ${v.form}`, bytes: v.bytes })
    }
  }
  return views
}

/** Finds any window of any secret in an artifact. */
class LeakDetector {
  readonly #windows = new Map<string, string[]>()
  readonly #prefixes = new Set<number>()
  readonly #texts: Array<{ label: string; form: string; text: string }> = []

  constructor(secrets: readonly Secret[]) {
    for (const s of secrets) {
      for (const i of s.windowStarts) {
        const w = s.bytes.subarray(i, i + WINDOW)
        this.#prefixes.add(w.readUInt32LE(0))
        const key = w.toString('latin1')
        const labels = this.#windows.get(key) ?? []
        if (!labels.includes(s.label)) labels.push(s.label)
        this.#windows.set(key, labels)
      }
      const hex = s.bytes.toString('hex')
      this.#texts.push(
        { label: s.label, form: 'hex', text: hex },
        { label: s.label, form: 'HEX', text: hex.toUpperCase() },
        { label: s.label, form: 'base64', text: s.bytes.toString('base64').replace(/=+$/, '') },
        { label: s.label, form: 'base64url', text: s.bytes.toString('base64url') },
      )
    }
  }

  scan(a: Artifact): Finding[] {
    const found = new Map<string, Finding>()
    const note = (labels: readonly string[], form: string) => {
      for (const secret of labels) if (!found.has(secret)) found.set(secret, { secret, source: a.source, form })
    }
    for (const view of viewsOf(a)) {
      const b = view.bytes
      for (let i = 0; i + WINDOW <= b.length; i++) {
        if (!this.#prefixes.has(b.readUInt32LE(i))) continue
        const labels = this.#windows.get(b.toString('latin1', i, i + WINDOW))
        if (labels !== undefined) note(labels, view.form)
      }
    }
    const text = a.bytes.toString('latin1')
    for (const t of this.#texts) if (text.includes(t.text)) note([t.label], t.form)
    return [...found.values()]
  }
}

/** "label in source (form)": safe to print, it holds no secret bytes. */
function describe(f: Finding): string {
  return `${f.secret} in ${f.source} (${f.form})`
}

/** Error details for assertion messages, with long hex/base64 runs elided (they could be secrets). */
function redact(text: string): string {
  return text.replace(BASE64_RUN, '[elided]')
}

// ---------------------------------------------------------------------------------------------
// The recording client
// ---------------------------------------------------------------------------------------------

type Service = typeof pb.KeyManagementService
type Method = keyof Service
type RequestOf<M extends Method> = Parameters<Service[M]['requestSerialize']>[0]
type ResponseOf<M extends Method> = ReturnType<Service[M]['responseDeserialize']>
type Outcome<M extends Method> = { ok: true; res: ResponseOf<M> } | { ok: false; err: grpc.ServiceError }
type Who = Identity | 'anonymous'

const admin: Identity = { tenant: 'acme', principal: 'ops', roles: ['admin'] }
const device: Identity = { tenant: 'acme', principal: 'meter-1', roles: ['device'] }
const otherAdmin: Identity = { tenant: 'globex', principal: 'ops', roles: ['admin'] }

const artifacts: Artifact[] = []
const calls = new Map<Method, { ok: number; err: number }>()
const clients = new Map<string, grpc.Client>()
let callCount = 0

function nameOf(who: Who): string {
  return who === 'anonymous' ? 'anonymous' : `${who.tenant}/${who.principal}`
}

function pushMetadata(source: string, md: grpc.Metadata): void {
  for (const [key, values] of Object.entries(md.toJSON())) {
    for (const v of values)
      artifacts.push({ source: `${source} ${key}`, bytes: Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8') })
  }
}

/** True when a batch response reports an error for some item. */
function hasItemError(res: unknown): boolean {
  const results = (res as { results?: Array<{ outcome?: { $case: string } }> }).results
  return Array.isArray(results) && results.some((r) => r.outcome?.$case === 'error')
}

/**
 * Calls `method` as `who` and records everything that comes back: the response bytes as they
 * came off the wire, response headers, trailers, and the error status.
 */
function call<M extends Method>(
  who: Who,
  method: M,
  request: RequestOf<M>,
  allow: readonly string[] = [],
): Promise<Outcome<M>> {
  const def = pb.KeyManagementService[method]
  const serialize = def.requestSerialize as unknown as (v: RequestOf<M>) => Buffer
  const deserialize = def.responseDeserialize as unknown as (b: Buffer) => ResponseOf<M>
  const client = clients.get(nameOf(who))
  assert.ok(client, `no client for ${nameOf(who)}`)
  const source = `#${++callCount} ${method} as ${nameOf(who)}`
  const stat = calls.get(method) ?? { ok: 0, err: 0 }
  calls.set(method, stat)
  return new Promise((resolve) => {
    let answer: { err: grpc.ServiceError | null; raw: Buffer | undefined } | undefined
    const c = client.makeUnaryRequest(
      def.path,
      serialize,
      (b: Buffer) => b,
      request,
      new grpc.Metadata(),
      {},
      (err, raw) => {
        answer = { err, raw }
      },
    )
    c.on('metadata', (md: grpc.Metadata) => pushMetadata(`${source} response header`, md))
    // grpc-js emits 'status' right after calling the callback.
    c.on('status', (st: grpc.StatusObject) => {
      pushMetadata(`${source} trailer`, st.metadata)
      if (answer?.err) {
        artifacts.push({
          source: `${source} error`,
          bytes: Buffer.from(`${st.details}\n${answer.err.message}`, 'utf8'),
        })
        stat.err++
        resolve({ ok: false, err: answer.err })
        return
      }
      const raw = answer?.raw ?? Buffer.alloc(0)
      artifacts.push({ source: `${source} response`, bytes: raw, allow: new Set(allow) })
      const res = deserialize(raw)
      stat.ok++
      if (hasItemError(res)) stat.err++
      resolve({ ok: true, res })
    })
  })
}

async function ok<M extends Method>(
  who: Who,
  method: M,
  request: RequestOf<M>,
  allow: readonly string[] = [],
): Promise<ResponseOf<M>> {
  const out = await call(who, method, request, allow)
  if (!out.ok)
    assert.fail(`${method} as ${nameOf(who)} failed: ${fromGrpcError(out.err).code} ${redact(out.err.details)}`)
  return out.res
}

async function fails<M extends Method>(who: Who, method: M, request: RequestOf<M>, code: ErrorCode): Promise<void> {
  const out = await call(who, method, request)
  assert.equal(out.ok, false, `${method} as ${nameOf(who)} should fail with ${code}`)
  if (!out.ok)
    assert.equal(fromGrpcError(out.err).code, code, `${method} as ${nameOf(who)}: ${redact(out.err.details)}`)
}

// ---------------------------------------------------------------------------------------------
// Known material
// ---------------------------------------------------------------------------------------------

const Alg = pb.KeyAlgorithm
type ImportedAlgorithm = Exclude<
  pb.KeyAlgorithm,
  pb.KeyAlgorithm.KEY_ALGORITHM_UNSPECIFIED | pb.KeyAlgorithm.UNRECOGNIZED
>
const SHORT: Readonly<Record<ImportedAlgorithm, string>> = {
  [Alg.KEY_ALGORITHM_AES_256_GCM]: 'aes',
  [Alg.KEY_ALGORITHM_HMAC_SHA256]: 'hmac',
  [Alg.KEY_ALGORITHM_EC_P256_SIGN]: 'es',
  [Alg.KEY_ALGORITHM_ED25519_SIGN]: 'ed',
  [Alg.KEY_ALGORITHM_EC_P256_ECDH]: 'ecdh',
  [Alg.KEY_ALGORITHM_MILENAGE]: 'mil',
}
const ALL_ALGORITHMS = Object.keys(SHORT).map(Number) as ImportedAlgorithm[]
const SES = ['software', 'hsm'] as const
type SeName = (typeof SES)[number]

/** A key imported with material the test knows. */
interface KnownKey {
  readonly id: string
  readonly se: SeName
  readonly algorithm: ImportedAlgorithm
  /** What ImportKey received: raw secret, PKCS#8 DER, or K||OPc. */
  readonly material: Buffer
  readonly exportable: boolean
  readonly privateKey?: KeyObject
  readonly publicKey?: KeyObject
}

const secrets: Secret[] = []
const known = new Map<string, KnownKey>()
const transports = new Map<SeName, { id: string; kek: Buffer }>()
const support = new Map<string, { algorithms: Set<pb.KeyAlgorithm>; operations: Set<pb.SecureEnvironmentOperation> }>()
const ciphertexts: Array<{ keyId: string; ciphertext: Buffer; plaintext: Buffer; aad: Buffer }> = []
const storedSecrets = new Map<string, { owner: Identity; label: string; value: Buffer }>()

function makeKnown(se: SeName, algorithm: ImportedAlgorithm): KnownKey {
  const id = `${SHORT[algorithm]}-${se}`
  const asymmetric = (privateKey: KeyObject, publicKey: KeyObject, exportable: boolean): KnownKey => {
    const p = privateKeySecrets(id, privateKey)
    secrets.push(...p.secrets)
    return { id, se, algorithm, material: p.pkcs8, exportable, privateKey, publicKey }
  }
  switch (algorithm) {
    case Alg.KEY_ALGORITHM_AES_256_GCM: {
      const material = randomBytes(32)
      secrets.push(rawSecret(`${id} key`, material))
      return { id, se, algorithm, material, exportable: true }
    }
    case Alg.KEY_ALGORITHM_HMAC_SHA256: {
      const material = randomBytes(48)
      secrets.push(rawSecret(`${id} key`, material))
      return { id, se, algorithm, material, exportable: false }
    }
    case Alg.KEY_ALGORITHM_EC_P256_SIGN: {
      const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      return asymmetric(kp.privateKey, kp.publicKey, se === 'software')
    }
    case Alg.KEY_ALGORITHM_ED25519_SIGN: {
      const kp = generateKeyPairSync('ed25519')
      return asymmetric(kp.privateKey, kp.publicKey, false)
    }
    case Alg.KEY_ALGORITHM_EC_P256_ECDH: {
      const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      return asymmetric(kp.privateKey, kp.publicKey, false)
    }
    case Alg.KEY_ALGORITHM_MILENAGE: {
      const k = randomBytes(16)
      const opc = randomBytes(16)
      secrets.push(
        rawSecret(`${id} K`, k),
        rawSecret(`${id} OPc`, opc),
        rawSecret(`${id} K||OPc`, Buffer.concat([k, opc])),
      )
      return { id, se, algorithm, material: Buffer.concat([k, opc]), exportable: false }
    }
  }
}

function get(id: string): KnownKey {
  const k = known.get(id)
  assert.ok(k, `known key ${id}`)
  return k
}

function supports(se: string, algorithm: pb.KeyAlgorithm, operation: pb.SecureEnvironmentOperation): boolean {
  const s = support.get(se)
  return s !== undefined && s.algorithms.has(algorithm) && s.operations.has(operation)
}

async function a256kw(material: Buffer, kek: Buffer): Promise<string> {
  return new jose.CompactEncrypt(material).setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' }).encrypt(kek)
}

function tamper(jwe: string): string {
  const parts = jwe.split('.')
  const c = parts[3] ?? ''
  parts[3] = (c.startsWith('A') ? 'B' : 'A') + c.slice(1)
  return parts.join('.')
}

/** Exports an exportable key to a fresh P-256 key of the test and opens the JWE. */
async function exportToTest(keyId: string): Promise<Buffer> {
  const r = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const res = await ok(
    admin,
    'wrapKey',
    pb.WrapKeyRequest.fromPartial({
      keyId,
      recipient: { $case: 'publicJwk', value: JSON.stringify(r.publicKey.export({ format: 'jwk' })) },
    }),
  )
  return Buffer.from((await jose.compactDecrypt(res.wrappedKey, r.privateKey)).plaintext)
}

function importRequest(
  jwe: string,
  unwrappingKeyId: string,
  keyId: string,
  algorithm: pb.KeyAlgorithm,
  exportable = false,
): pb.ImportKeyRequest {
  return pb.ImportKeyRequest.fromPartial({
    wrappedKey: jwe,
    unwrappingKeyId,
    keySpec: { keyId, algorithm, exportable, usagePolicy: [] },
  })
}

function createRequest(keyId: string, algorithm: pb.KeyAlgorithm, se: string, exportable = false): pb.CreateKeyRequest {
  return pb.CreateKeyRequest.fromPartial({ keySpec: { keyId, algorithm, exportable }, secureEnvironment: se })
}

/** Plaintexts for Encrypt are not key material: Decrypt may return them. */
function plaintext(tag: string): Buffer {
  return Buffer.from(`meter reading ${tag}: 42 kWh`, 'utf8')
}

const sesIn = (): SeName[] => SES.filter((se) => support.has(se))

// ---------------------------------------------------------------------------------------------
// Scenarios: one entry per RPC, run in this order (later ones use what earlier ones made)
// ---------------------------------------------------------------------------------------------

const Op = pb.SecureEnvironmentOperation
const bytes = (s: string) => Buffer.from(s, 'utf8')

const scenarios: Record<Method, () => Promise<void>> = {
  async listSecureEnvironments() {
    const res = await ok(device, 'listSecureEnvironments', {})
    for (const se of res.secureEnvironments) {
      support.set(se.name, { algorithms: new Set(se.algorithms), operations: new Set(se.operations) })
    }
    assert.deepEqual(sesIn(), [...SES], 'the harness runs the software and the hsm SE')
    await fails('anonymous', 'listSecureEnvironments', {}, 'ERR_UNAUTHENTICATED')
  },

  async createKey() {
    for (const se of sesIn()) {
      await ok(admin, 'createKey', createRequest(`gen-${se}`, Alg.KEY_ALGORITHM_AES_256_GCM, se))
      await ok(admin, 'createKey', createRequest(`wrapper-${se}`, Alg.KEY_ALGORITHM_AES_256_GCM, se))
    }
    await fails(
      admin,
      'createKey',
      createRequest('mil-generated', Alg.KEY_ALGORITHM_MILENAGE, 'software'),
      'ERR_INVALID_ARGUMENT',
    )
    await fails(
      device,
      'createKey',
      createRequest('by-device', Alg.KEY_ALGORITHM_AES_256_GCM, 'software'),
      'ERR_PERMISSION_DENIED',
    )
  },

  async importKey() {
    for (const se of sesIn()) {
      // The transport key: exportable, taken out once so the test can wrap material for it.
      const transportId = `transport-${se}`
      await ok(admin, 'createKey', createRequest(transportId, Alg.KEY_ALGORITHM_AES_256_GCM, se, true))
      const kek = await exportToTest(transportId)
      secrets.push(rawSecret(`${transportId} key`, kek))
      transports.set(se, { id: transportId, kek })
      for (const algorithm of ALL_ALGORITHMS) {
        if (!supports(se, algorithm, Op.SECURE_ENVIRONMENT_OPERATION_UNWRAP)) continue
        const k = makeKnown(se, algorithm)
        const res = await ok(
          admin,
          'importKey',
          importRequest(await a256kw(k.material, kek), transportId, k.id, algorithm, k.exportable),
        )
        assert.equal(res.key?.secureEnvironment, se)
        known.set(k.id, k)
      }
    }
    const imported = (se: SeName) => [...known.values()].filter((k) => k.se === se).map((k) => k.algorithm)
    assert.deepEqual(imported('software').sort(), [...ALL_ALGORITHMS].sort(), 'the software SE imports every algorithm')
    const hsmMinimum: ImportedAlgorithm[] = [
      Alg.KEY_ALGORITHM_AES_256_GCM,
      Alg.KEY_ALGORITHM_HMAC_SHA256,
      Alg.KEY_ALGORITHM_EC_P256_SIGN,
      Alg.KEY_ALGORITHM_MILENAGE,
    ]
    for (const a of hsmMinimum) {
      assert.ok(imported('hsm').includes(a), `the hsm SE imports ${Alg[a]}`)
    }

    const t = transports.get('software')
    assert.ok(t)
    const milenageJwe = await a256kw(get('mil-software').material, t.kek)
    await fails(
      admin,
      'importKey',
      importRequest(milenageJwe, t.id, 'mil-as-ec', Alg.KEY_ALGORITHM_EC_P256_SIGN),
      'ERR_INVALID_ARGUMENT',
    )
    await fails(
      admin,
      'importKey',
      importRequest(milenageJwe, t.id, 'mil-software', Alg.KEY_ALGORITHM_MILENAGE),
      'ERR_ALREADY_EXISTS',
    )
    await fails(
      admin,
      'importKey',
      importRequest(tamper(milenageJwe), t.id, 'mil-tampered', Alg.KEY_ALGORITHM_MILENAGE),
      'ERR_CIPHERTEXT_INVALID',
    )
    await fails(
      device,
      'importKey',
      importRequest(milenageJwe, t.id, 'mil-device', Alg.KEY_ALGORITHM_MILENAGE),
      'ERR_PERMISSION_DENIED',
    )
    await fails(
      otherAdmin,
      'importKey',
      importRequest(milenageJwe, t.id, 'mil-globex', Alg.KEY_ALGORITHM_MILENAGE),
      'ERR_KEY_NOT_FOUND',
    )
    const hmacJwe = await a256kw(get('hmac-software').material, t.kek)
    await fails(
      admin,
      'importKey',
      importRequest(hmacJwe, t.id, 'hmac-as-ed', Alg.KEY_ALGORITHM_ED25519_SIGN),
      'ERR_INVALID_ARGUMENT',
    )
  },

  async unwrapKey() {
    for (const se of sesIn()) {
      const ecdh = known.get(`ecdh-${se}`)
      if (ecdh === undefined) continue
      const { key } = await ok(admin, 'getKey', { keyId: ecdh.id })
      const pub = await jose.importJWK(JSON.parse(key?.versions[0]?.publicJwk ?? '{}') as jose.JWK, 'ECDH-ES+A256KW')
      const id = `uw-${se}`
      const material = randomBytes(32)
      secrets.push(rawSecret(`${id} key`, material))
      const jwe = await new jose.CompactEncrypt(material)
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
        .encrypt(pub)
      await ok(
        admin,
        'unwrapKey',
        pb.UnwrapKeyRequest.fromPartial({
          wrappedKey: jwe,
          unwrappingKeyId: ecdh.id,
          keySpec: { keyId: id, algorithm: Alg.KEY_ALGORITHM_AES_256_GCM, exportable: true },
        }),
      )
      known.set(id, { id, se, algorithm: Alg.KEY_ALGORITHM_AES_256_GCM, material, exportable: true })
      assert.ok((await exportToTest(id)).equals(material), `${id}: the KMS holds the unwrapped material`)
      await fails(
        device,
        'unwrapKey',
        pb.UnwrapKeyRequest.fromPartial({
          wrappedKey: jwe,
          unwrappingKeyId: ecdh.id,
          keySpec: { keyId: `${id}-device`, algorithm: Alg.KEY_ALGORITHM_AES_256_GCM },
        }),
        'ERR_KEY_NOT_FOUND',
      )
      await fails(
        admin,
        'unwrapKey',
        pb.UnwrapKeyRequest.fromPartial({
          wrappedKey: tamper(jwe),
          unwrappingKeyId: ecdh.id,
          keySpec: { keyId: `${id}-tampered`, algorithm: Alg.KEY_ALGORITHM_AES_256_GCM },
        }),
        'ERR_CIPHERTEXT_INVALID',
      )
    }
  },

  async getKey() {
    for (const k of known.values()) {
      const { key } = await ok(admin, 'getKey', { keyId: k.id })
      assert.equal(key?.id, k.id)
      if (k.publicKey !== undefined) {
        const spki = k.publicKey.export({ format: 'der', type: 'spki' })
        assert.ok(key?.versions[0]?.publicKeySpki.equals(spki), `${k.id}: the KMS publishes the imported public key`)
      }
    }
    await fails(otherAdmin, 'getKey', { keyId: 'aes-software' }, 'ERR_KEY_NOT_FOUND')
    await fails(device, 'getKey', { keyId: 'es-software' }, 'ERR_KEY_NOT_FOUND')
  },

  async listKeys() {
    const all = await ok(admin, 'listKeys', pb.ListKeysRequest.fromPartial({ pageSize: 1000 }))
    for (const id of known.keys())
      assert.ok(
        all.keys.some((k) => k.id === id),
        `ListKeys shows ${id}`,
      )
    let pageToken = ''
    let pages = 0
    do {
      const page = await ok(admin, 'listKeys', pb.ListKeysRequest.fromPartial({ pageSize: 4, pageToken }))
      pageToken = page.nextPageToken
      pages++
    } while (pageToken !== '' && pages < 100)
    assert.ok(pages > 1, 'ListKeys pages')
    await ok(device, 'listKeys', pb.ListKeysRequest.fromPartial({}))
    await fails('anonymous', 'listKeys', pb.ListKeysRequest.fromPartial({}), 'ERR_UNAUTHENTICATED')
  },

  async encrypt() {
    for (const k of known.values()) {
      if (k.algorithm !== Alg.KEY_ALGORITHM_AES_256_GCM) continue
      const pt = plaintext(k.id)
      const aad = bytes(`aad ${k.id}`)
      const res = await ok(
        admin,
        'encrypt',
        pb.EncryptRequest.fromPartial({ keyId: k.id, plaintext: pt, associatedData: aad }),
      )
      ciphertexts.push({ keyId: k.id, ciphertext: res.ciphertext, plaintext: pt, aad })
    }
    assert.ok(ciphertexts.length >= 4)
    await fails(
      admin,
      'encrypt',
      pb.EncryptRequest.fromPartial({ keyId: 'hmac-software', plaintext: plaintext('x') }),
      'ERR_KEY_TYPE_MISMATCH',
    )
    await fails(
      admin,
      'encrypt',
      pb.EncryptRequest.fromPartial({ keyId: 'aes-software', plaintext: Buffer.alloc(65 * 1024) }),
      'ERR_PAYLOAD_TOO_LARGE',
    )
  },

  async decrypt() {
    for (const c of ciphertexts) {
      const res = await ok(
        admin,
        'decrypt',
        pb.DecryptRequest.fromPartial({ ciphertext: c.ciphertext, associatedData: c.aad }),
      )
      assert.ok(res.plaintext.equals(c.plaintext))
    }
    const first = ciphertexts[0]
    assert.ok(first)
    await fails(
      admin,
      'decrypt',
      pb.DecryptRequest.fromPartial({ ciphertext: first.ciphertext, associatedData: bytes('wrong') }),
      'ERR_CIPHERTEXT_INVALID',
    )
    await fails(
      otherAdmin,
      'decrypt',
      pb.DecryptRequest.fromPartial({ ciphertext: first.ciphertext, associatedData: first.aad }),
      'ERR_KEY_NOT_FOUND',
    )
  },

  async batchEncrypt() {
    const res = await ok(
      admin,
      'batchEncrypt',
      pb.BatchEncryptRequest.fromPartial({
        items: [
          { keyId: 'aes-software', plaintext: plaintext('b1') },
          { keyId: 'aes-hsm', plaintext: plaintext('b2') },
          { keyId: 'no-such-key', plaintext: plaintext('b3') },
          { keyId: 'hmac-software', plaintext: plaintext('b4') },
        ],
      }),
    )
    assert.deepEqual(
      res.results.map((r) => r.outcome?.$case),
      ['result', 'result', 'error', 'error'],
    )
    await fails(admin, 'batchEncrypt', pb.BatchEncryptRequest.fromPartial({ items: [] }), 'ERR_INVALID_ARGUMENT')
  },

  async batchDecrypt() {
    const res = await ok(
      admin,
      'batchDecrypt',
      pb.BatchDecryptRequest.fromPartial({
        items: [
          ...ciphertexts.map((c) => ({ ciphertext: c.ciphertext, associatedData: c.aad })),
          { ciphertext: bytes('M2C1garbage') },
        ],
      }),
    )
    assert.equal(res.results.at(-1)?.outcome?.$case, 'error')
    assert.equal(res.results.filter((r) => r.outcome?.$case === 'result').length, ciphertexts.length)
    await fails(admin, 'batchDecrypt', pb.BatchDecryptRequest.fromPartial({ items: [] }), 'ERR_INVALID_ARGUMENT')
  },

  async sign() {
    for (const k of known.values()) {
      if (k.algorithm !== Alg.KEY_ALGORITHM_EC_P256_SIGN && k.algorithm !== Alg.KEY_ALGORITHM_ED25519_SIGN) continue
      assert.ok(k.publicKey)
      const message = bytes(`open valve ${k.id}`)
      const res = await ok(admin, 'sign', pb.SignRequest.fromPartial({ keyId: k.id, message }))
      const valid =
        k.algorithm === Alg.KEY_ALGORITHM_ED25519_SIGN
          ? verifySignature(null, message, k.publicKey, res.signature)
          : verifySignature('sha256', message, { key: k.publicKey, dsaEncoding: 'ieee-p1363' }, res.signature)
      assert.ok(valid, `${k.id}: signs with the imported private key`)
    }
    await fails(
      admin,
      'sign',
      pb.SignRequest.fromPartial({ keyId: 'aes-software', message: bytes('x') }),
      'ERR_KEY_TYPE_MISMATCH',
    )
  },

  async verify() {
    const message = bytes('verify me')
    const sig = await ok(admin, 'sign', pb.SignRequest.fromPartial({ keyId: 'es-hsm', message }))
    const res = await ok(
      admin,
      'verify',
      pb.VerifyRequest.fromPartial({ keyId: 'es-hsm', message, signature: sig.signature }),
    )
    assert.equal(res.valid, true)
    await fails(
      admin,
      'verify',
      pb.VerifyRequest.fromPartial({ keyId: 'no-such-key', message, signature: sig.signature }),
      'ERR_KEY_NOT_FOUND',
    )
  },

  async batchSign() {
    const res = await ok(
      admin,
      'batchSign',
      pb.BatchSignRequest.fromPartial({
        items: [
          { keyId: 'es-software', message: bytes('b1') },
          { keyId: 'ed-software', message: bytes('b2') },
          { keyId: 'aes-software', message: bytes('b3') },
        ],
      }),
    )
    assert.deepEqual(
      res.results.map((r) => r.outcome?.$case),
      ['result', 'result', 'error'],
    )
    await fails(admin, 'batchSign', pb.BatchSignRequest.fromPartial({ items: [] }), 'ERR_INVALID_ARGUMENT')
  },

  async mac() {
    for (const k of known.values()) {
      if (k.algorithm !== Alg.KEY_ALGORITHM_HMAC_SHA256) continue
      const res = await ok(admin, 'mac', pb.MacRequest.fromPartial({ keyId: k.id, data: bytes('probe') }))
      assert.ok(
        res.mac.equals(createHmac('sha256', k.material).update('probe').digest()),
        `${k.id}: MACs with the imported key`,
      )
    }
    await fails(
      admin,
      'mac',
      pb.MacRequest.fromPartial({ keyId: 'es-software', data: bytes('x') }),
      'ERR_KEY_TYPE_MISMATCH',
    )
  },

  async verifyMac() {
    const m = await ok(admin, 'mac', pb.MacRequest.fromPartial({ keyId: 'hmac-hsm', data: bytes('y') }))
    const res = await ok(
      admin,
      'verifyMac',
      pb.VerifyMacRequest.fromPartial({ keyId: 'hmac-hsm', data: bytes('y'), mac: m.mac }),
    )
    assert.equal(res.valid, true)
    await fails(
      device,
      'verifyMac',
      pb.VerifyMacRequest.fromPartial({ keyId: 'hmac-hsm', data: bytes('y'), mac: m.mac }),
      'ERR_KEY_NOT_FOUND',
    )
  },

  async batchMac() {
    const res = await ok(
      admin,
      'batchMac',
      pb.BatchMacRequest.fromPartial({
        items: [
          { keyId: 'hmac-software', data: bytes('b1') },
          { keyId: 'hmac-hsm', data: bytes('b2') },
          { keyId: 'aes-hsm', data: bytes('b3') },
        ],
      }),
    )
    assert.deepEqual(
      res.results.map((r) => r.outcome?.$case),
      ['result', 'result', 'error'],
    )
    await fails(admin, 'batchMac', pb.BatchMacRequest.fromPartial({ items: [] }), 'ERR_INVALID_ARGUMENT')
  },

  async deriveKey() {
    const params = [bytes('gba-me'), randomBytes(16), bytes('user@ims.example'), bytes('naf.example')]
    const fc = 1
    const derived: Array<{ id: string; bytes: Buffer }> = []
    for (const se of sesIn()) {
      const base = get(`hmac-${se}`)
      const id = `k3-${se}`
      await ok(
        admin,
        'deriveKey',
        pb.DeriveKeyRequest.fromPartial({
          baseKeyId: base.id,
          kdf: { $case: 'kdf3gpp', value: { fc, params } },
          keySpec: { keyId: id, algorithm: Alg.KEY_ALGORITHM_HMAC_SHA256 },
        }),
      )
      derived.push({ id, bytes: Buffer.from(kdf3gpp(base.material, kdf3gppInput(fc, params))) })
    }
    const salt = randomBytes(16)
    const info = bytes('m2msec leak test')
    await ok(
      admin,
      'deriveKey',
      pb.DeriveKeyRequest.fromPartial({
        baseKeyId: 'aes-software',
        kdf: { $case: 'hkdf', value: { salt, info } },
        keySpec: { keyId: 'hk-software', algorithm: Alg.KEY_ALGORITHM_HMAC_SHA256, exportable: true },
      }),
    )
    derived.push({ id: 'hk-software', bytes: Buffer.from(hkdfSha256(get('aes-software').material, salt, info, 32)) })
    for (const d of derived) {
      secrets.push(rawSecret(`${d.id} derived key`, d.bytes))
      const m = await ok(admin, 'mac', pb.MacRequest.fromPartial({ keyId: d.id, data: bytes('probe') }))
      assert.ok(
        m.mac.equals(createHmac('sha256', d.bytes).update('probe').digest()),
        `${d.id}: the test knows the derived bytes`,
      )
    }
    assert.ok((await exportToTest('hk-software')).equals(derived.at(-1)?.bytes ?? Buffer.alloc(0)))

    await fails(
      admin,
      'deriveKey',
      pb.DeriveKeyRequest.fromPartial({
        baseKeyId: 'hmac-hsm',
        kdf: { $case: 'hkdf', value: { salt, info } },
        keySpec: { keyId: 'hk-hsm', algorithm: Alg.KEY_ALGORITHM_HMAC_SHA256 },
      }),
      'ERR_SE_NOT_SUPPORTED',
    )
    await fails(
      admin,
      'deriveKey',
      pb.DeriveKeyRequest.fromPartial({
        baseKeyId: 'hmac-software',
        kdf: { $case: 'kdf3gpp', value: { fc, params } },
        keySpec: { keyId: 'k3-exportable', algorithm: Alg.KEY_ALGORITHM_HMAC_SHA256, exportable: true },
      }),
      'ERR_EXPORT_DENIED',
    )
  },

  async wrapKey() {
    for (const se of sesIn()) {
      const res = await ok(
        admin,
        'wrapKey',
        pb.WrapKeyRequest.fromPartial({ keyId: `aes-${se}`, recipient: { $case: 'kmsKeyId', value: `wrapper-${se}` } }),
      )
      assert.equal(jose.decodeProtectedHeader(res.wrappedKey).alg, 'A256KW')
      assert.ok(
        (await exportToTest(`aes-${se}`)).equals(get(`aes-${se}`).material),
        `aes-${se}: exported material is the imported one`,
      )
    }
    await ok(
      admin,
      'wrapKey',
      pb.WrapKeyRequest.fromPartial({
        keyId: 'es-software',
        recipient: { $case: 'kmsKeyId', value: 'wrapper-software' },
      }),
    )
    const es = get('es-software')
    const exported = createPrivateKey({ key: await exportToTest('es-software'), format: 'der', type: 'pkcs8' })
    // Compared without assert.equal, whose diff would print the scalars.
    assert.ok(
      exported.export({ format: 'jwk' }).d === es.privateKey?.export({ format: 'jwk' }).d,
      'es-software: the exported private key is the imported one',
    )

    await fails(
      admin,
      'wrapKey',
      pb.WrapKeyRequest.fromPartial({
        keyId: 'hmac-software',
        recipient: { $case: 'kmsKeyId', value: 'wrapper-software' },
      }),
      'ERR_EXPORT_DENIED',
    )
    // EXPORT does not apply to MILENAGE keys at all (OPERATIONS_BY_ALGORITHM), hence the type mismatch.
    await fails(
      admin,
      'wrapKey',
      pb.WrapKeyRequest.fromPartial({
        keyId: 'mil-software',
        recipient: { $case: 'kmsKeyId', value: 'wrapper-software' },
      }),
      'ERR_KEY_TYPE_MISMATCH',
    )
    await fails(
      admin,
      'wrapKey',
      pb.WrapKeyRequest.fromPartial({ keyId: 'aes-software', recipient: { $case: 'kmsKeyId', value: 'wrapper-hsm' } }),
      'ERR_FAILED_PRECONDITION',
    )
    // A recipient JWK carrying a private key (the known ECDH scalar) is refused without echoing it.
    const withD = JSON.stringify(get('ecdh-software').privateKey?.export({ format: 'jwk' }))
    await fails(
      admin,
      'wrapKey',
      pb.WrapKeyRequest.fromPartial({ keyId: 'aes-software', recipient: { $case: 'publicJwk', value: withD } }),
      'ERR_INVALID_ARGUMENT',
    )
  },

  async milenage() {
    const input = { rand: randomBytes(16), sqn: randomBytes(6), amf: Buffer.from([0x80, 0x00]) }
    for (const se of sesIn()) {
      const k = get(`mil-${se}`)
      const res = await ok(admin, 'milenage', pb.MilenageRequest.fromPartial({ keyId: k.id, ...input }))
      const want = await milenage(aes128EcbBlockCipher(k.material.subarray(0, 16)), k.material.subarray(16), input)
      assert.ok(
        res.res.equals(want.res) && res.ck.equals(want.ck) && res.macA.equals(want.macA),
        `${k.id}: computes with the imported K and OPc`,
      )
    }
    await fails(
      admin,
      'milenage',
      pb.MilenageRequest.fromPartial({ keyId: 'mil-software', rand: Buffer.alloc(8), sqn: input.sqn, amf: input.amf }),
      'ERR_INVALID_ARGUMENT',
    )
    await fails(
      admin,
      'milenage',
      pb.MilenageRequest.fromPartial({ keyId: 'aes-software', ...input }),
      'ERR_KEY_TYPE_MISMATCH',
    )
  },

  async generateRandom() {
    const res = await ok(device, 'generateRandom', { length: 32 })
    assert.equal(res.data.length, 32)
    await fails(device, 'generateRandom', { length: 0 }, 'ERR_INVALID_ARGUMENT')
  },

  async rotateKey() {
    for (const se of sesIn()) {
      const res = await ok(admin, 'rotateKey', { keyId: `gen-${se}` })
      assert.equal(res.key?.primaryVersion, 2)
    }
    await fails(admin, 'rotateKey', { keyId: 'mil-software' }, 'ERR_FAILED_PRECONDITION')
    await fails(device, 'rotateKey', { keyId: 'gen-software' }, 'ERR_PERMISSION_DENIED')
  },

  async setKeyState() {
    const set = (keyId: string, state: pb.KeyState, destroyAfter?: Date) =>
      pb.SetKeyStateRequest.fromPartial({ keyId, state, ...(destroyAfter === undefined ? {} : { destroyAfter }) })
    await ok(admin, 'setKeyState', set('gen-software', pb.KeyState.KEY_STATE_DISABLED))
    await ok(admin, 'setKeyState', set('gen-software', pb.KeyState.KEY_STATE_ENABLED))
    await ok(admin, 'setKeyState', set('gen-hsm', pb.KeyState.KEY_STATE_DESTRUCTION_SCHEDULED))
    await ok(admin, 'setKeyState', set('gen-hsm', pb.KeyState.KEY_STATE_ENABLED))
    await fails(
      admin,
      'setKeyState',
      set('gen-software', pb.KeyState.KEY_STATE_DESTRUCTION_SCHEDULED, new Date()),
      'ERR_INVALID_ARGUMENT',
    )
    await fails(device, 'setKeyState', set('gen-software', pb.KeyState.KEY_STATE_DISABLED), 'ERR_PERMISSION_DENIED')
  },

  async putSecret() {
    const values: Array<[Identity, string, Buffer]> = [
      [admin, 'wifi', bytes(`wifi passphrase ${randomBytes(12).toString('hex')} (do not log)`)],
      [admin, 'blob', randomBytes(40)],
      [device, 'pin', bytes(`device pin ${randomBytes(10).toString('hex')} (do not log)`)],
    ]
    for (const [owner, name, value] of values) {
      const label = `secret ${nameOf(owner)}:${name}`
      secrets.push(rawSecret(label, value))
      storedSecrets.set(`${nameOf(owner)}:${name}`, { owner, label, value })
      const res = await ok(owner, 'putSecret', pb.PutSecretRequest.fromPartial({ name, value }))
      assert.equal(res.secret?.name, name)
    }
    const wifi = storedSecrets.get(`${nameOf(admin)}:wifi`)?.value ?? Buffer.alloc(0)
    await fails(
      admin,
      'putSecret',
      pb.PutSecretRequest.fromPartial({ name: '../wifi', value: wifi }),
      'ERR_INVALID_ARGUMENT',
    )
    const big = Buffer.concat(Array.from({ length: Math.ceil((64 * 1024 + 1) / wifi.length) }, () => wifi))
    await fails(
      admin,
      'putSecret',
      pb.PutSecretRequest.fromPartial({ name: 'big', value: big }),
      'ERR_PAYLOAD_TOO_LARGE',
    )
  },

  async getSecret() {
    for (const s of storedSecrets.values()) {
      const name = s.label.slice(s.label.lastIndexOf(':') + 1)
      const res = await ok(s.owner, 'getSecret', { name }, [s.label])
      assert.ok(res.value.equals(s.value), `${s.label}: GetSecret returns the stored value`)
    }
    await fails(device, 'getSecret', { name: 'wifi' }, 'ERR_SECRET_NOT_FOUND')
    await fails(otherAdmin, 'getSecret', { name: 'wifi' }, 'ERR_SECRET_NOT_FOUND')
  },

  async listSecrets() {
    const res = await ok(admin, 'listSecrets', pb.ListSecretsRequest.fromPartial({}))
    assert.deepEqual(res.secrets.map((s) => s.name).sort(), ['blob', 'wifi'])
    await ok(device, 'listSecrets', pb.ListSecretsRequest.fromPartial({}))
    await fails('anonymous', 'listSecrets', pb.ListSecretsRequest.fromPartial({}), 'ERR_UNAUTHENTICATED')
  },

  async deleteSecret() {
    await ok(admin, 'putSecret', pb.PutSecretRequest.fromPartial({ name: 'tmp', value: bytes('short-lived') }))
    await ok(admin, 'deleteSecret', { name: 'tmp' })
    await fails(admin, 'deleteSecret', { name: 'tmp' }, 'ERR_SECRET_NOT_FOUND')
    await fails(device, 'deleteSecret', { name: 'wifi' }, 'ERR_SECRET_NOT_FOUND')
  },
}

// ---------------------------------------------------------------------------------------------
// Harness, observers and collection
// ---------------------------------------------------------------------------------------------

let h: KmsHarness
let observer: NatsConnection
let stopTelemetry: TelemetryShutdown
const spans = new InMemorySpanExporter()
const events: Artifact[] = []

before(async () => {
  stopTelemetry = startTelemetry({ serviceName: 'kms-leak-test', enabled: true, traceExporter: spans })
  h = await startKmsHarness({ pkcs11: true })
  observer = await connectNats({ servers: h.nats.url, name: 'leak-observer' })
  observer.subscribe('m2msec.evt.>', {
    callback: (err, msg) => {
      if (err !== null) return
      const headers =
        msg.headers === undefined
          ? ''
          : msg.headers
              .keys()
              .map((k) => `${k}: ${msg.headers?.values(k).join(',')}`)
              .join('\n')
      events.push({
        source: `event ${msg.subject}`,
        bytes: Buffer.concat([Buffer.from(msg.data), Buffer.from(`\n${headers}`)]),
        json: true,
      })
    },
  })
  await observer.flush()
  for (const who of [admin, device, otherAdmin])
    clients.set(nameOf(who), new grpc.Client(h.target, await h.credentials(who)))
  clients.set('anonymous', new grpc.Client(h.target, grpc.credentials.createSsl(Buffer.from(h.caPem))))
})

after(async () => {
  for (const c of clients.values()) c.close()
  await observer?.drain()
  await h?.stop()
  await stopTelemetry?.()
})

/** Every message of a stream, oldest first. */
async function streamMessages(
  jsm: JetStreamManager,
  stream: string,
): Promise<Array<{ seq: number; subject: string; data: Uint8Array }>> {
  const info = await jsm.streams.info(stream)
  const out: Array<{ seq: number; subject: string; data: Uint8Array }> = []
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null)
    if (m !== null) out.push({ seq, subject: m.subject, data: m.data })
  }
  return out
}

interface Collected {
  readonly artifacts: readonly Artifact[]
  readonly findings: readonly Finding[]
  readonly refs: ReadonlyMap<string, readonly string[]>
  readonly counts: Readonly<Record<string, number>>
}

let collected: Promise<Collected> | undefined

/** After the scenarios: adds logs, audit, events, spans and KV messages, then scans everything once. */
function collect(): Promise<Collected> {
  collected ??= (async () => {
    // Events are published in the background after each write.
    await new Promise((r) => setTimeout(r, 300))
    await observer.flush()
    const all: Artifact[] = [...artifacts, ...events]
    const counts: Record<string, number> = { rpc: artifacts.length, events: events.length }
    h.logs.forEach((line, i) => all.push({ source: `log line ${i + 1}`, bytes: Buffer.from(line, 'utf8'), json: true }))
    counts.logs = h.logs.length
    for (const s of spans.getFinishedSpans()) {
      const view = {
        name: s.name,
        attributes: s.attributes,
        status: s.status,
        events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
        links: s.links.map((l) => l.attributes),
      }
      all.push({ source: `span ${s.name}`, bytes: Buffer.from(JSON.stringify(view), 'utf8'), json: true })
    }
    counts.spans = spans.getFinishedSpans().length
    const jsm = await jetstreamManager(observer)
    const audit = await streamMessages(jsm, 'AUDIT')
    for (const m of audit) all.push({ source: `AUDIT #${m.seq} ${m.subject}`, bytes: Buffer.from(m.data), json: true })
    counts.audit = audit.length
    const refs = new Map<string, string[]>()
    for (const bucket of ['kms-keys', 'kms-secrets']) {
      const msgs = await streamMessages(jsm, `KV_${bucket}`)
      counts[bucket] = msgs.length
      for (const m of msgs) {
        all.push({ source: `KV ${bucket} #${m.seq} ${m.subject}`, bytes: Buffer.from(m.data), json: true })
        if (bucket !== 'kms-keys' || m.data.length === 0) continue
        const rec = JSON.parse(Buffer.from(m.data).toString('utf8')) as { id: string; versions: Array<{ ref: string }> }
        refs.set(rec.id, [...(refs.get(rec.id) ?? []), ...rec.versions.map((v) => v.ref)])
      }
    }
    const detector = new LeakDetector(secrets)
    const findings = all.flatMap((a) => detector.scan(a).filter((f) => a.allow?.has(f.secret) !== true))
    const allowedFindings = all.flatMap((a) => detector.scan(a).filter((f) => a.allow?.has(f.secret) === true))
    return {
      artifacts: all,
      findings: [...findings, ...allowedFindings.map((f) => ({ ...f, form: `allowed:${f.form}` }))],
      refs,
      counts,
    }
  })()
  return collected
}

const leaks = (c: Collected) => c.findings.filter((f) => !f.form.startsWith('allowed:'))

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

test('the detector finds a planted secret in every encoding, and nothing in public key data', () => {
  const raw = randomBytes(32)
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pk = privateKeySecrets('planted-ec', kp.privateKey)
  const detector = new LeakDetector([rawSecret('planted', raw), ...pk.secrets])
  const window = raw.subarray(7, 7 + WINDOW)
  const pem = String(kp.privateKey.export({ format: 'pem', type: 'pkcs8' }))
  const planted: Array<[string, Buffer, boolean?]> = [
    ['raw in binary', Buffer.concat([randomBytes(100), raw, randomBytes(50)])],
    ['HEX in JSON', bytes(JSON.stringify({ k: raw.toString('hex').toUpperCase() }))],
    ['base64 after one character', bytes(`x${raw.toString('base64')}`)],
    ['base64url of an unaligned window', bytes(`"v":"${window.toString('base64url')}"`)],
    ['escaped base64 in JSON', bytes(JSON.stringify({ k: raw.toString('base64') }).replaceAll('/', '\\/')), true],
    ['Buffer.toJSON', bytes(JSON.stringify({ key: raw }))],
    ['Uint8Array as JSON object', bytes(JSON.stringify({ key: new Uint8Array(raw) }))],
    ['PKCS#8 PEM in a log line', bytes(JSON.stringify({ msg: pem })), true],
    ['JWK d', bytes(JSON.stringify(kp.privateKey.export({ format: 'jwk' })))],
  ]
  for (const [name, b, json] of planted) {
    assert.ok(
      detector.scan({ source: name, bytes: b, ...(json === true ? { json } : {}) }).length > 0,
      `detects ${name}`,
    )
  }
  const clean: Artifact[] = [
    { source: 'random', bytes: randomBytes(4096) },
    { source: 'SPKI', bytes: kp.publicKey.export({ format: 'der', type: 'spki' }) },
    { source: 'public JWK', bytes: bytes(JSON.stringify(kp.publicKey.export({ format: 'jwk' }))), json: true },
    { source: 'public PEM', bytes: bytes(String(kp.publicKey.export({ format: 'pem', type: 'spki' }))) },
  ]
  for (const a of clean) assert.deepEqual(detector.scan(a).map(describe), [], `no false positive on ${a.source}`)
})

test('every KeyManagement RPC has a scenario, and each ran with a success and an error', async () => {
  assert.deepEqual(Object.keys(scenarios).sort(), Object.keys(pb.KeyManagementService).sort(), 'one scenario per RPC')
  for (const [method, run] of Object.entries(scenarios)) {
    await test(method, run)
  }
  for (const method of Object.keys(pb.KeyManagementService) as Method[]) {
    const stat = calls.get(method)
    assert.ok(stat !== undefined && stat.ok > 0, `${method}: at least one successful call`)
    assert.ok(stat.err > 0, `${method}: at least one error (call or batch item)`)
  }
})

test('no response, header, trailer, error, log line, audit record, event, span or KV record holds key material', async () => {
  const c = await collect()
  for (const kind of ['rpc', 'events', 'logs', 'spans', 'audit', 'kms-keys', 'kms-secrets']) {
    assert.ok((c.counts[kind] ?? 0) > 0, `collected some ${kind}`)
  }
  assert.ok(
    c.artifacts.some((a) => a.source.startsWith('event ') && a.source.endsWith('.key.created')),
    'key.created events were seen',
  )
  assert.ok(
    c.artifacts.some((a) => a.source.startsWith('AUDIT') && a.bytes.includes('kms.GetSecret')),
    'GetSecret was audited',
  )
  assert.ok(secrets.length >= 30, `searched for ${secrets.length} secrets`)
  assert.deepEqual(leaks(c).map(describe), [])
})

test("GetSecret returns the owner's own value; no other output carries a stored secret", async () => {
  const c = await collect()
  for (const s of storedSecrets.values()) {
    const where = c.findings.filter((f) => f.secret === s.label)
    assert.ok(
      where.some((f) => f.form.startsWith('allowed:') && / getSecret as /.test(f.source)),
      `${s.label} is in its GetSecret response`,
    )
    assert.deepEqual(where.filter((f) => !f.form.startsWith('allowed:')).map(describe), [])
    assert.ok(
      where.every((f) => f.source.includes(`getSecret as ${nameOf(s.owner)} `)),
      `${s.label} is returned only to its owner`,
    )
  }
})

test('the SE refs stored in kms-keys do not contain the raw key material', async () => {
  const c = await collect()
  const detector = new LeakDetector(secrets)
  const ids = [...known.keys(), ...[...transports.values()].map((t) => t.id), 'k3-software', 'k3-hsm', 'hk-software']
  let checked = 0
  for (const id of ids) {
    const refs = c.refs.get(id) ?? []
    assert.ok(refs.length > 0, `${id} has a stored ref`)
    for (const ref of refs) {
      assert.deepEqual(detector.scan({ source: `ref of ${id}`, bytes: Buffer.from(ref, 'utf8') }).map(describe), [])
      checked++
    }
  }
  assert.ok(checked >= ids.length)
})
