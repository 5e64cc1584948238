/** Key envelopes (docs/groups-protocol.md §4) and the byte encodings and labels (§2, §3). */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose'
import { hkdfExpand, hkdfExtract } from '@m2msec/crypto'
import {
  createLkhTree,
  deriveMemberWrapBaseKey,
  deriveMemberWrapKey,
  encodeFields,
  envelopeHeader,
  formatKid,
  memberWrapBaseInfo,
  memberWrapKeyInput,
  openEnvelope,
  parseKid,
  readEnvelopeHeader,
  sealEnvelope,
  sealRekeyPlan,
  uint64,
} from '../src/index.ts'
import { credentialOf, seededRandom } from './helpers.ts'

const V = JSON.parse(readFileSync(new URL('./vectors/groups-v1.json', import.meta.url), 'utf8')) as {
  credentialHex: string
  groupId: string
  memberWrapKey: { baseInfoHex: string; baseKeyHex: string; epoch: number; infoHex: string; keyHex: string }
  envelope: { wrappingKid: string; wrappedKid: string; epoch: number; groupKey: boolean; keyHex: string; jwe: string }
}
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v)

describe('encodings and key names', () => {
  test('encodeFields: uint32 length prefixes, UTF-8 strings, uint64 numbers', () => {
    assert.equal(
      hex(encodeFields('ab', 1, Uint8Array.of(9))),
      '000000026162' + '000000080000000000000001' + '0000000109',
    )
    assert.equal(hex(encodeFields('é')), '00000002c3a9')
    assert.equal(hex(uint64(2 ** 40 + 5)), '0000010000000005')
    assert.throws(() => uint64(-1), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => uint64(1.5), { code: 'ERR_INVALID_ARGUMENT' })
  })

  test('kid = <id>#<version>; the version follows the last #', () => {
    assert.equal(formatKid({ id: 'node:2.1', version: 9 }), 'node:2.1#9')
    assert.deepEqual(parseKid('member:a#b#12'), { id: 'member:a#b', version: 12 })
    for (const bad of ['node:1.0', '#3', 'x#', 'x#01', 'x#-1', 'x#1.5']) {
      assert.throws(() => parseKid(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad)
    }
  })
})

/** The same two steps in Python's hmac/hashlib (an implementation independent of node:crypto's HKDF). */
const PYTHON_KW = `
import hashlib, hmac, json, sys
r = json.load(sys.stdin)
cred, base_info, info = (bytes.fromhex(r[k]) for k in ("cred", "baseInfo", "info"))
prk = hmac.new(b"", cred, hashlib.sha256).digest()
km = hmac.new(prk, base_info + b"\\x01", hashlib.sha256).digest()
kw = hmac.new(km, info + b"\\x01", hashlib.sha256).digest()
print(json.dumps({"km": km.hex(), "kw": kw.hex()}))
`

function pythonWrapKey(cred: string, baseInfo: string, info: string): { km: string; kw: string } {
  const out = execFileSync('/usr/bin/python3', ['-c', PYTHON_KW], {
    input: JSON.stringify({ cred, baseInfo, info }),
    timeout: 30_000,
  })
  return JSON.parse(out.toString()) as { km: string; kw: string }
}

describe('member wrap key', () => {
  const cred = bytes(V.credentialHex)
  const W = V.memberWrapKey

  test('KM = HKDF(credential, "", fields(label, groupId)); KW = HMAC(KM, fields(label, groupId, epoch) || 01): pinned vector', () => {
    assert.equal(hex(memberWrapBaseInfo(V.groupId)), W.baseInfoHex)
    assert.equal(hex(encodeFields('m2msec/groups/v1/member-wrap-key', V.groupId)), W.baseInfoHex)
    assert.equal(hex(encodeFields('m2msec/groups/v1/member-wrap-key', V.groupId, W.epoch)), W.infoHex)
    assert.equal(hex(memberWrapKeyInput(V.groupId, W.epoch)), W.infoHex + '01')
    assert.equal(hex(deriveMemberWrapBaseKey(cred, V.groupId)), W.baseKeyHex)
    assert.equal(hex(deriveMemberWrapKey(cred, V.groupId, W.epoch)), W.keyHex)
    // The same values through the step-by-step RFC 5869 functions of @m2msec/crypto.
    const km = hkdfExpand(hkdfExtract(new Uint8Array(0), cred), bytes(W.baseInfoHex), 32)
    assert.equal(hex(km), W.baseKeyHex)
    assert.equal(hex(hkdfExpand(km, bytes(W.infoHex), 32)), W.keyHex)
  })

  test('independent Python hmac/hashlib gives the same KM and KW (vector and a random credential)', () => {
    const py = pythonWrapKey(V.credentialHex, W.baseInfoHex, W.infoHex)
    assert.deepEqual(py, { km: W.baseKeyHex, kw: W.keyHex })
    const other = randomBytes(48)
    const gid = 'tenant-a/méters#1'
    const info = encodeFields('m2msec/groups/v1/member-wrap-key', gid, 2 ** 40 + 3)
    const mine = pythonWrapKey(hex(other), hex(memberWrapBaseInfo(gid)), hex(info))
    assert.equal(hex(deriveMemberWrapKey(other, gid, 2 ** 40 + 3)), mine.kw)
    assert.equal(hex(deriveMemberWrapBaseKey(other, gid)), mine.km)
  })

  test('the single-step HKDF of the first draft is not the wrap key any more', () => {
    const singleStep = hkdfExpand(hkdfExtract(new Uint8Array(0), cred), bytes(W.infoHex), 32)
    assert.notEqual(hex(singleStep), W.keyHex)
  })

  test('differs per epoch, group and credential; rejects short credentials, bad epochs and ids', () => {
    const c = credentialOf('m1')
    const k = hex(deriveMemberWrapKey(c, 'g', 1))
    assert.notEqual(hex(deriveMemberWrapKey(c, 'g', 2)), k)
    assert.notEqual(hex(deriveMemberWrapKey(c, 'h', 1)), k)
    assert.notEqual(hex(deriveMemberWrapKey(credentialOf('m2'), 'g', 1)), k)
    assert.throws(() => deriveMemberWrapKey(new Uint8Array(8), 'g', 1), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => deriveMemberWrapKey(c, 'g', -1), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => deriveMemberWrapKey(c, '', 1), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => memberWrapKeyInput('g', 1.5), { code: 'ERR_INVALID_ARGUMENT' })
  })
})

describe('sealEnvelope / openEnvelope', () => {
  const kek = bytes(V.memberWrapKey.keyHex)
  const content = {
    groupId: V.groupId,
    epoch: V.envelope.epoch,
    wrappingKid: V.envelope.wrappingKid,
    wrappingKey: kek,
    wrappedKid: V.envelope.wrappedKid,
    key: bytes(V.envelope.keyHex),
    groupKey: V.envelope.groupKey,
  }
  /** CEK 0x40…, IV 0x41…, as in the vector. */
  const fixedRandom = (): ((n: number) => Uint8Array) => {
    let c = 0
    return (n) => fill(n, 0x40 + c++)
  }

  test('pinned vector, and byte-identical to jose CompactEncrypt with the same CEK and IV', async () => {
    const ours = sealEnvelope(content, fixedRandom())
    assert.equal(ours, V.envelope.jwe)
    const theirs = await new CompactEncrypt(content.key)
      .setProtectedHeader({ ...envelopeHeader(content) })
      .setContentEncryptionKey(fill(32, 0x40))
      .setInitializationVector(fill(12, 0x41))
      .encrypt(kek)
    assert.equal(ours, theirs)
  })

  test('jose opens it with the wrapping key; the header names both keys', async () => {
    const jwe = sealEnvelope(content, seededRandom('env'))
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, kek)
    assert.equal(hex(plaintext), V.envelope.keyHex)
    assert.deepEqual(protectedHeader, {
      alg: 'A256KW',
      enc: 'A256GCM',
      kid: 'member:member-7#7',
      gid: 'group-1',
      epoch: 7,
      wkid: 'node:3.0#7',
      gk: true,
    })
    const opened = await openEnvelope(jwe, kek)
    assert.equal(hex(opened.key), V.envelope.keyHex)
    assert.equal(opened.header.wkid, 'node:3.0#7')
  })

  test('openEnvelope opens what jose seals', async () => {
    const jwe = await new CompactEncrypt(content.key).setProtectedHeader({ ...envelopeHeader(content) }).encrypt(kek)
    assert.equal(hex((await openEnvelope(jwe, kek)).key), V.envelope.keyHex)
  })

  test('wrong key, tampering and foreign JWEs fail with ERR_CIPHERTEXT_INVALID', async () => {
    const jwe = sealEnvelope(content, seededRandom('env2'))
    await assert.rejects(openEnvelope(jwe, fill(32, 1)), { code: 'ERR_CIPHERTEXT_INVALID' })
    // Move the envelope to another epoch in its header: GCM authenticates the header.
    const [h, ...rest] = jwe.split('.')
    const header = { ...decodeProtectedHeader(jwe), epoch: 8 }
    const moved = [Buffer.from(JSON.stringify(header)).toString('base64url'), ...rest].join('.')
    assert.notEqual(moved.split('.')[0], h)
    await assert.rejects(openEnvelope(moved, kek), { code: 'ERR_CIPHERTEXT_INVALID' })
    const parts = jwe.split('.')
    const ct = Buffer.from(parts[3]!, 'base64url')
    ct[0]! ^= 1
    parts[3] = ct.toString('base64url')
    await assert.rejects(openEnvelope(parts.join('.'), kek), { code: 'ERR_CIPHERTEXT_INVALID' })
    await assert.rejects(openEnvelope('not.a.jwe', kek), { code: 'ERR_CIPHERTEXT_INVALID' })
    const dir = await new CompactEncrypt(fill(32, 1)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(kek)
    assert.throws(() => readEnvelopeHeader(dir), { code: 'ERR_CIPHERTEXT_INVALID' })
    // A payload that is not a 32-byte key.
    const long = await new CompactEncrypt(fill(33, 1)).setProtectedHeader({ ...envelopeHeader(content) }).encrypt(kek)
    await assert.rejects(openEnvelope(long, kek), { code: 'ERR_CIPHERTEXT_INVALID' })
    assert.throws(() => sealEnvelope({ ...content, key: fill(16, 1) }, seededRandom('x')), {
      code: 'ERR_INVALID_ARGUMENT',
    })
  })
})

describe('sealRekeyPlan', () => {
  test('every envelope opens with the key its kid names and carries the key its wkid names', async () => {
    const tree = createLkhTree({ groupId: 'g', random: seededRandom('seal') })
    tree.batch({ joins: ['a', 'b', 'c', 'd', 'e', 'f'] })
    const plan = tree.leave('c')
    const sealed = sealRekeyPlan(plan, {
      keyOf: (r) => tree.keyOf(r),
      memberWrapKey: (m, e) => deriveMemberWrapKey(credentialOf(m), 'g', e),
      random: seededRandom('seal-iv'),
    })
    assert.equal(sealed.length, plan.envelopes.length)
    const fresh = new Map(plan.newKeys.map((k) => [formatKid(k.ref), hex(k.key)]))
    for (const { spec, jwe } of sealed) {
      const header = readEnvelopeHeader(jwe)
      assert.equal(header.kid, formatKid(spec.wrappingKey))
      assert.equal(header.epoch, plan.epoch)
      const kek =
        spec.recipient.kind === 'member'
          ? deriveMemberWrapKey(credentialOf(spec.recipient.member), 'g', plan.epoch)
          : tree.keyOf(spec.wrappingKey)
      const { key } = await openEnvelope(jwe, kek)
      assert.equal(hex(key), fresh.get(header.wkid))
      assert.equal(header.gk === true, spec.groupKey)
    }
  })

  test('a stale plan (the tree moved on) fails with ERR_KEY_VERSION_NOT_FOUND', () => {
    const tree = createLkhTree({ groupId: 'g', random: seededRandom('stale') })
    tree.batch({ joins: ['a', 'b', 'c', 'd'] })
    const plan = tree.leave('a')
    tree.leave('c')
    const keys = {
      keyOf: (r: Parameters<typeof tree.keyOf>[0]) => tree.keyOf(r),
      memberWrapKey: (m: string, e: number) => deriveMemberWrapKey(credentialOf(m), 'g', e),
      random: seededRandom('s'),
    }
    // Only wrapped-under-unchanged-node envelopes need the tree; member ones still seal.
    const needsTree = plan.envelopes.some(
      (e) => e.wrappingKey.id.startsWith('node:') && !plan.newKeys.some((k) => k.ref.id === e.wrappingKey.id),
    )
    assert.ok(needsTree)
    assert.throws(() => sealRekeyPlan(plan, keys), { code: 'ERR_KEY_VERSION_NOT_FOUND' })
  })
})
