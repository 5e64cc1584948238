/**
 * The configured Enrolees and Enrolment Targets, indexed the ways the MEF looks them up:
 * by KpmID (PSK handshake), by certificate subjectAltName (certificate handshake), by
 * Credential-ID (fetchCredentials), by authenticated principal (targets). Pure.
 */
import { M2msecError } from '@m2msec/errors'
import { credentialIdOf, type Enrolee, type TargetRegistration } from './enrolment.ts'
import { targetFqdn, targetName } from './derivation.ts'
import { assertKpmId } from './ids.ts'

/** Lookups over the configured Enrolees and Targets. */
export interface RspfDirectory {
  byKpmId(kpmId: string): Enrolee | undefined
  /** The Enrolee whose configured SAN entry is among `entries` (e.g. `['URI:…', 'DNS:…']`). */
  bySubjectAltName(entries: readonly string[]): Enrolee | undefined
  byCredentialId(credentialId: string): Enrolee | undefined
  targetByPrincipal(tenant: string, id: string): TargetRegistration | undefined
}

/**
 * Builds the directory; duplicate KpmIDs, SANs, target names or target principals, and
 * enrolees that name unknown targets, fail with ERR_CONFIG_INVALID.
 *
 * @example
 * ```ts
 * const dir = createRspfDirectory(enrolees, targets)
 * dir.byKpmId('dev-1@mef.example.com')?.enroleeId
 * ```
 */
export function createRspfDirectory(
  enrolees: readonly Enrolee[],
  targets: readonly TargetRegistration[],
): RspfDirectory {
  const byCredential = new Map<string, Enrolee>()
  const byKpm = new Map<string, Enrolee>()
  const bySan = new Map<string, Enrolee>()
  const targetNames = new Set<string>()
  const byPrincipal = new Map<string, TargetRegistration>()
  const invalid = (message: string) => new M2msecError('ERR_CONFIG_INVALID', message)

  for (const t of targets) {
    targetFqdn(t.target) // validates the FQDN / Absolute ID
    const name = targetName(t.target)
    const principal = `${t.principal.tenant}/${t.principal.id}`
    if (targetNames.has(name)) throw invalid(`rspf target ${name} is configured twice`)
    if (byPrincipal.has(principal)) throw invalid(`rspf target principal ${principal} is configured twice`)
    targetNames.add(name)
    byPrincipal.set(principal, t)
  }
  for (const e of enrolees) {
    const credentialId = credentialIdOf(e.credential)
    if (byCredential.has(credentialId)) throw invalid(`rspf enrolee ${credentialId} is configured twice`)
    byCredential.set(credentialId, e)
    if (e.credential.kind === 'psk') {
      assertKpmId(e.credential.kpmId)
      byKpm.set(e.credential.kpmId, e)
    } else {
      bySan.set(e.credential.subjectAltName, e)
    }
    for (const t of e.targets) {
      if (!targetNames.has(t.target)) throw invalid(`rspf enrolee ${credentialId} names unknown target ${t.target}`)
    }
  }
  return {
    byKpmId: (kpmId) => byKpm.get(kpmId),
    bySubjectAltName: (entries) => entries.map((s) => bySan.get(s)).find((e) => e !== undefined),
    byCredentialId: (id) => byCredential.get(id),
    targetByPrincipal: (tenant, id) => byPrincipal.get(`${tenant}/${id}`),
  }
}

/**
 * The entries of a Node `subjectaltname` string (`DNS:a, URI:b`), as `TYPE:value`. Quoted
 * values (Node quotes entries with commas) are unquoted.
 */
export function subjectAltNameEntries(subjectaltname: string | undefined): string[] {
  if (subjectaltname === undefined) return []
  const out: string[] = []
  for (const m of subjectaltname.matchAll(/(?:^|,\s*)([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const raw = (m[2] ?? '').trim()
    let value = raw
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string
      } catch {
        continue
      }
    }
    out.push(`${m[1] ?? ''}:${value}`)
  }
  return out
}
