import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import {
  btid,
  bytesToHex,
  deriveKsNaf,
  gbaKs,
  gbaKsNafInput,
  hexToBytes,
  kdf3gpp,
  kdf3gppInput,
  nafId,
  tmpi,
  TMPI_DOMAIN,
  UA_PROTOCOL_ID,
  uaTlsPskProtocolId,
} from '../src/index.ts'

// Milenage test set 1 CK/IK/RAND and the IMPI used in test/vectors/gba-kdf.json.
const CK = hexToBytes('b40ba9a3c58b2a05bbf0d987b21bf8cb')
const IK = hexToBytes('f769bcd751044604127672711c6d3441')
const RAND = hexToBytes('23553cbe9637a89d218ae64dae47bf35')
const IMPI = '001010123456789@ims.mnc001.mcc001.3gppnetwork.org'
const KS = gbaKs(CK, IK)

test('kdf3gppInput: FC || P0 || L0 || P1 || L1 with 2-byte big-endian lengths', () => {
  assert.equal(bytesToHex(kdf3gppInput(0x6a, [Uint8Array.of(0xaa, 0xbb), new Uint8Array(0)])), '6aaabb00020000')
  assert.equal(bytesToHex(kdf3gppInput(0x01, [])), '01')
  const long = kdf3gppInput(0x10, [new Uint8Array(0x1234)])
  assert.equal(bytesToHex(long.subarray(long.length - 2)), '1234')
})

test('kdf3gppInput rejects a bad FC and parameters longer than 65535 bytes', () => {
  for (const fc of [-1, 0xff, 0x100, 1.5]) {
    assert.throws(() => kdf3gppInput(fc, []), { code: 'ERR_INVALID_ARGUMENT' }, String(fc))
  }
  assert.throws(() => kdf3gppInput(1, [new Uint8Array(0x10000)]), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'params[0] must be at most 65535 bytes',
  })
})

test('kdf3gpp is HMAC-SHA-256(key, S)', () => {
  const s = Uint8Array.of(1, 2, 3)
  assert.equal(bytesToHex(kdf3gpp(KS, s)), createHmac('sha256', KS).update(s).digest('hex'))
  assert.throws(() => kdf3gpp(new Uint8Array(0), s), { code: 'ERR_INVALID_ARGUMENT' })
})

test('Ks_int_NAF ("gba-u") matches the value quoted in the GBA digest (gba-3gpp.md §3, computed-only)', () => {
  const out = bytesToHex(deriveKsNaf(KS, RAND, IMPI, nafId('naf.example.com', UA_PROTOCOL_ID.httpDigest), 'gba-u'))
  assert.ok(out.startsWith('0a1506dc') && out.endsWith('9fd2'), 'prefix/suffix 0a1506dc…9fd2')
  const s = gbaKsNafInput(RAND, IMPI, nafId('naf.example.com', UA_PROTOCOL_ID.httpDigest), 'gba-u')
  assert.equal(bytesToHex(s.subarray(0, 8)), '016762612d750005', 'FC, "gba-u", L0 = 5')
})

test('TMPI matches the value quoted in the GBA digest (gba-3gpp.md §3, computed-only)', () => {
  assert.equal(
    tmpi(KS, RAND, IMPI, 'bsf.mnc001.mcc001.pub.3gppnetwork.org'),
    `NdfNQvvGWK4SGbs7c17alrZHQXyhEcrW@${TMPI_DOMAIN}`,
  )
})

test('Ua protocol ids: TLS-PSK form 01 00 01 || cipher suite', () => {
  assert.equal(bytesToHex(uaTlsPskProtocolId(0x008c)), '010001008c')
  assert.deepEqual(uaTlsPskProtocolId(0x00ae), UA_PROTOCOL_ID.oneM2mTlsPskAes128CbcSha256)
  assert.deepEqual(uaTlsPskProtocolId(0xc0a8), UA_PROTOCOL_ID.oneM2mDtlsPskAes128Ccm8)
  assert.equal(bytesToHex(UA_PROTOCOL_ID.httpDigest), '0100000002')
  assert.equal(bytesToHex(UA_PROTOCOL_ID.tmpi), '0100000100')
  assert.throws(() => uaTlsPskProtocolId(0x10000), { code: 'ERR_INVALID_ARGUMENT' })
})

test('Ks_NAF depends on the Ua protocol id and on the variant', () => {
  const a = deriveKsNaf(KS, RAND, IMPI, nafId('naf.example.com', UA_PROTOCOL_ID.httpDigest), 'gba-me')
  const b = deriveKsNaf(KS, RAND, IMPI, nafId('naf.example.com', uaTlsPskProtocolId(0x008c)), 'gba-me')
  const c = deriveKsNaf(KS, RAND, IMPI, nafId('naf.example.com', UA_PROTOCOL_ID.httpDigest), 'gba-u')
  assert.notDeepEqual(a, b)
  assert.notDeepEqual(a, c)
  assert.equal(a.length, 32)
})

test('NAF FQDN and IMPI are NFKC-normalised before UTF-8 encoding', () => {
  assert.deepEqual(
    nafId('ｎaf.example.com', UA_PROTOCOL_ID.httpDigest),
    nafId('naf.example.com', UA_PROTOCOL_ID.httpDigest),
  )
})

test('bad GBA inputs name the field', () => {
  assert.throws(() => nafId('naf.example.com', new Uint8Array(4)), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'uaProtocolId must be 5 bytes',
  })
  assert.throws(() => nafId('', UA_PROTOCOL_ID.httpDigest), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => gbaKs(CK, new Uint8Array(15)), { code: 'ERR_INVALID_ARGUMENT', message: 'ik must be 16 bytes' })
  assert.throws(() => gbaKsNafInput(new Uint8Array(8), IMPI, new Uint8Array(20), 'gba-me'), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'rand must be 16 bytes',
  })
  assert.throws(() => gbaKsNafInput(RAND, '', new Uint8Array(20), 'gba-me'), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => gbaKsNafInput(RAND, IMPI, new Uint8Array(20), 'gba' as 'gba-me'), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  assert.throws(() => deriveKsNaf(CK, RAND, IMPI, new Uint8Array(20), 'gba-me'), {
    code: 'ERR_INVALID_ARGUMENT',
    message: 'ks must be 32 bytes',
  })
})

test('B-TID uses padded standard base64 and rejects a bad host', () => {
  assert.equal(btid(RAND, 'bsf.example.org'), 'I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org')
  assert.throws(() => btid(RAND, ''), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => btid(RAND, 'a@b'), { code: 'ERR_INVALID_ARGUMENT' })
  assert.throws(() => btid(new Uint8Array(15), 'bsf.example.org'), { code: 'ERR_INVALID_ARGUMENT' })
})
