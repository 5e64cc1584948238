/**
 * The hand-written DER paths of the enrolment hot path: leaf certificates (read back by
 * node:crypto's X.509 parser) and CSR parsing on crafted requests (odd but valid encodings and
 * malformed ones).
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createPublicKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto'
import {
  certificateTbs,
  checkCsr,
  issueLeafCertificate,
  newSerialHex,
  spkiKeyIdentifier,
  type CaSigner,
} from '../src/index.ts'
import { oid, tlv } from '../src/der.ts'
import { createTestCa, DOMAIN, random, type TestCa } from './helpers.ts'

const URI = `m2m://${DOMAIN}/in-cse/Cae-1`
const SEQ = 0x30

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

interface CsrParts {
  subject?: Uint8Array
  spki?: Uint8Array
  extensions?: Uint8Array[]
  sigAlg?: Uint8Array
  trailing?: Uint8Array
  key?: KeyObject
}

const ext = (id: string, value: Uint8Array) => tlv(SEQ, oid(id), tlv(0x04, value))
const san = (...names: Uint8Array[]) => ext('2.5.29.17', tlv(SEQ, ...names))
const uri = (u: string) => tlv(0x86, Buffer.from(u, 'latin1'))
const cn = (tag: number, value: Uint8Array) => tlv(SEQ, tlv(0x31, tlv(SEQ, oid('2.5.4.3'), tlv(tag, value))))

/** A CertificationRequest built by hand and signed with node:crypto. */
function craftCsr(p: CsrParts = {}): Uint8Array {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const key = p.key ?? pair.privateKey
  const spki = p.spki ?? new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' }) as Buffer)
  const extensions = p.extensions ?? [san(uri(URI))]
  const attributes = tlv(0xa0, tlv(SEQ, oid('1.2.840.113549.1.9.14'), tlv(0x31, tlv(SEQ, ...extensions))))
  const info = tlv(SEQ, tlv(0x02, Uint8Array.of(0)), p.subject ?? tlv(SEQ), spki, attributes)
  const sig = sign('sha256', info, key)
  const sigAlg = p.sigAlg ?? tlv(SEQ, oid('1.2.840.10045.4.3.2'))
  return tlv(SEQ, info, sigAlg, tlv(0x03, Uint8Array.of(0), sig), ...(p.trailing === undefined ? [] : [p.trailing]))
}

describe('@m2msec/pki DER paths', () => {
  let ca: TestCa
  before(async () => {
    ca = await createTestCa()
  })

  const issue = async (commonName: string | undefined, notAfter: Date, signer?: CaSigner) => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const spki = new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' }))
    const der = await issueLeafCertificate(
      {
        serialHex: newSerialHex(random),
        publicKeySpki: spki,
        names: { uris: [URI], dnsNames: [`cse-1.${DOMAIN}`] },
        notBefore: new Date('2025-01-01T00:00:00.750Z'),
        notAfter,
        crlUrl: 'http://127.0.0.1:1/crl',
        ...(commonName === undefined ? {} : { commonName }),
      },
      { certificate: ca.issuing, signer: signer ?? ca.issuingSigner },
    )
    return { der, spki }
  }

  test('leaf certificates read back with node:crypto: names, CN string types, times, key ids', async () => {
    const issuing = new X509Certificate(ca.issuing)
    const shown: Record<string, string> = { '#abc, "q"': '\\#abc\\, \\"q\\"' } // node escapes these
    for (const commonName of ['meter-1', '#abc, "q"', 'Zähler 1 ✓', undefined]) {
      const { der, spki } = await issue(commonName, new Date('2051-06-01T12:00:00Z'))
      const cert = new X509Certificate(der)
      assert.ok(cert.verify(issuing.publicKey), 'signed by the issuing CA key')
      assert.ok(cert.checkIssued(issuing))
      if (commonName === undefined) assert.ok(!cert.subject, 'empty subject')
      else assert.equal(cert.subject, `CN=${shown[commonName] ?? commonName}`)
      assert.equal(cert.subjectAltName, `URI:${URI}, DNS:cse-1.${DOMAIN}`)
      assert.equal(new Date(cert.validFrom).toISOString(), '2025-01-01T00:00:00.000Z', 'milliseconds dropped')
      assert.equal(new Date(cert.validTo).toISOString(), '2051-06-01T12:00:00.000Z', 'GeneralizedTime from 2050')
      assert.equal(cert.ca, false)
      assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1'], 'EKU clientAuth, serverAuth')
      assert.ok(Buffer.from(der).includes(Buffer.from(spkiKeyIdentifier(spki))), 'SKI is SHA-1 of the key bits')
      assert.ok(Buffer.from(der).includes(Buffer.from(certificateTbs(der))))
    }
    const utc = new X509Certificate((await issue('x', new Date('2049-12-31T23:59:59Z'))).der)
    assert.equal(new Date(utc.validTo).toISOString(), '2049-12-31T23:59:59.000Z')
  })

  test('a signer that does not return r||s is refused', async () => {
    const bad: CaSigner = { sign: () => Promise.resolve(new Uint8Array(70)) }
    assert.equal(await codeOf(issue('x', new Date('2030-01-01T00:00:00Z'), bad)), 'ERR_INTERNAL')
  })

  test('crafted CSRs: accepted variants', async () => {
    const bmp = Buffer.from('Zähler', 'utf16le').swap16()
    const csr = await checkCsr(craftCsr({ subject: cn(0x1e, bmp) }))
    assert.equal(csr.commonName, 'Zähler')
    assert.deepEqual(csr.names, { uris: [URI], dnsNames: [] })
    const withNull = await checkCsr(craftCsr({ sigAlg: tlv(SEQ, oid('1.2.840.10045.4.3.2'), Uint8Array.of(5, 0)) }))
    assert.equal(withNull.commonName, undefined)
    const long = await checkCsr(craftCsr({ subject: cn(0x0c, Buffer.from('x'.repeat(65))) }))
    assert.equal(long.commonName, undefined, 'a CN over 64 characters is not used')
  })

  test('crafted CSRs: refusals with their codes', async () => {
    const ip = tlv(0x87, Uint8Array.of(127, 0, 0, 1))
    assert.equal(await codeOf(checkCsr(craftCsr({ extensions: [san(uri(URI), ip)] }))), 'ERR_INVALID_ARGUMENT')
    assert.equal(
      await codeOf(checkCsr(craftCsr({ extensions: [san(uri(URI)), san(uri(URI))] }))),
      'ERR_INVALID_ARGUMENT',
    )
    assert.equal(await codeOf(checkCsr(craftCsr({ extensions: [] }))), 'ERR_INVALID_ARGUMENT')
    assert.equal(await codeOf(checkCsr(craftCsr({ trailing: Uint8Array.of(5, 0) }))), 'ERR_INVALID_ARGUMENT')
    const good = craftCsr()
    assert.equal(await codeOf(checkCsr(good.subarray(0, good.length - 5))), 'ERR_INVALID_ARGUMENT')
    const sha384 = tlv(SEQ, oid('1.2.840.10045.4.3.3'))
    assert.equal(await codeOf(checkCsr(craftCsr({ sigAlg: sha384 }))), 'ERR_KEY_TYPE_MISMATCH')
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const compressed = new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' }))
    const point = compressed.slice(26)
    const prefix = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex')
    const x = point.subarray(1, 33)
    const y = point.subarray(33)
    const compressedSpki = Buffer.concat([prefix, Uint8Array.of(2 + ((y[31] ?? 0) & 1)), x])
    assert.equal(
      await codeOf(checkCsr(craftCsr({ key: pair.privateKey, spki: compressedSpki }))),
      'ERR_KEY_TYPE_MISMATCH',
    )
    const offCurve = compressed.slice()
    offCurve[90] = (offCurve[90] ?? 0) ^ 1
    assert.equal(await codeOf(checkCsr(craftCsr({ key: pair.privateKey, spki: offCurve }))), 'ERR_KEY_TYPE_MISMATCH')
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey
    const mismatch = new Uint8Array(other.export({ format: 'der', type: 'spki' }))
    assert.equal(await codeOf(checkCsr(craftCsr({ key: pair.privateKey, spki: mismatch }))), 'ERR_SIGNATURE_INVALID')
  })
})
