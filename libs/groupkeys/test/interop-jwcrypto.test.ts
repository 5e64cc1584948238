/**
 * Group key envelopes (A256KW / A256GCM) and secure broadcasts (JWE dir A256GCM around a
 * JWS ES256) opened by an independent JOSE implementation: python3-jwcrypto 1.1, which is
 * installed for /usr/bin/python3 only (not the pyenv python3 first on PATH).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import {
  createBroadcastReceiver,
  createBroadcastSender,
  createLkhTree,
  deriveMemberWrapKey,
  openEnvelope,
  sealRekeyPlan,
  type EnvelopeHeader,
} from '../src/index.ts'
import { credentialOf, seededRandom } from './helpers.ts'

/** decrypt {token, key} -> plaintext + protected header; nested also verifies the inner JWS; encrypt makes a compact JWE. */
const PEER = `
import base64, json, sys
from jwcrypto import jwe, jwk, jws
from jwcrypto.common import json_decode
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
unb64 = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def run(r):
    if r["op"] == "encrypt":
        t = jwe.JWE(unb64(r["plaintext"]), protected=json.dumps(r["protected"]))
        t.add_recipient(jwk.JWK(**r["key"]))
        return {"token": t.serialize(compact=True)}
    t = jwe.JWE()
    t.deserialize(r["token"], key=jwk.JWK(**r["key"]))
    out = {"plaintext": b64(t.payload), "header": json_decode(t.objects["protected"])}
    if r["op"] == "nested":
        s = jws.JWS()
        s.deserialize(t.payload.decode())
        s.verify(jwk.JWK(**r["verify_key"]))
        out.update(payload=b64(s.payload), inner_header=json_decode(s.objects["protected"]))
    return out
def answer(r):
    try:
        return {"ok": True, **run(r)}
    except Exception as e:
        return {"ok": False, "error": type(e).__name__}
print(json.dumps([answer(r) for r in json_decode(sys.stdin.read())]))
`

type Answer = {
  ok: boolean
  error?: string
  plaintext?: string
  payload?: string
  token?: string
  header?: Record<string, unknown>
  inner_header?: Record<string, unknown>
}

function jwcrypto(requests: readonly Record<string, unknown>[]): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      '/usr/bin/python3',
      ['-c', PEER],
      { timeout: 30_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`jwcrypto peer failed (python3-jwcrypto for /usr/bin/python3?): ${stderr}`))
        else resolve(JSON.parse(stdout) as Answer[])
      },
    )
    child.stdin?.end(JSON.stringify(requests))
  })
}

const oct = (k: Uint8Array) => ({ kty: 'oct', k: Buffer.from(k).toString('base64url') })
const pub = (k: KeyObject) => k.export({ format: 'jwk' })
const hex = (b: string | undefined) => Buffer.from(b ?? '', 'base64url').toString('hex')
const V = JSON.parse(readFileSync(new URL('./vectors/groups-v1.json', import.meta.url), 'utf8')) as {
  memberWrapKey: { keyHex: string }
  envelope: { jwe: string; keyHex: string }
}

describe('jwcrypto opens group key envelopes', () => {
  test('the pinned vector and every envelope of an LKH leave plan, each with the key its kid names', async () => {
    const gid = 'tenant-a/meters'
    const tree = createLkhTree({ groupId: gid, random: seededRandom('interop-tree') })
    tree.batch({ joins: ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'] })
    const plan = tree.leave('m4')
    const sealed = sealRekeyPlan(plan, {
      keyOf: (r) => tree.keyOf(r),
      memberWrapKey: (m, e) => deriveMemberWrapKey(credentialOf(m), gid, e),
      random: seededRandom('interop-seal'),
    })
    const wrapKeyOf = (spec: (typeof sealed)[number]['spec']) =>
      spec.recipient.kind === 'member'
        ? deriveMemberWrapKey(credentialOf(spec.recipient.member), gid, plan.epoch)
        : tree.keyOf(spec.wrappingKey)
    const wrong = deriveMemberWrapKey(credentialOf('m4'), gid, plan.epoch) // the member that left
    const requests = [
      { op: 'decrypt', token: V.envelope.jwe, key: oct(Buffer.from(V.memberWrapKey.keyHex, 'hex')) },
      ...sealed.flatMap(({ spec, jwe }) => [
        { op: 'decrypt', token: jwe, key: oct(wrapKeyOf(spec)) },
        { op: 'decrypt', token: jwe, key: oct(wrong) },
      ]),
    ]
    const a = await jwcrypto(requests)
    assert.equal(a[0]!.ok, true)
    assert.equal(hex(a[0]!.plaintext), V.envelope.keyHex)
    const fresh = new Map(plan.newKeys.map((k) => [`${k.ref.id}#${k.ref.version}`, Buffer.from(k.key).toString('hex')]))
    assert.ok(sealed.length >= 4)
    sealed.forEach(({ spec }, i) => {
      const good = a[1 + 2 * i]!
      assert.equal(good.ok, true, JSON.stringify(good))
      const h = good.header as unknown as EnvelopeHeader
      assert.equal(h.alg, 'A256KW')
      assert.equal(h.enc, 'A256GCM')
      assert.equal(h.kid, `${spec.wrappingKey.id}#${spec.wrappingKey.version}`)
      assert.equal(h.epoch, plan.epoch)
      assert.equal(hex(good.plaintext), fresh.get(h.wkid))
      assert.equal(a[2 + 2 * i]!.ok, false, 'the departed member key opens nothing')
    })
  })

  test('an envelope jwcrypto seals with the same header opens with openEnvelope', async () => {
    const kek = Buffer.from(V.memberWrapKey.keyHex, 'hex')
    const header = {
      alg: 'A256KW',
      enc: 'A256GCM',
      kid: 'member:member-7#7',
      gid: 'group-1',
      epoch: 7,
      wkid: 'node:3.0#7',
      gk: true,
    }
    const [made] = await jwcrypto([
      {
        op: 'encrypt',
        plaintext: Buffer.from(V.envelope.keyHex, 'hex').toString('base64url'),
        protected: header,
        key: oct(kek),
      },
    ])
    assert.equal(made!.ok, true)
    const { key, header: h } = await openEnvelope(made!.token!, kek)
    assert.equal(Buffer.from(key).toString('hex'), V.envelope.keyHex)
    assert.equal(h.wkid, 'node:3.0#7')
    await assert.rejects(openEnvelope(made!.token!, new Uint8Array(32).fill(9)), { code: 'ERR_CIPHERTEXT_INVALID' })
  })
})

describe('jwcrypto opens secure broadcasts', () => {
  test('decrypts with the group key and verifies the ES256 signature; wrong group key or sender key fails', async () => {
    const app = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const intruder = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const gk = { epoch: 4, key: seededRandom('interop-gk')(32) }
    const now = 1_750_000_000_000
    const tx = createBroadcastSender({
      groupId: 'tenant-a/doors',
      senderId: 'app-1',
      signingKey: app.privateKey,
      now: () => now,
    })
    const jwe = await tx.seal(new TextEncoder().encode('{"cmd":"lock"}'), gk)
    const a = await jwcrypto([
      { op: 'nested', token: jwe, key: oct(gk.key), verify_key: pub(app.publicKey) },
      { op: 'nested', token: jwe, key: oct(seededRandom('other-gk')(32)), verify_key: pub(app.publicKey) },
      { op: 'nested', token: jwe, key: oct(gk.key), verify_key: pub(intruder.publicKey) },
    ])
    const good = a[0]!
    assert.equal(good.ok, true, JSON.stringify(good))
    assert.equal(Buffer.from(good.payload!, 'base64url').toString(), '{"cmd":"lock"}')
    assert.deepEqual(good.header, {
      alg: 'dir',
      enc: 'A256GCM',
      cty: 'JOSE',
      kid: 'gk#4',
      snd: 'app-1',
      gid: 'tenant-a/doors',
      epoch: 4,
      seq: 0,
    })
    assert.deepEqual(good.inner_header, {
      alg: 'ES256',
      typ: 'm2msec-group-command',
      kid: 'app-1',
      gid: 'tenant-a/doors',
      epoch: 4,
      seq: 0,
      iat: now / 1000,
    })
    assert.equal(a[1]!.ok, false)
    assert.equal(a[2]!.ok, false)
    // And the same object still opens in the library (the peer changed nothing).
    const rx = createBroadcastReceiver({ groupId: 'tenant-a/doors', senderKey: () => app.publicKey, now: () => now })
    rx.setGroupKey(gk)
    assert.equal((await rx.open(jwe)).seq, 0)
  })
})
