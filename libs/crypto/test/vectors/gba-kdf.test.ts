/**
 * Generic runner for gba-kdf.json (3GPP TS 33.220 Annex B). These vectors were computed by
 * the vector author (no public Ks_NAF vector exists), so they are regression vectors: a
 * vector with Ks_NAF inputs checks Ks, NAF_Id, S and the output; one with a bsf_fqdn checks
 * the B-TID.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import {
  btid,
  bytesToHex,
  deriveKsNaf,
  gbaKs,
  gbaKsNafInput,
  hexToBytes,
  kdf3gpp,
  nafId,
  type GbaVariant,
} from '../../src/index.ts'

interface GbaVector {
  description: string
  inputs: {
    ck?: string
    ik?: string
    rand: string
    impi?: string
    naf_fqdn?: string
    ua_security_protocol_id?: string
    p0?: string
    fc?: string
    bsf_fqdn?: string
  }
  ks?: string
  naf_id_hex?: string
  S_hex?: string
  output?: string
  btid?: string
}

const file = JSON.parse(readFileSync(new URL('./gba-kdf.json', import.meta.url), 'utf8')) as { vectors: GbaVector[] }
assert.ok(file.vectors.length > 0, 'gba-kdf.json has vectors')

file.vectors.forEach((v, i) => {
  describe(`3GPP TS 33.220 Annex B vector ${i + 1}: ${v.description}`, () => {
    const h = hexToBytes
    const { inputs } = v
    let checks = 0

    if (inputs.ck !== undefined && inputs.ik !== undefined && v.ks !== undefined) {
      const { ck, ik } = inputs
      const ks = v.ks
      checks++
      test('Ks = CK || IK', () => {
        assert.equal(bytesToHex(gbaKs(h(ck), h(ik))), ks)
      })
    }

    if (inputs.naf_fqdn !== undefined && inputs.ua_security_protocol_id !== undefined && v.naf_id_hex !== undefined) {
      const { naf_fqdn: fqdn, ua_security_protocol_id: ua } = inputs
      const expected = v.naf_id_hex
      checks++
      test('NAF_Id = FQDN || Ua security protocol id', () => {
        assert.equal(bytesToHex(nafId(fqdn, h(ua))), expected)
      })
    }

    if (
      inputs.impi !== undefined &&
      inputs.naf_fqdn !== undefined &&
      inputs.ua_security_protocol_id !== undefined &&
      inputs.p0 !== undefined &&
      v.S_hex !== undefined &&
      v.ks !== undefined &&
      v.output !== undefined
    ) {
      assert.equal(inputs.fc, '01', 'GBA FC')
      const variant = inputs.p0 as GbaVariant
      const id = nafId(inputs.naf_fqdn, h(inputs.ua_security_protocol_id))
      const { impi } = inputs
      const { S_hex: sHex, ks, output } = v
      checks++
      test(`S = FC || "${variant}" || L0 || RAND || L1 || IMPI || L2 || NAF_Id || L3`, () => {
        assert.equal(bytesToHex(gbaKsNafInput(h(inputs.rand), impi, id, variant)), sHex)
      })
      test('derived key = HMAC-SHA-256(Ks, S)', () => {
        assert.equal(bytesToHex(kdf3gpp(h(ks), h(sHex))), output)
        assert.equal(bytesToHex(deriveKsNaf(h(ks), h(inputs.rand), impi, id, variant)), output)
      })
    }

    if (inputs.bsf_fqdn !== undefined && v.btid !== undefined) {
      const { bsf_fqdn: host } = inputs
      const expected = v.btid
      checks++
      test('B-TID = base64(RAND)@BSF host', () => {
        assert.equal(btid(h(inputs.rand), host), expected)
      })
    }

    test('vector is recognised by the runner', () => {
      assert.ok(checks > 0, 'no check matched this vector; extend the runner')
    })
  })
})
