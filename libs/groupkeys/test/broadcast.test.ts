/** Secure broadcast (docs/groups-protocol.md §7) and the anti-replay window. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { CompactEncrypt, compactDecrypt, compactVerify, decodeProtectedHeader } from 'jose'
import {
  COMMAND_TYPE,
  createBroadcastReceiver,
  createBroadcastSender,
  createLkhTree,
  createMemberKeyRing,
  deriveMemberWrapKey,
  ReplayWindow,
  sealRekeyPlan,
  type BroadcastReceiverOptions,
  type GroupKeyEpoch,
} from '../src/index.ts'
import { credentialOf, seededRandom } from './helpers.ts'

const GID = 'tenant-a/fire-doors'
const NOW = 1_750_000_000_000
const enc = new TextEncoder()
const dec = new TextDecoder()

const app = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const intruder = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const gk1: GroupKeyEpoch = { epoch: 1, key: seededRandom('gk1')(32) }
const gk2: GroupKeyEpoch = { epoch: 2, key: seededRandom('gk2')(32) }

function sender(signingKey: KeyObject = app.privateKey, senderId = 'app-1', now = () => NOW) {
  return createBroadcastSender({ groupId: GID, senderId, signingKey, now })
}

function receiver(over: Partial<BroadcastReceiverOptions> = {}) {
  const rx = createBroadcastReceiver({
    groupId: GID,
    senderKey: (id) => (id === 'app-1' ? app.publicKey : undefined),
    now: () => NOW,
    ...over,
  })
  rx.setGroupKey(gk1)
  return rx
}

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    const e = err as { code?: string; details?: { reason?: string } }
    return `${e.code}${e.details?.reason === undefined ? '' : `/${e.details.reason}`}`
  }
  return 'accepted'
}

describe('broadcast', () => {
  test('opens for a member with the group key, and with plain jose', async () => {
    const tx = sender()
    const jwe = await tx.seal(enc.encode('{"cmd":"close-all"}'), gk1)
    assert.equal(tx.nextSeq, 1)
    const got = await receiver().open(jwe)
    assert.deepEqual(
      { ...got, payload: dec.decode(got.payload) },
      { senderId: 'app-1', seq: 0, epoch: 1, issuedAt: NOW, payload: '{"cmd":"close-all"}' },
    )
    // Independent path: jose only, no code of this package.
    const outer = await compactDecrypt(jwe, gk1.key)
    assert.deepEqual(outer.protectedHeader, {
      alg: 'dir',
      enc: 'A256GCM',
      cty: 'JOSE',
      kid: 'gk#1',
      snd: 'app-1',
      gid: GID,
      epoch: 1,
      seq: 0,
    })
    const inner = await compactVerify(dec.decode(outer.plaintext), app.publicKey)
    assert.equal(dec.decode(inner.payload), '{"cmd":"close-all"}')
    assert.deepEqual(inner.protectedHeader, {
      alg: 'ES256',
      typ: COMMAND_TYPE,
      kid: 'app-1',
      gid: GID,
      epoch: 1,
      seq: 0,
      iat: NOW / 1000,
    })
    await assert.rejects(compactDecrypt(jwe, gk2.key))
  })

  test('replays, old numbers and out-of-order delivery', async () => {
    const tx = sender()
    const msgs = await Promise.all(Array.from({ length: 10 }, (_, i) => tx.seal(enc.encode(`c${i}`), gk1)))
    const rx = receiver({ windowSize: 4 })
    assert.equal((await rx.open(msgs[9]!)).seq, 9)
    assert.equal(await reason(rx.open(msgs[9]!)), 'ERR_REPLAY/replay')
    assert.equal((await rx.open(msgs[7]!)).seq, 7) // late but inside the window
    assert.equal(await reason(rx.open(msgs[7]!)), 'ERR_REPLAY/replay')
    assert.equal(await reason(rx.open(msgs[5]!)), 'ERR_REPLAY/too-old') // 9 − 4
    assert.equal((await rx.open(msgs[6]!)).seq, 6)
  })

  test('after a rekey, messages of the previous epoch are refused; future epochs need the key', async () => {
    const tx = sender()
    const old = await tx.seal(enc.encode('old'), gk1)
    const future = await tx.seal(enc.encode('future'), gk2)
    const rx = receiver()
    assert.equal(await reason(rx.open(future)), 'ERR_KEY_VERSION_NOT_FOUND')
    assert.equal(rx.setGroupKey(gk2), true)
    assert.equal(rx.setGroupKey(gk1), false)
    assert.equal(rx.epoch, 2)
    assert.equal(await reason(rx.open(old)), 'ERR_REPLAY/stale-epoch')
    assert.equal(dec.decode((await rx.open(future)).payload), 'future')
  })

  test('wrong key, unknown or impostor sender, other group, oversize, garbage', async () => {
    const jwe = await sender().seal(enc.encode('x'), gk1)
    const rx = createBroadcastReceiver({ groupId: GID, senderKey: () => app.publicKey, now: () => NOW })
    rx.setGroupKey({ epoch: 1, key: new Uint8Array(32).fill(7) })
    assert.equal(await reason(rx.open(jwe)), 'ERR_CIPHERTEXT_INVALID')
    assert.equal(
      await reason(receiver().open(await sender(app.privateKey, 'app-2').seal(enc.encode('x'), gk1))),
      'ERR_UNAUTHENTICATED',
    )
    assert.equal(
      await reason(receiver().open(await sender(intruder.privateKey).seal(enc.encode('x'), gk1))),
      'ERR_SIGNATURE_INVALID',
    )
    const otherGroup = createBroadcastSender({
      groupId: 'other',
      senderId: 'app-1',
      signingKey: app.privateKey,
      now: () => NOW,
    })
    assert.equal(await reason(receiver().open(await otherGroup.seal(enc.encode('x'), gk1))), 'ERR_INVALID_ARGUMENT')
    assert.equal(await reason(receiver({ maxBytes: 100 }).open(jwe)), 'ERR_PAYLOAD_TOO_LARGE')
    assert.equal(await reason(receiver().open('a.b.c.d.e')), 'ERR_INVALID_ARGUMENT')
  })

  test('a member holding the group key cannot re-send an old signed command under a new number or epoch', async () => {
    const jwe = await sender().seal(enc.encode('unlock'), gk1)
    const { plaintext } = await compactDecrypt(jwe, gk1.key)
    const reseal = (header: Record<string, unknown>, key: Uint8Array) =>
      new CompactEncrypt(plaintext)
        .setProtectedHeader({ ...decodeProtectedHeader(jwe), ...header } as { alg: string; enc: string })
        .encrypt(key)
    const rx = receiver()
    assert.equal(await reason(rx.open(await reseal({ seq: 99 }, gk1.key))), 'ERR_SIGNATURE_INVALID')
    rx.setGroupKey(gk2)
    assert.equal(await reason(rx.open(await reseal({ epoch: 2, kid: 'gk#2' }, gk2.key))), 'ERR_SIGNATURE_INVALID')
  })

  test('a failed copy does not use up the sequence number; the time window is enforced', async () => {
    const tx = sender()
    const jwe = await tx.seal(enc.encode('x'), gk1)
    const parts = jwe.split('.')
    const tag = Buffer.from(parts[4]!, 'base64url')
    tag[0]! ^= 1
    parts[4] = tag.toString('base64url')
    const rx = receiver()
    assert.equal(await reason(rx.open(parts.join('.'))), 'ERR_CIPHERTEXT_INVALID')
    assert.equal((await rx.open(jwe)).seq, 0)
    const stale = await sender(app.privateKey, 'app-1', () => NOW - 10 * 60_000).seal(enc.encode('y'), gk1)
    assert.equal(await reason(receiver({ maxAgeMs: 60_000 }).open(stale)), 'ERR_REPLAY/expired')
    assert.equal((await receiver().open(stale)).seq, 0)
  })

  test('with LKH keys: a removed member cannot open the next broadcast, a new one cannot open an old one', async () => {
    const tree = createLkhTree({ groupId: GID, random: seededRandom('bc-tree') })
    const ids = ['door-1', 'door-2', 'door-3', 'door-4', 'door-5']
    const rings = new Map(
      [...ids, 'door-6'].map((m) => [
        m,
        createMemberKeyRing({
          groupId: GID,
          memberId: m,
          wrapKeyFor: (e) => deriveMemberWrapKey(credentialOf(m), GID, e),
        }),
      ]),
    )
    const deliver = async (plan: ReturnType<typeof tree.leave>) => {
      const sealed = sealRekeyPlan(plan, {
        keyOf: (r) => tree.keyOf(r),
        memberWrapKey: (m, e) => deriveMemberWrapKey(credentialOf(m), GID, e),
        random: seededRandom(`bc-${plan.epoch}`),
      }).map((s) => s.jwe)
      for (const r of rings.values()) await r.accept(sealed)
    }
    await deliver(tree.batch({ joins: ids }))
    const tx = sender()
    const gkOf = (m: string) => rings.get(m)!.groupKey()!
    const before = await tx.seal(enc.encode('before'), gkOf('door-1'))
    await deliver(tree.leave('door-3'))
    await deliver(tree.join('door-6'))
    const after = await tx.seal(enc.encode('after'), gkOf('door-1'))
    assert.equal(gkOf('door-1').epoch, 3)

    const rxFor = (m: string) => {
      const rx = createBroadcastReceiver({ groupId: GID, senderKey: () => app.publicKey, now: () => NOW })
      rx.setGroupKey(gkOf(m))
      return rx
    }
    assert.equal(dec.decode((await rxFor('door-2').open(after)).payload), 'after')
    assert.equal(await reason(rxFor('door-3').open(after)), 'ERR_KEY_VERSION_NOT_FOUND')
    await assert.rejects(compactDecrypt(after, gkOf('door-3').key)) // its newest key does not help either
    assert.equal(await reason(rxFor('door-6').open(before)), 'ERR_REPLAY/stale-epoch')
    await assert.rejects(compactDecrypt(before, gkOf('door-6').key))
  })
})

describe('ReplayWindow', () => {
  test('accepts each number once, refuses below the window, keeps state only on success', () => {
    const w = new ReplayWindow(3)
    assert.equal(w.accept(0), 'ok')
    assert.equal(w.accept(0), 'replay')
    assert.equal(w.accept(5), 'ok')
    assert.equal(w.check(2), 'too-old')
    assert.equal(w.check(3), 'ok')
    assert.equal(w.accept(3), 'ok')
    assert.equal(w.accept(3), 'replay')
    assert.equal(w.accept(4), 'ok')
    assert.equal(w.highest, 5)
    assert.equal(w.accept(6), 'ok')
    assert.equal(w.check(3), 'too-old')
    assert.throws(() => new ReplayWindow(0), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => w.check(-1), { code: 'ERR_INVALID_ARGUMENT' })
  })
})
