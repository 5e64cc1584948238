import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { deriveKm, deriveKpsa, deriveUsageConstrainedKey } from '@m2msec/crypto'
import { absoluteIdToFqdn, assertKpmId, isFqdn, parseKeId, parseSuid } from '../../src/rspf/domain/ids.ts'
import { derivationFor, derivedKeyId, keKeyId, targetFqdn } from '../../src/rspf/domain/derivation.ts'
import { authorizeFetch, credentialIdOf, type Enrolee, type EnrolmentRecord } from '../../src/rspf/domain/enrolment.ts'
import { createRspfDirectory, subjectAltNameEntries } from '../../src/rspf/domain/directory.ts'

const ke = Uint8Array.from({ length: 32 }, (_, i) => i + 1)
const hmac = (data: Uint8Array) => new Uint8Array(createHmac('sha256', ke).update(data).digest())
const codeOf = (code: string) => (err: unknown) => (err as { code?: string }).code === code

describe('rspf ids', () => {
  it('accepts FQDNs and refuses single labels, bad labels and trailing dots', () => {
    assert.equal(isFqdn('mef.example.com'), true)
    assert.equal(isFqdn('localhost'), false)
    assert.equal(isFqdn('mef.example.com.'), false)
    assert.equal(isFqdn('-a.example.com'), false)
    assert.equal(isFqdn(`${'a'.repeat(64)}.com`), false)
  })

  it('maps Absolute CSE-IDs and AE-IDs to their FQDN form (reversed path before the SP-ID)', () => {
    assert.equal(absoluteIdToFqdn('//sp.example.com/in-cse'), 'in-cse.sp.example.com')
    assert.equal(absoluteIdToFqdn('//sp.example.com/cse-1/C-ae7'), 'C-ae7.cse-1.sp.example.com')
    assert.throws(() => absoluteIdToFqdn('/in-cse'), codeOf('ERR_INVALID_ARGUMENT'))
    assert.throws(() => absoluteIdToFqdn('//sp.example.com/a_b'), codeOf('ERR_INVALID_ARGUMENT'))
    assert.throws(() => absoluteIdToFqdn('//sp.example.com/a/b/c'), codeOf('ERR_INVALID_ARGUMENT'))
  })

  it('parses KeIDs of this MEF only, lower-casing the hex part', () => {
    const rel = '00112233445566778899AABBCCDDEEFF'
    assert.deepEqual(parseKeId(`${rel}@mef.example.com`, 'mef.example.com'), {
      relativeHex: rel.toLowerCase(),
      mefFqdn: 'mef.example.com',
    })
    assert.throws(() => parseKeId(`${rel}@other.example.com`, 'mef.example.com'), codeOf('ERR_INVALID_ARGUMENT'))
    assert.throws(() => parseKeId('abc@mef.example.com', 'mef.example.com'), codeOf('ERR_INVALID_ARGUMENT'))
  })

  it('accepts the RSPF SUIDs 21-25 only', () => {
    assert.equal(parseSuid('21'), 21)
    assert.equal(parseSuid('25'), 25)
    for (const bad of ['11', '31', '2', '021', 'x1'])
      assert.throws(() => parseSuid(bad), codeOf('ERR_INVALID_ARGUMENT'))
  })

  it('validates KpmIDs as relative@FQDN', () => {
    assertKpmId('dev-1@mef.example.com')
    assert.throws(() => assertKpmId('dev 1@mef.example.com'), codeOf('ERR_INVALID_ARGUMENT'))
    assert.throws(() => assertKpmId('dev-1'), codeOf('ERR_INVALID_ARGUMENT'))
  })
})

describe('rspf derivations (TS-0003 §10.3.2, §10.3.3, §10.3.7)', () => {
  const maf = { kind: 'maf', fqdn: 'maf.example.com' } as const
  const cse = { kind: 'cse', absoluteId: '//sp.example.com/in-cse' } as const

  it('SUID 21 is Km with the spec label and the MAF-ID', () => {
    const d = derivationFor(maf, 21)
    assert.equal(d.kind, 'km')
    assert.equal(
      Buffer.from(d.data).toString('utf8'),
      'oneM2M Enrolment Key to Master Credential derivation' + 'maf.example.com',
    )
    assert.deepEqual(hmac(d.data), deriveKm(ke, 'maf.example.com'))
  })

  it('SUID 22 is Kpsa with the spec label and the Absolute CSE-ID', () => {
    const d = derivationFor(cse, 22)
    assert.equal(d.kind, 'kpsa')
    assert.equal(
      Buffer.from(d.data).toString('utf8'),
      'oneM2M Enrolment Key to Provisioned Secure Connection Key derivation' + '//sp.example.com/in-cse',
    )
    assert.deepEqual(hmac(d.data), deriveKpsa(ke, '//sp.example.com/in-cse'))
  })

  it('SUIDs 23-25 are usage-constrained keys over SUID digits and the target FQDN', () => {
    const d = derivationFor(cse, 23)
    assert.equal(d.kind, 'usage-constrained')
    assert.equal(
      Buffer.from(d.data).toString('utf8'),
      'oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation' + '23' + 'in-cse.sp.example.com',
    )
    assert.deepEqual(hmac(d.data), deriveUsageConstrainedKey(ke, 23, targetFqdn(cse)))
  })

  it('feeds ids in NFKC form', () => {
    // U+FB01 (fi ligature) normalises to "fi" under NFKC.
    const d = derivationFor({ kind: 'maf', fqdn: 'maf.example.com' }, 21)
    assert.deepEqual(hmac(d.data), deriveKm(ke, 'maf.example.com'))
    assert.deepEqual(deriveKm(ke, 'ma\uFB01.example.com'), deriveKm(ke, 'mafi.example.com'))
  })

  it('refuses SUIDs that do not fit the target kind', () => {
    assert.throws(() => derivationFor(cse, 21), codeOf('ERR_INVALID_ARGUMENT'))
    assert.throws(() => derivationFor(maf, 22), codeOf('ERR_INVALID_ARGUMENT'))
  })

  it('names KMS keys deterministically within the KMS key-id rules', () => {
    const rel = '00112233445566778899aabbccddeeff'
    const re = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
    assert.match(keKeyId(rel), re)
    assert.equal(derivedKeyId(rel, 21, maf), derivedKeyId(rel, 21, maf))
    assert.notEqual(derivedKeyId(rel, 23, cse), derivedKeyId(rel, 24, cse))
    assert.match(derivedKeyId(rel, 23, cse), re)
  })
})

describe('rspf fetch authorization', () => {
  const enrolee: Enrolee = {
    tenant: 'acme',
    enroleeId: '//sp.example.com/asn-1',
    credential: { kind: 'psk', kpmId: 'dev-1@mef.example.com' },
    targets: [{ target: 'maf.example.com', suids: [21] }],
    lifetimeSec: 3600,
  }
  const record: EnrolmentRecord = {
    tenant: 'acme',
    keId: `${'00'.repeat(16)}@mef.example.com`,
    relativeHex: '00'.repeat(16),
    keKeyId: keKeyId('00'.repeat(16)),
    enroleeId: enrolee.enroleeId,
    credentialId: credentialIdOf(enrolee.credential),
    createdAt: '2030-01-01T00:00:00.000Z',
    expiresAt: '2030-01-01T01:00:00.000Z',
  }
  const target = {
    target: { kind: 'maf', fqdn: 'maf.example.com' } as const,
    principal: { tenant: 'acme', id: 'maf-1' },
    publicJwk: '{}',
  }
  const now = new Date('2030-01-01T00:30:00Z')

  it('grants a configured target its SUID', () => {
    assert.equal(authorizeFetch({ enrolment: record, enrolee, target, suid: 21, now }).enrolment, record)
  })
  it("hides another tenant's enrolment as not found", () => {
    const other = { ...target, principal: { tenant: 'globex', id: 'maf-1' } }
    assert.throws(
      () => authorizeFetch({ enrolment: record, enrolee, target: other, suid: 21, now }),
      codeOf('ERR_NOT_FOUND'),
    )
  })
  it('treats an expired enrolment as not found', () => {
    const later = new Date('2030-01-01T01:00:00Z')
    assert.throws(
      () => authorizeFetch({ enrolment: record, enrolee, target, suid: 21, now: later }),
      codeOf('ERR_NOT_FOUND'),
    )
  })
  it('denies a SUID or a target the enrolee did not grant', () => {
    assert.throws(
      () => authorizeFetch({ enrolment: record, enrolee, target, suid: 23, now }),
      codeOf('ERR_PERMISSION_DENIED'),
    )
    const cse = { ...target, target: { kind: 'cse', absoluteId: '//sp.example.com/in-cse' } as const }
    assert.throws(
      () => authorizeFetch({ enrolment: record, enrolee, target: cse, suid: 22, now }),
      codeOf('ERR_PERMISSION_DENIED'),
    )
  })
})

describe('rspf directory', () => {
  it('indexes enrolees and refuses duplicates and unknown targets', () => {
    const t = {
      target: { kind: 'maf', fqdn: 'maf.example.com' } as const,
      principal: { tenant: 'acme', id: 'maf-1' },
      publicJwk: '{}',
    }
    const e: Enrolee = {
      tenant: 'acme',
      enroleeId: '/asn-1',
      credential: { kind: 'certificate', subjectAltName: 'URI:urn:dev:1' },
      targets: [{ target: 'maf.example.com', suids: [21] }],
      lifetimeSec: 60,
    }
    const dir = createRspfDirectory([e], [t])
    assert.equal(dir.bySubjectAltName(['DNS:x.example.com', 'URI:urn:dev:1']), e)
    assert.equal(dir.targetByPrincipal('acme', 'maf-1'), t)
    assert.equal(dir.targetByPrincipal('globex', 'maf-1'), undefined)
    assert.throws(() => createRspfDirectory([e, e], [t]), codeOf('ERR_CONFIG_INVALID'))
    assert.throws(
      () => createRspfDirectory([{ ...e, targets: [{ target: 'x.example.com', suids: [21] }] }], [t]),
      codeOf('ERR_CONFIG_INVALID'),
    )
  })
  it('splits node subjectaltname strings, quoted entries included', () => {
    assert.deepEqual(subjectAltNameEntries('DNS:a.example.com, URI:"urn:x,y", URI:m2msec://acme/dev'), [
      'DNS:a.example.com',
      'URI:urn:x,y',
      'URI:m2msec://acme/dev',
    ])
  })
})
