import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { bootstrappingInfo, MAX_BOOTSTRAPPING_INFO_LENGTH, parseBootstrappingInfo } from '../src/index.ts'
import { SET1_BTID, TRACE } from './support/vectors.ts'

const NS = 'uri:3gpp-gba'
const LIFETIME = new Date('2030-01-02T03:04:05Z')

describe('BootstrappingInfo format', () => {
  test('exact document: namespace uri:3gpp-gba, btid then lifetime, UTC with Z', () => {
    assert.equal(
      bootstrappingInfo({ btid: SET1_BTID, lifetime: LIFETIME }),
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
        '<BootstrappingInfo xmlns="uri:3gpp-gba">\n' +
        `<btid>${SET1_BTID}</btid>\n` +
        '<lifetime>2030-01-02T03:04:05Z</lifetime>\n' +
        '</BootstrappingInfo>\n',
    )
  })
  test('milliseconds are truncated', () => {
    const xml = bootstrappingInfo({ btid: SET1_BTID, lifetime: new Date('2030-01-02T03:04:05.999Z') })
    assert.ok(xml.includes('<lifetime>2030-01-02T03:04:05Z</lifetime>'))
  })
  test('round trip', () => {
    assert.deepEqual(parseBootstrappingInfo(bootstrappingInfo({ btid: SET1_BTID, lifetime: LIFETIME })), {
      btid: SET1_BTID,
      lifetime: LIFETIME,
    })
  })
  test('bad inputs', () => {
    assert.throws(() => bootstrappingInfo({ btid: 'no-at-sign', lifetime: LIFETIME }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => bootstrappingInfo({ btid: 'a<b@host', lifetime: LIFETIME }), { code: 'ERR_INVALID_ARGUMENT' })
    assert.throws(() => bootstrappingInfo({ btid: SET1_BTID, lifetime: new Date(NaN) }), {
      code: 'ERR_INVALID_ARGUMENT',
    })
  })
})

describe('BootstrappingInfo parse', () => {
  test('the real BSF body of the fasferraz/GBA_ME trace', () => {
    const info = parseBootstrappingInfo(TRACE.body)
    assert.equal(info.btid, TRACE.btid)
    assert.equal(info.lifetime.toISOString(), '2020-10-28T23:36:26.000Z')
  })
  test('as UTF-8 bytes, with a BOM', () => {
    const bytes = new TextEncoder().encode(`\ufeff${TRACE.body}`)
    assert.equal(parseBootstrappingInfo(bytes).btid, TRACE.btid)
  })
  test('prefixed namespace, unknown elements/attributes, Extension, comments, CDATA, entities', () => {
    const xml =
      `<!-- first --><g:BootstrappingInfo xmlns:g="${NS}" foo="bar">` +
      `<g:btid><![CDATA[${SET1_BTID}]]></g:btid>` +
      '<other xmlns="urn:x"><btid>not this one</btid></other>' +
      `<g:lifetime attr='1'> 2030-01-02T03:04:05Z </g:lifetime>` +
      '<g:Extension><g:currenttime>2030-01-01T00:00:00Z</g:currenttime></g:Extension>' +
      '<!-- last --></g:BootstrappingInfo>\n'
    assert.deepEqual(parseBootstrappingInfo(xml), { btid: SET1_BTID, lifetime: LIFETIME })
    const escaped = `<BootstrappingInfo xmlns="${NS}"><btid>I1U8vpY3qJ0hiuZNrke&#x2F;NQ&#61;=&#64;bsf.example</btid><lifetime>2030-01-02T03:04:05Z</lifetime></BootstrappingInfo>`
    assert.equal(parseBootstrappingInfo(escaped).btid, 'I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example')
  })
  test('time zone offsets and fractions', () => {
    const doc = (t: string) =>
      `<BootstrappingInfo xmlns="${NS}"><btid>${SET1_BTID}</btid><lifetime>${t}</lifetime></BootstrappingInfo>`
    assert.equal(parseBootstrappingInfo(doc('2030-01-02T05:04:05+02:00')).lifetime.getTime(), LIFETIME.getTime())
    assert.equal(parseBootstrappingInfo(doc('2030-01-02T03:04:05.25Z')).lifetime.getTime(), LIFETIME.getTime() + 250)
  })
})

const ok = (inner: string) => `<BootstrappingInfo xmlns="${NS}">${inner}</BootstrappingInfo>`
const BTID = `<btid>${SET1_BTID}</btid>`
const LT = '<lifetime>2030-01-02T03:04:05Z</lifetime>'

const MALFORMED: [string, string | Uint8Array][] = [
  ['empty', ''],
  ['no namespace', `<BootstrappingInfo>${BTID}${LT}</BootstrappingInfo>`],
  ['wrong namespace', `<BootstrappingInfo xmlns="uri:3gpp-gbx">${BTID}${LT}</BootstrappingInfo>`],
  ['wrong root', `<Bootstrapping xmlns="${NS}">${BTID}${LT}</Bootstrapping>`],
  ['btid in another namespace', ok(`<btid xmlns="urn:x">${SET1_BTID}</btid>${LT}`)],
  ['missing btid', ok(LT)],
  ['two btid', ok(`${BTID}${BTID}${LT}`)],
  ['missing lifetime', ok(BTID)],
  ['btid not base64@host', ok(`<btid>hello world</btid>${LT}`)],
  ['btid with child element', ok(`<btid><x/></btid>${LT}`)],
  ['lifetime without zone', ok(`${BTID}<lifetime>2030-01-02T03:04:05</lifetime>`)],
  ['lifetime impossible date', ok(`${BTID}<lifetime>2021-02-30T00:00:00Z</lifetime>`)],
  ['lifetime garbage', ok(`${BTID}<lifetime>tomorrow</lifetime>`)],
  ['lifetime bad zone', ok(`${BTID}<lifetime>2030-01-02T03:04:05+25:00</lifetime>`)],
  ['text in root', ok(`${BTID}hello${LT}`)],
  ['DOCTYPE (entity expansion)', `<!DOCTYPE x [<!ENTITY a "aaaa">]>${ok(`${BTID}${LT}`)}`],
  ['processing instruction', `<?xml-stylesheet href="x"?>${ok(`${BTID}${LT}`)}`],
  ['undeclared entity', ok(`<btid>&a;</btid>${LT}`)],
  ['unterminated entity', ok(`<btid>a&amp b</btid>${LT}`)],
  ['bad character reference', ok(`<btid>&#0;</btid>${LT}`)],
  ['mismatched end tag', `<BootstrappingInfo xmlns="${NS}">${BTID}${LT}</Other>`],
  ['unterminated', `<BootstrappingInfo xmlns="${NS}">${BTID}${LT}`],
  ['content after root', `${ok(`${BTID}${LT}`)}<x/>`],
  ['undeclared prefix', `<g:BootstrappingInfo>${BTID}${LT}</g:BootstrappingInfo>`],
  ['duplicate attribute', `<BootstrappingInfo xmlns="${NS}" a="1" a="2">${BTID}${LT}</BootstrappingInfo>`],
  ['unquoted attribute', `<BootstrappingInfo xmlns=${NS}>${BTID}${LT}</BootstrappingInfo>`],
  ['non UTF-8 encoding', `<?xml version="1.0" encoding="ISO-8859-1"?>${ok(`${BTID}${LT}`)}`],
  ['control character', ok(`<btid>\u0001</btid>${LT}`)],
  ['nesting too deep', ok(`${BTID}${LT}${'<a>'.repeat(20)}${'</a>'.repeat(20)}`)],
  ['too many elements', ok(`${BTID}${LT}${'<a/>'.repeat(300)}`)],
  ['too large', ok(`${BTID}${LT}<!--${'x'.repeat(MAX_BOOTSTRAPPING_INFO_LENGTH)}-->`)],
  ['invalid UTF-8 bytes', Uint8Array.of(0x3c, 0xff, 0xfe, 0x3e)],
]

describe('malformed BootstrappingInfo is ERR_INVALID_ARGUMENT', () => {
  for (const [name, xml] of MALFORMED) {
    test(name, () => {
      assert.throws(() => parseBootstrappingInfo(xml), { code: 'ERR_INVALID_ARGUMENT' })
    })
  }
})
