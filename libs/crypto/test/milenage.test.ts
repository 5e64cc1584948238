import { test } from 'node:test'
import assert from 'node:assert/strict'
import { aes128EcbBlockCipher, computeOpc, hexToBytes, milenage, type BlockCipher } from '../src/index.ts'

// TS 35.208 test set 1 (also in test/vectors/milenage.json).
const K = hexToBytes('465b5ce8b199b49faa5f0a2ee238a6bc')
const OPC = hexToBytes('cd63cb71954a9f4e48a5994e37a02baf')
const RAND = hexToBytes('23553cbe9637a89d218ae64dae47bf35')
const SQN = hexToBytes('ff9bb4d0b607')
const AMF = hexToBytes('b9b9')

function assertInvalid(field: string, secretHex?: string) {
  return (err: { code?: string; message?: string; details?: Record<string, unknown> }) => {
    assert.equal(err.code, 'ERR_INVALID_ARGUMENT')
    assert.match(err.message ?? '', new RegExp(`^${field} `))
    if (secretHex !== undefined) assert.ok(!(err.message ?? '').includes(secretHex))
    return true
  }
}

test('milenage rejects wrong input lengths, naming the field', async () => {
  const e = aes128EcbBlockCipher(K)
  await assert.rejects(milenage(e, OPC.subarray(0, 15), { rand: RAND, sqn: SQN, amf: AMF }), assertInvalid('opc'))
  await assert.rejects(milenage(e, OPC, { rand: new Uint8Array(17), sqn: SQN, amf: AMF }), assertInvalid('rand'))
  await assert.rejects(milenage(e, OPC, { rand: RAND, sqn: new Uint8Array(5), amf: AMF }), assertInvalid('sqn'))
  await assert.rejects(milenage(e, OPC, { rand: RAND, sqn: SQN, amf: new Uint8Array(3) }), assertInvalid('amf'))
  await assert.rejects(computeOpc(e, new Uint8Array(15)), assertInvalid('op'))
})

test('aes128EcbBlockCipher rejects a key that is not 16 bytes without echoing it', () => {
  const longKey = hexToBytes('465b5ce8b199b49faa5f0a2ee238a6bc00')
  assert.throws(() => aes128EcbBlockCipher(longKey), assertInvalid('k', '465b5ce8'))
  assert.throws(() => aes128EcbBlockCipher(new Uint8Array(0)), assertInvalid('k'))
})

test('aes128EcbBlockCipher rejects blocks that are not 16 bytes', async () => {
  await assert.rejects(aes128EcbBlockCipher(K)(new Uint8Array(32)), assertInvalid('block'))
})

test('aes128EcbBlockCipher copies the key: later changes to the caller array have no effect', async () => {
  const k = K.slice()
  const e = aes128EcbBlockCipher(k)
  k.fill(0)
  const out = await milenage(e, OPC, { rand: RAND, sqn: SQN, amf: AMF })
  assert.deepEqual(out.res, hexToBytes('a54211d5e3ba50bf'))
})

test('a kernel that returns the wrong length is an internal error', async () => {
  const broken: BlockCipher = async () => new Uint8Array(8)
  await assert.rejects(milenage(broken, OPC, { rand: RAND, sqn: SQN, amf: AMF }), { code: 'ERR_INTERNAL' })
})

test('milenage does not modify its inputs and returns fresh arrays', async () => {
  const input = { rand: RAND.slice(), sqn: SQN.slice(), amf: AMF.slice() }
  const opc = OPC.slice()
  const a = await milenage(aes128EcbBlockCipher(K), opc, input)
  assert.deepEqual(input, { rand: RAND, sqn: SQN, amf: AMF })
  assert.deepEqual(opc, OPC)
  a.ck.fill(0)
  const b = await milenage(aes128EcbBlockCipher(K), opc, input)
  assert.notDeepEqual(b.ck, a.ck)
})

test('a different OPc changes every output (OPc is really used)', async () => {
  const e = aes128EcbBlockCipher(K)
  const a = await milenage(e, OPC, { rand: RAND, sqn: SQN, amf: AMF })
  const other = OPC.slice()
  other[0] = (other[0] ?? 0) ^ 1
  const b = await milenage(e, other, { rand: RAND, sqn: SQN, amf: AMF })
  for (const key of ['macA', 'macS', 'res', 'ck', 'ik', 'ak', 'akStar'] as const) {
    assert.notDeepEqual(a[key], b[key], key)
  }
})
