/**
 * The body of the final Ub `200 OK` (TS 24.109 Annex C): an XML document in namespace
 * `uri:3gpp-gba` whose root `<BootstrappingInfo>` holds `<btid>` (xs:string) and
 * `<lifetime>` (xs:dateTime, UTC), then optional elements receivers ignore.
 *
 * The parser is a deliberately small, bounded XML subset reader, not a general XML parser:
 * one optional XML declaration, elements, attributes, namespaces, text with the five
 * predefined entities and character references, comments and CDATA. A DOCTYPE (and with
 * it every entity-expansion trick) or any other processing instruction is rejected.
 */
import { invalidArgument, type M2msecError } from '@m2msec/errors'

/** XML namespace of the BootstrappingInfo document (TS 24.109 Annex C). */
export const BOOTSTRAPPING_INFO_NAMESPACE = 'uri:3gpp-gba'

/**
 * Media type BSF implementations send with the document. Seen in implementations, not read
 * from the TS 24.109 text (see docs/gba-ub.md).
 */
export const BOOTSTRAPPING_INFO_CONTENT_TYPE = 'application/vnd.3gpp.bsf+xml'

/** Largest document (characters) {@link parseBootstrappingInfo} accepts. */
export const MAX_BOOTSTRAPPING_INFO_LENGTH = 8192

const MAX_DEPTH = 16
const MAX_ELEMENTS = 256

/** The fields of a BootstrappingInfo document. */
export interface BootstrappingInfo {
  /** B-TID, base64(RAND)@BSF host (TS 33.220 §4.5.2). */
  btid: string
  /** Expiry of the bootstrapping session (Ks). */
  lifetime: Date
}

function malformed(message: string): M2msecError {
  return invalidArgument(`BootstrappingInfo: ${message}`)
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** xs:dateTime in UTC with a trailing Z and whole seconds (as in the TS 24.109 example). */
function formatDateTime(date: Date): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw invalidArgument('lifetime must be a valid Date', { field: 'lifetime' })
  }
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

const BTID_RE = /^[A-Za-z0-9+/]+={0,2}@[A-Za-z0-9.-]+$/

/**
 * Formats the BootstrappingInfo XML body. The lifetime is written with whole seconds
 * (milliseconds are truncated).
 *
 * @example
 * ```ts
 * bootstrappingInfo({ btid: 'I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example', lifetime: new Date('2030-01-01T00:00:00Z') })
 * // '<?xml version="1.0" encoding="UTF-8"?>\n<BootstrappingInfo xmlns="uri:3gpp-gba">\n<btid>…</btid>\n…'
 * ```
 */
export function bootstrappingInfo(info: BootstrappingInfo): string {
  if (typeof info.btid !== 'string' || !BTID_RE.test(info.btid)) {
    throw invalidArgument('btid must have the form base64@host', { field: 'btid' })
  }
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<BootstrappingInfo xmlns="${BOOTSTRAPPING_INFO_NAMESPACE}">\n` +
    `<btid>${escapeXml(info.btid)}</btid>\n` +
    `<lifetime>${formatDateTime(info.lifetime)}</lifetime>\n` +
    '</BootstrappingInfo>\n'
  )
}

// ---------------------------------------------------------------------------------------
// A bounded XML subset reader
// ---------------------------------------------------------------------------------------

interface XmlElement {
  namespace: string | undefined
  localName: string
  children: XmlElement[]
  text: string
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9._-]*(?::[A-Za-z_][A-Za-z0-9._-]*)?/
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }

function decodeText(raw: string): string {
  if (raw.includes('<')) throw malformed('"<" in text or attribute value')
  return raw.replace(/&([^;]{0,10});?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw malformed('unterminated entity reference')
    const named = PREDEFINED[ref]
    if (named !== undefined) return named
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref)
    if (m === null) throw malformed('unknown entity reference')
    const code = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2] as string, 10)
    const allowed =
      code === 0x9 ||
      code === 0xa ||
      code === 0xd ||
      (code >= 0x20 && code <= 0xd7ff) ||
      (code >= 0xe000 && code <= 0x10ffff)
    if (!allowed || (code >= 0xfffe && code <= 0xffff)) throw malformed('invalid character reference')
    return String.fromCodePoint(code)
  })
}

function parseXml(xml: string): XmlElement {
  let pos = 0
  let elements = 0
  const startsWith = (s: string): boolean => xml.startsWith(s, pos)
  const skipWs = (): void => {
    while (pos < xml.length && ' \t\r\n'.includes(xml[pos] as string)) pos++
  }
  const skipMisc = (): void => {
    for (;;) {
      skipWs()
      if (startsWith('<!--')) {
        const end = xml.indexOf('-->', pos + 4)
        if (end < 0) throw malformed('unterminated comment')
        if (xml.slice(pos + 4, end).includes('--')) throw malformed('"--" inside a comment')
        pos = end + 3
      } else if (startsWith('<?')) {
        throw malformed('processing instructions are not accepted')
      } else if (startsWith('<!')) {
        throw malformed('DOCTYPE and other declarations are not accepted')
      } else {
        return
      }
    }
  }

  if (xml.charCodeAt(0) === 0xfeff) pos = 1
  if (startsWith('<?xml')) {
    const end = xml.indexOf('?>', pos)
    if (end < 0) throw malformed('unterminated XML declaration')
    const decl = xml.slice(pos + 5, end)
    if (!/^\s+version\s*=\s*["']1\.[0-9]+["']/.test(decl)) throw malformed('XML declaration without version')
    const enc = /encoding\s*=\s*["']([^"']*)["']/.exec(decl)
    if (enc !== null && (enc[1] ?? '').toLowerCase() !== 'utf-8') throw malformed('encoding must be UTF-8')
    pos = end + 2
  }
  skipMisc()

  const readName = (): string => {
    const m = NAME_RE.exec(xml.slice(pos, pos + 256))
    if (m === null) throw malformed('expected a name')
    pos += m[0].length
    return m[0]
  }

  const parseElement = (scope: ReadonlyMap<string, string>, depth: number): XmlElement => {
    if (depth > MAX_DEPTH) throw malformed('nesting too deep')
    if (++elements > MAX_ELEMENTS) throw malformed('too many elements')
    if (xml[pos] !== '<') throw malformed('expected an element')
    pos++
    const qname = readName()
    const attrs = new Map<string, string>()
    for (;;) {
      const before = pos
      skipWs()
      if (startsWith('/>') || startsWith('>')) break
      if (pos === before) throw malformed('expected whitespace before an attribute')
      const name = readName()
      skipWs()
      if (xml[pos] !== '=') throw malformed('expected "=" after an attribute name')
      pos++
      skipWs()
      const q = xml[pos]
      if (q !== '"' && q !== "'") throw malformed('attribute value must be quoted')
      const end = xml.indexOf(q, pos + 1)
      if (end < 0) throw malformed('unterminated attribute value')
      if (attrs.has(name)) throw malformed('duplicate attribute')
      attrs.set(name, decodeText(xml.slice(pos + 1, end)))
      pos = end + 1
    }

    const ns = new Map(scope)
    for (const [name, value] of attrs) {
      if (name === 'xmlns') ns.set('', value)
      else if (name.startsWith('xmlns:')) ns.set(name.slice(6), value)
    }
    const colon = qname.indexOf(':')
    const prefix = colon < 0 ? '' : qname.slice(0, colon)
    const namespace = ns.get(prefix)
    if (prefix !== '' && namespace === undefined) throw malformed('undeclared namespace prefix')
    const element: XmlElement = {
      namespace: namespace === '' ? undefined : namespace,
      localName: colon < 0 ? qname : qname.slice(colon + 1),
      children: [],
      text: '',
    }
    if (startsWith('/>')) {
      pos += 2
      return element
    }
    pos++ // '>'
    for (;;) {
      if (pos >= xml.length) throw malformed('unterminated element')
      if (startsWith('</')) {
        pos += 2
        if (readName() !== qname) throw malformed('mismatched end tag')
        skipWs()
        if (xml[pos] !== '>') throw malformed('expected ">"')
        pos++
        return element
      }
      if (startsWith('<!--')) {
        skipMisc()
        continue
      }
      if (startsWith('<![CDATA[')) {
        const end = xml.indexOf(']]>', pos + 9)
        if (end < 0) throw malformed('unterminated CDATA section')
        element.text += xml.slice(pos + 9, end)
        pos = end + 3
        continue
      }
      if (startsWith('<?') || startsWith('<!')) throw malformed('declarations are not accepted inside elements')
      if (xml[pos] === '<') {
        element.children.push(parseElement(ns, depth + 1))
        continue
      }
      const next = xml.indexOf('<', pos)
      const end = next < 0 ? xml.length : next
      element.text += decodeText(xml.slice(pos, end))
      pos = end
    }
  }

  const root = parseElement(new Map(), 1)
  skipMisc()
  if (pos !== xml.length) throw malformed('content after the root element')
  return root
}

// xs:dateTime with a mandatory zone: the spec sends UTC ('Z'); an explicit offset is tolerated.
const DATE_TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

function parseDateTime(text: string): Date {
  const m = DATE_TIME_RE.exec(text)
  if (m === null) throw malformed('lifetime must be an xs:dateTime with a time zone')
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const utc = Date.UTC(year, month - 1, day, hour, minute, second)
  const check = new Date(utc)
  // Date.UTC rolls 2021-02-30 over to March; a round trip catches impossible dates.
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    throw malformed('lifetime is not a valid date and time')
  }
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(`0${m[7]}`) * 1000)
  const zone = m[8] as string
  let offsetMinutes = 0
  if (zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1
    const [h, min] = zone.slice(1).split(':').map(Number) as [number, number]
    if (h > 14 || min > 59) throw malformed('lifetime has an invalid time zone')
    offsetMinutes = sign * (h * 60 + min)
  }
  return new Date(utc + fraction - offsetMinutes * 60_000)
}

/**
 * Parses a BootstrappingInfo document (UE side). Requires the root element in namespace
 * `uri:3gpp-gba` with exactly one `btid` and one `lifetime` child; ignores unknown elements
 * and attributes (TS 24.109 Annex C). Throws ERR_INVALID_ARGUMENT otherwise.
 *
 * @example
 * ```ts
 * const { btid, lifetime } = parseBootstrappingInfo(await response.text())
 * ```
 */
export function parseBootstrappingInfo(xml: string | Uint8Array): BootstrappingInfo {
  let text: string
  if (xml instanceof Uint8Array) {
    if (xml.length > MAX_BOOTSTRAPPING_INFO_LENGTH * 4) throw malformed('document is too large')
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(xml)
    } catch {
      throw malformed('document is not valid UTF-8')
    }
  } else if (typeof xml === 'string') {
    text = xml
  } else {
    throw malformed('document must be a string or bytes')
  }
  if (text.length > MAX_BOOTSTRAPPING_INFO_LENGTH) throw malformed('document is too large')
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    // XML 1.0 §2.2 Char: no C0 controls other than tab, newline and carriage return.
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) || code === 0xfffe || code === 0xffff) {
      throw malformed('document contains a control character')
    }
  }

  const root = parseXml(text)
  if (root.namespace !== BOOTSTRAPPING_INFO_NAMESPACE || root.localName !== 'BootstrappingInfo') {
    throw malformed('root element must be BootstrappingInfo in namespace uri:3gpp-gba')
  }
  if (root.text.trim() !== '') throw malformed('unexpected text in BootstrappingInfo')
  const pick = (name: string): string => {
    const found = root.children.filter((c) => c.namespace === BOOTSTRAPPING_INFO_NAMESPACE && c.localName === name)
    if (found.length !== 1) throw malformed(`expected exactly one ${name} element`)
    const el = found[0] as XmlElement
    if (el.children.length > 0) throw malformed(`${name} must hold text only`)
    return el.text.trim()
  }
  const btid = pick('btid')
  if (!BTID_RE.test(btid)) throw malformed('btid must have the form base64@host')
  return { btid, lifetime: parseDateTime(pick('lifetime')) }
}
