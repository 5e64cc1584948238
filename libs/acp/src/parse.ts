/**
 * Validation of access-control policies from untrusted JSON.
 *
 * Every element is checked (crontab, CIDR, bit mask, coordinates, country codes, types) and an
 * error names the path of the first bad field (`privileges.acr[0].acco[1].actw[0]`), using the
 * key spelling of the input. Nothing is partially accepted: the result is either a complete,
 * normalized policy or an `ERR_INVALID_ARGUMENT`.
 *
 * Both TS-0004 long names and oneM2M short names are accepted (not both for the same element).
 * Unknown elements are rejected rather than ignored: ignoring a restriction the engine does not
 * know (e.g. Rel-4 `acco/acul`) would grant more than the author wrote. Empty lists are
 * rejected where "empty" and "absent" would mean different things (an empty accessControlWindow
 * is "matches no time" under the reference algorithm's OR, but "no constraint" to a reader).
 */
import { invalidArgument } from '@m2msec/errors'
import { parseCidr } from './cidr.ts'
import { parseCrontab } from './crontab.ts'
import { isValidCoordinate } from './geo.ts'
import type {
  AccessControlContext,
  AccessControlIpAddresses,
  AccessControlObjectDetails,
  AccessControlPolicy,
  AccessControlRule,
  LocationRegion,
  SetOfAcrs,
} from './model.ts'
import { ALL_OPERATIONS } from './model.ts'
import { isSpDomainEntry } from './originator.ts'

/** Upper bound on any list in a policy, to bound memory and time for hostile input. */
export const MAX_LIST_LENGTH = 4096
/** Upper bound on any string in a policy. */
export const MAX_STRING_LENGTH = 2048

/** Canonical element name -> accepted aliases. */
export type Spec = Record<string, readonly string[]>

/** A value with the path it was read from. */
export interface Field {
  readonly value: unknown
  readonly path: string
}

/** A Spec turned into a key -> canonical name lookup. */
export type ElementNames = ReadonlyMap<string, string>

/** Prepares a Spec for `readObject` (done once per element type, at module load). */
export function elementNames(spec: Spec): ElementNames {
  const names = new Map<string, string>()
  for (const [name, aliases] of Object.entries(spec)) {
    names.set(name, name)
    for (const alias of aliases) names.set(alias, name)
  }
  return names
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Resolves an object's keys against canonical names and their aliases (short names); unknown
 * keys and a name given twice are rejected. Internal to this package (tokens.ts uses it).
 */
export function readObject(input: unknown, path: string, names: ElementNames): Map<string, Field> {
  if (!isPlainObject(input)) throw invalidArgument(`${path}: must be an object`, { path })
  const out = new Map<string, Field>()
  for (const key of Object.keys(input)) {
    const canonical = names.get(key)
    const keyPath = path === '' ? key : `${path}.${key}`
    if (canonical === undefined) {
      throw invalidArgument(`${keyPath}: unknown element "${key}"`, { path: keyPath })
    }
    if (out.has(canonical)) {
      throw invalidArgument(`${keyPath}: "${canonical}" is given twice (long and short name)`, {
        path: keyPath,
      })
    }
    out.set(canonical, { value: input[key], path: keyPath })
  }
  return out
}

const IP_ADDRESSES = elementNames({ ipv4Addresses: ['ipv4'], ipv6Addresses: ['ipv6'] })
const LOCATION_REGION = elementNames({ countryCode: ['accc'], circRegion: ['accr'] })
const CONTEXT = elementNames({
  accessControlWindow: ['actw'],
  accessControlIpAddresses: ['acip'],
  accessControlLocationRegion: ['aclr'],
})
const OBJECT_DETAILS = elementNames({
  resourceType: ['ty'],
  specializationType: ['spty'],
  childResourceType: ['chty'],
})
const RULE = elementNames({
  accessControlOriginators: ['acor'],
  accessControlOperations: ['acop'],
  accessControlContexts: ['acco'],
  accessControlAuthenticationFlag: ['acaf'],
  accessControlObjectDetails: ['acod'],
})
// TS-0004 table 6.3.5.26-1 spells the element "accessControlRules"; the XSD and the short-name
// table use "accessControlRule" / "acr". All three are accepted.
const SET_OF_ACRS = elementNames({ accessControlRule: ['acr', 'accessControlRules'] })
const POLICY = elementNames({ id: ['ri'], privileges: ['pv'], selfPrivileges: ['pvs'] })

function required(fields: Map<string, Field>, name: string, path: string): Field {
  const f = fields.get(name)
  if (f === undefined) {
    throw invalidArgument(`${path}: "${name}" is required`, { path })
  }
  return f
}

function readString(f: Field): string {
  if (typeof f.value !== 'string' || f.value.length === 0) {
    throw invalidArgument(`${f.path}: must be a non-empty string`, { path: f.path })
  }
  if (f.value.length > MAX_STRING_LENGTH) {
    throw invalidArgument(`${f.path}: longer than ${MAX_STRING_LENGTH} characters`, {
      path: f.path,
    })
  }
  return f.value
}

function readList<T>(f: Field, item: (el: Field) => T): T[] {
  if (!Array.isArray(f.value)) throw invalidArgument(`${f.path}: must be a list`, { path: f.path })
  if (f.value.length === 0) {
    throw invalidArgument(`${f.path}: must not be empty (omit the element instead)`, {
      path: f.path,
    })
  }
  if (f.value.length > MAX_LIST_LENGTH) {
    throw invalidArgument(`${f.path}: more than ${MAX_LIST_LENGTH} entries`, { path: f.path })
  }
  return f.value.map((value: unknown, i) => item({ value, path: `${f.path}[${i}]` }))
}

function readResourceType(f: Field): number {
  if (typeof f.value !== 'number' || !Number.isSafeInteger(f.value) || f.value < 0) {
    throw invalidArgument(`${f.path}: must be a resource type number`, { path: f.path })
  }
  return f.value
}

function readOriginator(f: Field): string {
  const s = readString(f)
  if (/\s/.test(s)) throw invalidArgument(`${f.path}: must not contain whitespace`, { path: f.path })
  if (isSpDomainEntry(s) && s.includes('*')) {
    throw invalidArgument(`${f.path}: wildcards are not applicable to SP domain names`, {
      path: f.path,
    })
  }
  if (s === '//') throw invalidArgument(`${f.path}: empty SP domain`, { path: f.path })
  return s
}

function readOperations(f: Field): number {
  const v = f.value
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > ALL_OPERATIONS) {
    throw invalidArgument(`${f.path}: must be an operation bit mask 1-${ALL_OPERATIONS}`, {
      path: f.path,
    })
  }
  return v
}

function readIpAddresses(f: Field): AccessControlIpAddresses {
  const fields = readObject(f.value, f.path, IP_ADDRESSES)
  const v4 = fields.get('ipv4Addresses')
  const v6 = fields.get('ipv6Addresses')
  if (v4 === undefined && v6 === undefined) {
    throw invalidArgument(`${f.path}: needs ipv4Addresses or ipv6Addresses`, { path: f.path })
  }
  const out: { ipv4Addresses?: string[]; ipv6Addresses?: string[] } = {}
  if (v4 !== undefined) {
    out.ipv4Addresses = readList(v4, (el) => parseCidr(readString(el), 4, el.path).source)
  }
  if (v6 !== undefined) {
    out.ipv6Addresses = readList(v6, (el) => parseCidr(readString(el), 6, el.path).source)
  }
  return out
}

function readLocationRegion(f: Field): LocationRegion {
  const fields = readObject(f.value, f.path, LOCATION_REGION)
  const cc = fields.get('countryCode')
  const circ = fields.get('circRegion')
  if ((cc === undefined) === (circ === undefined)) {
    throw invalidArgument(`${f.path}: needs exactly one of countryCode or circRegion`, {
      path: f.path,
    })
  }
  if (cc !== undefined) {
    return {
      countryCode: readList(cc, (el) => {
        const s = readString(el)
        if (!/^[A-Za-z]{2}$/.test(s)) {
          throw invalidArgument(`${el.path}: must be a 2-letter country code`, { path: el.path })
        }
        return s.toUpperCase()
      }),
    }
  }
  const c = (circ as Field).value
  const p = (circ as Field).path
  if (!Array.isArray(c) || c.length !== 3 || !c.every((x) => typeof x === 'number')) {
    throw invalidArgument(`${p}: must be [latitude, longitude, radius]`, { path: p })
  }
  const [lat, lon, radius] = c as [number, number, number]
  if (!isValidCoordinate(lat, lon)) {
    throw invalidArgument(`${p}: latitude must be within ±90 and longitude within ±180`, {
      path: p,
    })
  }
  if (!Number.isFinite(radius) || radius < 0) {
    throw invalidArgument(`${p}: radius must be a non-negative number of metres`, { path: p })
  }
  return { circRegion: [lat, lon, radius] }
}

function readContext(f: Field): AccessControlContext {
  const fields = readObject(f.value, f.path, CONTEXT)
  const out: {
    accessControlWindow?: string[]
    accessControlIpAddresses?: AccessControlIpAddresses
    accessControlLocationRegion?: LocationRegion
  } = {}
  const w = fields.get('accessControlWindow')
  if (w !== undefined) {
    out.accessControlWindow = readList(w, (el) => parseCrontab(readString(el), el.path).source)
  }
  const ip = fields.get('accessControlIpAddresses')
  if (ip !== undefined) out.accessControlIpAddresses = readIpAddresses(ip)
  const loc = fields.get('accessControlLocationRegion')
  if (loc !== undefined) out.accessControlLocationRegion = readLocationRegion(loc)
  return out
}

function readObjectDetails(f: Field): AccessControlObjectDetails {
  const fields = readObject(f.value, f.path, OBJECT_DETAILS)
  const out: { resourceType?: number; specializationType?: string; childResourceType: number[] } = {
    childResourceType: readList(required(fields, 'childResourceType', f.path), readResourceType),
  }
  const ty = fields.get('resourceType')
  if (ty !== undefined) out.resourceType = readResourceType(ty)
  const spty = fields.get('specializationType')
  if (spty !== undefined) {
    // A mgmtDefinition is numeric in resource content; TS-0003 compares it "as a string".
    out.specializationType =
      typeof spty.value === 'number' && Number.isSafeInteger(spty.value) ? String(spty.value) : readString(spty)
  }
  return out
}

/** Validates one `m2m:accessControlRule`; `path` prefixes error messages. */
export function parseRule(input: unknown, path = 'rule'): AccessControlRule {
  const fields = readObject(input, path, RULE)
  const out: {
    accessControlOriginators: string[]
    accessControlOperations: number
    accessControlContexts?: AccessControlContext[]
    accessControlAuthenticationFlag?: boolean
    accessControlObjectDetails?: AccessControlObjectDetails[]
  } = {
    accessControlOriginators: readList(required(fields, 'accessControlOriginators', path), readOriginator),
    accessControlOperations: readOperations(required(fields, 'accessControlOperations', path)),
  }
  const acco = fields.get('accessControlContexts')
  if (acco !== undefined) out.accessControlContexts = readList(acco, readContext)
  const acaf = fields.get('accessControlAuthenticationFlag')
  if (acaf !== undefined) {
    if (typeof acaf.value !== 'boolean') {
      throw invalidArgument(`${acaf.path}: must be a boolean`, { path: acaf.path })
    }
    out.accessControlAuthenticationFlag = acaf.value
  }
  const acod = fields.get('accessControlObjectDetails')
  if (acod !== undefined) out.accessControlObjectDetails = readList(acod, readObjectDetails)
  return out
}

/**
 * Validates an `m2m:setOfAcrs` (`{ accessControlRule: [...] }`, short `{ acr: [...] }`).
 * `minRules` is 1 for selfPrivileges, 0 otherwise.
 */
export function parseSetOfAcrs(input: unknown, path = 'setOfAcrs', minRules = 0): SetOfAcrs {
  const fields = readObject(input, path, SET_OF_ACRS)
  const f = fields.get('accessControlRule')
  if (f === undefined) {
    if (minRules > 0) {
      throw invalidArgument(`${path}: needs at least ${minRules} rule`, { path })
    }
    return { accessControlRule: [] }
  }
  if (Array.isArray(f.value) && f.value.length < minRules) {
    throw invalidArgument(`${f.path}: needs at least ${minRules} rule`, { path: f.path })
  }
  // An empty rule set is legal (multiplicity 0..n) and means the same as an absent one.
  if (Array.isArray(f.value) && f.value.length === 0) return { accessControlRule: [] }
  return { accessControlRule: readList(f, (el) => parseRule(el.value, el.path)) }
}

/**
 * Validates an access-control policy from untrusted JSON.
 *
 * @example
 * ```ts
 * const acp = parsePolicy(JSON.parse(text)) // throws ERR_INVALID_ARGUMENT naming the bad field
 * ```
 */
export function parsePolicy(input: unknown, path = ''): AccessControlPolicy {
  const fields = readObject(input, path, POLICY)
  const at = path === '' ? 'policy' : path
  return {
    id: readString(required(fields, 'id', at)),
    privileges: parseSetOfAcrs(required(fields, 'privileges', at).value, fieldPath(fields, 'privileges')),
    selfPrivileges: parseSetOfAcrs(
      required(fields, 'selfPrivileges', at).value,
      fieldPath(fields, 'selfPrivileges'),
      1,
    ),
  }
}

function fieldPath(fields: Map<string, Field>, name: string): string {
  return fields.get(name)?.path ?? name
}

/** Validates a list of policies; duplicate ids are rejected. */
export function parsePolicies(input: unknown): AccessControlPolicy[] {
  if (!Array.isArray(input)) throw invalidArgument('policies: must be a list', { path: '' })
  const seen = new Set<string>()
  return input.map((p: unknown, i) => {
    const policy = parsePolicy(p, `[${i}]`)
    if (seen.has(policy.id)) {
      throw invalidArgument(`[${i}].id: duplicate policy id "${policy.id}"`, { path: `[${i}].id` })
    }
    seen.add(policy.id)
    return policy
  })
}
