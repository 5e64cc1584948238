/**
 * TS-0003 publishes no test vectors, so these tests pin the construction: exact labels,
 * byte order of the HMAC input, the exporter split and the identifier formats.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import {
  bytesToHex,
  deriveKm,
  deriveKpsa,
  deriveUsageConstrainedKey,
  enrolmentKeyFromExporter,
  hexToBytes,
  keId,
  kmId,
  kpsaId,
  mafKeyId,
  ONEM2M_EXPORTER_LABEL,
  ONEM2M_EXPORTER_LENGTH,
  parseKeyId,
  sameKmId,
  sessionEsprimKey,
  splitExporterOutput,
} from '../src/index.ts'

const KE = hexToBytes('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f')

function hmacHex(key: Uint8Array, text: string | Buffer): string {
  return createHmac('sha256', key).update(text).digest('hex')
}

test('labels are exactly the TS-0003 strings', () => {
  assert.deepEqual(ONEM2M_EXPORTER_LABEL, {
    bootstrap: 'EXPORTER-oneM2M-Bootstrap',
    connection: 'EXPORTER-oneM2M-Connection',
    escertke: 'EXPORTER-oneM2M-ESCertKE',
  })
  assert.equal(ONEM2M_EXPORTER_LENGTH, 48)
})

test('Km = HMAC-SHA-256(Ke, label || MAF-ID)', () => {
  assert.equal(
    bytesToHex(deriveKm(KE, 'maf.example.com')),
    hmacHex(KE, 'oneM2M Enrolment Key to Master Credential derivationmaf.example.com'),
  )
})

test('Kpsa = HMAC-SHA-256(Ke, label || Enrolee-B-ID)', () => {
  assert.equal(
    bytesToHex(deriveKpsa(KE, '/in-cse-1')),
    hmacHex(KE, 'oneM2M Enrolment Key to Provisioned Secure Connection Key derivation/in-cse-1'),
  )
})

test('usage-constrained key: SUID as decimal ASCII digits between label and target id', () => {
  assert.equal(
    bytesToHex(deriveUsageConstrainedKey(KE, 21, 'maf.example.com')),
    hmacHex(KE, 'oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation21maf.example.com'),
  )
  assert.throws(() => deriveUsageConstrainedKey(KE, 7, 'maf.example.com'), { code: 'ERR_INVALID_ARGUMENT' })
})

test('ids are NFKC-normalised UTF-8; Ke must be 32 bytes; empty ids are rejected', () => {
  assert.deepEqual(deriveKm(KE, 'ｍaf.example.com'), deriveKm(KE, 'maf.example.com'))
  assert.throws(() => deriveKm(KE.subarray(0, 16), 'maf.example.com'), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'ke must be 32 bytes',
  })
  assert.throws(() => deriveKpsa(KE, ''), { code: 'ERR_INVALID_ARGUMENT' })
})

test('exporter output: first 16 bytes are the relative id, last 32 the key', () => {
  const out = new Uint8Array(48).map((_, i) => i)
  const { relativeId, key } = splitExporterOutput(out)
  assert.equal(bytesToHex(relativeId), '000102030405060708090a0b0c0d0e0f')
  assert.deepEqual(
    key,
    KE.map((b) => b + 16),
  )
  const enrolment = enrolmentKeyFromExporter(out, 'mef.example.com')
  assert.equal(enrolment.keId, '000102030405060708090a0b0c0d0e0f@mef.example.com')
  assert.deepEqual(enrolment.ke, key)
  assert.throws(() => splitExporterOutput(new Uint8Array(32)), { code: 'ERR_INVALID_ARGUMENT' })
})

test('key identifier formats', () => {
  const id16 = hexToBytes('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf')
  assert.equal(keId(id16, 'mef.example.com'), 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf@mef.example.com')
  assert.equal(mafKeyId(id16, 'maf.example.com'), 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf@maf.example.com')
  assert.equal(kpsaId('my-key_name', 'mef.example.com'), 'my-key_name@mef.example.com')
  assert.equal(kmId('1he83he', 'maf.example.com'), '1he83he@maf.example.com')
  assert.ok(sameKmId('1HE83he@MAF.example.com', '1he83he@maf.example.com'))
  assert.throws(() => kpsaId('bad id', 'mef.example.com'), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => kmId('a@b', 'maf.example.com'), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => keId(id16, 'mef@example.com'), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => keId(id16.subarray(0, 8), 'mef.example.com'), { code: 'ERR_INVALID_ARGUMENT' })
})

test('parseKeyId splits at the last "@" (B-TID relative parts are base64)', () => {
  assert.deepEqual(parseKeyId('I1U8vpY3qJ0hiuZNrke/NQ==@bsf.mnc001.mcc001.pub.3gppnetwork.org'), {
    relative: 'I1U8vpY3qJ0hiuZNrke/NQ==',
    fqdn: 'bsf.mnc001.mcc001.pub.3gppnetwork.org',
  })
  for (const bad of ['no-at', '@host', 'rel@']) {
    assert.throws(() => parseKeyId(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad)
  }
})

test('sessionESPrimKey = HMAC-SHA256(key, receiverRand || originatorRand || label)', () => {
  const pairwise = KE
  const r = new Uint8Array(16).fill(0x11)
  const o = new Uint8Array(16).fill(0x22)
  const expected = hmacHex(
    pairwise,
    Buffer.concat([r, o, Buffer.from('oneM2M HMAC-SHA256 sessionESPrimKey derivation algorithm', 'ascii')]),
  )
  assert.equal(bytesToHex(sessionEsprimKey(pairwise, r, o)), expected)
  // Order matters: swapping receiver and originator gives another key.
  assert.notDeepEqual(sessionEsprimKey(pairwise, o, r), sessionEsprimKey(pairwise, r, o))
  assert.throws(() => sessionEsprimKey(pairwise, r, new Uint8Array(15)), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'originatorRandValue must be 16 bytes',
  })
  assert.throws(() => sessionEsprimKey(new Uint8Array(8), r, o), { code: 'ERR_INVALID_ARGUMENT' })
})
