/**
 * accessControlOriginators matching (TS-0003 §7.1.3 and table 7.1.3-2, TS-0004 §7.3.3.15).
 *
 * Reading of the specification, applied here:
 * - `all` matches every originator.
 * - An SP domain is written `//sp.example` (an absolute id with no path). It matches every
 *   originator whose SP-ID is `sp.example`: absolute ids under it, and SP-relative or
 *   CSE-relative ids when the hosting SP is `sp.example`. It takes no wildcard (TS-0003:
 *   "Wildcard characters are not applicable to SP domain names"); `parse.ts` rejects one.
 * - CSE-IDs and AE-IDs may contain `*`. A `*` matches zero or more characters other than `/`
 *   ("The scope of a '*' is terminated by a following '/' character"), so `//*\/myCSE*`
 *   matches `//any.sp/myCSE42` but not `//any.sp/myCSE42/C1`. The SP-ID segment of an
 *   absolute id may itself be `*` (table 7.1.3-2: `//*\/myCSEID`).
 * - The three id forms are compared in a common form: an SP-relative entry (`/myCSE*\/C98*`)
 *   means "from the SP that is hosting the target resource", so it matches an absolute
 *   originator of the hosting SP too; a CSE-relative entry (`C98*`, no leading `/`) means an
 *   id registered with the hosting CSE. Without `host` only same-form comparisons are possible.
 * - Group ids and role ids are compared exactly (no wildcards) against the request's
 *   `groupIds` (groups the originator is a member of) and `roleIds`. The engine cannot look
 *   into `<group>` resources itself; the caller resolves membership.
 */

import { createInternTable } from './intern.ts'

/** The hosting CSE's identity, used to put ids of different forms into one form. */
export interface HostIds {
  /** M2M-SP-ID of the hosting SP, `sp.example` or `//sp.example`. */
  readonly spId: string
  /** CSE-ID of the hosting CSE, `cse1` or `/cse1`. */
  readonly cseId?: string
}

/** The originator in every form that can be derived from it. */
export interface OriginatorForms {
  readonly raw: string
  /** `//sp/...` or null when the SP is unknown. */
  readonly abs: string | null
  /** `/...` when the originator belongs to the hosting SP, else null. */
  readonly spRel: string | null
  /** The id relative to the hosting CSE, when it is registered there. */
  readonly cseRel: string | null
  /** The originator's SP-ID, when known. */
  readonly sp: string | null
}

type EntryKind = 'all' | 'domain' | 'abs' | 'spRel' | 'cseRel'

interface Entry {
  readonly kind: EntryKind
  readonly text: string
  /** Set when the entry contains `*`; such an entry never equals a group or role id. */
  readonly pattern: RegExp | null
}

/** A compiled accessControlOriginators list. */
export interface OriginatorMatcher {
  readonly entries: readonly Entry[]
}

function stripSlashes(s: string): string {
  let i = 0
  while (s[i] === '/') i++
  return s.slice(i)
}

const patterns = createInternTable<RegExp>()

/** A compiled wildcard pattern; shared between rules (a RegExp keeps no state without /g or /y). */
function wildcardToRegExp(text: string): RegExp {
  return patterns.get(text, () => buildRegExp(text))
}

function buildRegExp(text: string): RegExp {
  const body = text
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*')
  return new RegExp(`^${body}$`)
}

/** True when an accessControlOriginators entry is an SP domain (`//sp.example`). */
export function isSpDomainEntry(entry: string): boolean {
  return entry.startsWith('//') && entry.length > 2 && !entry.slice(2).includes('/')
}

/**
 * Compiles an accessControlOriginators list. Entries are assumed validated by `parse.ts`.
 *
 * @example
 * ```ts
 * const m = compileOriginators(['//sp.example', '/cse1/C98*', 'grp-1'])
 * matchOriginator(m, originatorForms('//sp.example/cse9/Cx'), [], []) // true (SP domain)
 * ```
 */
export function compileOriginators(list: readonly string[]): OriginatorMatcher {
  const entries = list.map((text): Entry => {
    const pattern = text.includes('*') ? wildcardToRegExp(text) : null
    if (text === 'all') return { kind: 'all', text, pattern: null }
    if (isSpDomainEntry(text)) return { kind: 'domain', text: text.slice(2), pattern: null }
    if (text.startsWith('//')) return { kind: 'abs', text, pattern }
    if (text.startsWith('/')) return { kind: 'spRel', text, pattern }
    return { kind: 'cseRel', text, pattern }
  })
  return { entries }
}

/**
 * Derives the forms of an originator id for matching.
 *
 * @example
 * ```ts
 * originatorForms('Cae1', { spId: 'sp.example', cseId: 'cse1' })
 * // { raw: 'Cae1', abs: '//sp.example/cse1/Cae1', spRel: '/cse1/Cae1', cseRel: 'Cae1', sp: 'sp.example' }
 * ```
 */
export function originatorForms(originator: string, host?: HostIds): OriginatorForms {
  const hostSp = host === undefined ? null : stripSlashes(host.spId)
  const hostCse = host?.cseId === undefined ? null : stripSlashes(host.cseId)
  let abs: string | null = null
  let spRel: string | null = null
  let sp: string | null = null
  if (originator.startsWith('//')) {
    const rest = originator.slice(2)
    const i = rest.indexOf('/')
    sp = i < 0 ? rest : rest.slice(0, i)
    abs = originator
    if (i >= 0 && sp === hostSp) spRel = rest.slice(i)
  } else if (originator.startsWith('/')) {
    spRel = originator
    sp = hostSp
    if (hostSp !== null) abs = `//${hostSp}${originator}`
  } else if (originator !== '' && hostCse !== null && hostSp !== null) {
    spRel = `/${hostCse}/${originator}`
    sp = hostSp
    abs = `//${hostSp}${spRel}`
  }
  let cseRel: string | null = null
  if (!originator.startsWith('/')) cseRel = originator === '' ? null : originator
  else if (spRel !== null && hostCse !== null && spRel.startsWith(`/${hostCse}/`)) {
    cseRel = spRel.slice(hostCse.length + 2)
  }
  return { raw: originator, abs, spRel, cseRel, sp }
}

function formFor(kind: EntryKind, forms: OriginatorForms): string | null {
  if (kind === 'abs') return forms.abs
  if (kind === 'spRel') return forms.spRel
  return forms.cseRel
}

/**
 * res_origs(k) of TS-0003 §7.1.5: true when the originator, one of its groups or one of its
 * roles is in the list.
 */
export function matchOriginator(
  matcher: OriginatorMatcher,
  forms: OriginatorForms,
  groupIds: readonly string[],
  roleIds: readonly string[],
): boolean {
  for (const e of matcher.entries) {
    switch (e.kind) {
      case 'all':
        return true
      case 'domain':
        if (forms.sp === e.text) return true
        break
      default: {
        const form = formFor(e.kind, forms)
        if (e.pattern !== null) {
          if (form !== null && e.pattern.test(form)) return true
        } else if (e.text === forms.raw || e.text === form || groupIds.includes(e.text) || roleIds.includes(e.text)) {
          return true
        }
      }
    }
  }
  return false
}

/**
 * True when `id` equals `pattern`, or matches it with `*` standing for zero or more characters
 * other than `/` (the wildcard of TS-0003 §7.1.3, also used for a token's audience list).
 *
 * @example
 * ```ts
 * matchesIdPattern('//*\/in-cse', '//sp.example/in-cse') // true
 * ```
 */
export function matchesIdPattern(pattern: string, id: string): boolean {
  if (!pattern.includes('*')) return pattern === id
  return wildcardToRegExp(pattern).test(id)
}
