/**
 * The member-side derivations against vectors checked once with an independent Python
 * HMAC/HKDF (docs/groups-protocol.md §9), and the agent's per-member envelope selection.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createLkhTree, openEnvelope, sealRekeyPlan } from '@m2msec/groupkeys'
import {
  createGroupMember,
  envelopesForMember,
  memberWrapBaseKey,
  memberWrapKey,
  sessionConfirmTag,
} from '../../src/groups/index.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const credential = Uint8Array.from({ length: 32 }, (_, i) => i)
const VECTOR_JWE =
  'eyJhbGciOiJBMjU2S1ciLCJlbmMiOiJBMjU2R0NNIiwia2lkIjoibWVtYmVyOm1lbWJlci03IzciLCJnaWQiOiJncm91cC0xIiwiZXBvY2giOjcsIndraWQiOiJub2RlOjMuMCM3IiwiZ2siOnRydWV9.qON4eIDBVkI_bySXA4KW2KpWnz9rGlc1UrHuCdK-SMVoWQcmPXIfzA.QUFBQUFBQUFBQUFB.JKUfF4eR0hRylV2eguAzlsiGFGaaV8RsXZ_crhsNSx4.ixGrHvVyaLvF4XA6jPS0AA'

describe('sdk groups: key derivations (vectors)', () => {
  test('KM, KW(7), the vector envelope and the confirmation tag', async () => {
    assert.equal(
      hex(memberWrapBaseKey(credential, 'group-1')),
      '027c48148b884decf987f1e692dc5f24f75f7d084fda920bb6b78101bc9b9a65',
    )
    const kw = memberWrapKey(credential, 'group-1', 7)
    assert.equal(hex(kw), 'f0a2fbec226c8a6f0b46b6849f589da55aa2f5a74870efc54e5b4d13bbce35aa')
    const { header, key } = await openEnvelope(VECTOR_JWE, kw)
    assert.equal(header.wkid, 'node:3.0#7')
    assert.deepEqual(key, new Uint8Array(32).fill(0x77))
    await assert.rejects(openEnvelope(VECTOR_JWE, memberWrapKey(credential, 'group-1', 6)), {
      code: 'ERR_CIPHERTEXT_INVALID',
    })
    const sk = Buffer.from('309626579a73f72e493da991a6eb69a5e94491319ec1f260732b5f0e7d69b64d', 'hex')
    const tag = sessionConfirmTag(
      sk,
      new Uint8Array(32).fill(0xcc),
      'group-1',
      'member-7',
      new Uint8Array(16).fill(0x11),
    )
    assert.equal(hex(tag), '0b8721c69911955b4cf2ae418767d650670d239b8b55b5f91927d88046d9c238')
    assert.throws(() => memberWrapKey(new Uint8Array(8), 'group-1', 1), { code: 'ERR_INVALID_ARGUMENT' })
  })
})

describe('sdk groups: envelope selection by the agent', () => {
  const credOf = (id: string) => new Uint8Array(createHash('sha256').update(id).digest())
  const random = (n: number) => new Uint8Array(createHash('sha256').update(`r${Math.random()}`).digest()).subarray(0, n)

  test('first distribution: each member gets only its path (≤ height + 1), and it suffices', async () => {
    const tree = createLkhTree({ groupId: 'g', random })
    const ids = Array.from({ length: 100 }, (_, i) => `m${i}`)
    const plan = tree.batch({ joins: ids })
    const sealed = sealRekeyPlan(plan, {
      keyOf: (r) => tree.keyOf(r),
      memberWrapKey: (m, e) => memberWrapKey(credOf(m), 'g', e),
      random,
    }).map((s) => ({
      jwe: s.jwe,
      wrappingKid: `${s.spec.wrappingKey.id}#${s.spec.wrappingKey.version}`,
      wrappedKid: `${s.spec.wrapped.id}#${s.spec.wrapped.version}`,
    }))
    for (const id of ['m0', 'm37', 'm99']) {
      const mine = envelopesForMember(sealed, id)
      assert.ok(mine.length <= tree.height + 1 && mine.length >= 1, `${id}: ${mine.length}`)
      const member = createGroupMember({
        groupId: 'g',
        memberId: id,
        credential: credOf(id),
        senderKey: () => undefined,
      })
      await member.accept(mine)
      assert.equal(member.epoch(), 1)
    }
    // A member id that is a prefix of another is not confused with it.
    const m3 = new Set(envelopesForMember(sealed, 'm3'))
    assert.ok(!sealed.some((e) => e.wrappingKid.startsWith('member:m37#') && m3.has(e.jwe)))
    const leave = tree.leave('m5')
    const after = sealRekeyPlan(leave, {
      keyOf: (r) => tree.keyOf(r),
      memberWrapKey: (m, e) => memberWrapKey(credOf(m), 'g', e),
      random,
    }).map((s) => ({
      jwe: s.jwe,
      wrappingKid: `${s.spec.wrappingKey.id}#${s.spec.wrappingKey.version}`,
      wrappedKid: `${s.spec.wrapped.id}#${s.spec.wrapped.version}`,
    }))
    // m77's leaf is untouched by m5's leave: it gets every envelope of the (small) rekey.
    assert.equal(envelopesForMember(after, 'm77').length, after.length)
  })
})
