/**
 * Subscriber provisioning (GbaSubscribers): admin role of the tenant. A subscriber is an IMPI
 * with a KMS MILENAGE key, an AMF and SQN_HE. IMPIs are unique across tenants (Ub carries
 * only the IMPI), so one held by another tenant is ERR_ALREADY_EXISTS on create and
 * ERR_NOT_FOUND on every other call.
 */
import { M2msecError, invalidArgument } from '@m2msec/errors'
import { bytesToHex, SQN_MAX } from '@m2msec/crypto'
import { isDnsName, MAX_NAMES, uriHost, type SubjectNames } from '@m2msec/pki'
import { gbaKey, type SubscriberRecord } from '../store/gba-stores.ts'
import { audited, requireAdmin, type GbaCaller, type GbaDeps } from './context.ts'

/** Where a new subscriber's K and OPc come from. */
export type MilenageKeySource =
  | { readonly kind: 'existing'; readonly keyId: string }
  | { readonly kind: 'import'; readonly wrappedKey: string; readonly unwrappingKeyId: string; readonly keyId: string }

/** CreateSubscriber input. */
export interface CreateSubscriberInput {
  readonly impi: string
  readonly key: MilenageKeySource
  /** 2 bytes; empty = 8000. */
  readonly amf: Uint8Array
  readonly sqn: bigint
  /** Names for EST enrolment with GBA; empty lists: none. */
  readonly enrolmentNames?: SubjectNames
}

/** The subscriber operations. */
export interface SubscriberOperations {
  create(caller: GbaCaller, input: CreateSubscriberInput): Promise<SubscriberRecord>
  get(caller: GbaCaller, impi: string): Promise<SubscriberRecord>
  delete(caller: GbaCaller, impi: string): Promise<void>
}

/** AMF with the separation bit set (TS 33.102 Annex F), the default. */
export const DEFAULT_AMF = new Uint8Array([0x80, 0x00])

// No whitespace, controls, quotes or backslashes: the IMPI travels in a quoted Digest parameter.
const IMPI_FORBIDDEN = /[\s"\\\p{Cc}]/u

/** Throws ERR_INVALID_ARGUMENT unless `impi` is a usable IMPI. */
export function validateImpi(impi: string): void {
  if (typeof impi !== 'string' || impi.length === 0 || impi.length > 255 || IMPI_FORBIDDEN.test(impi)) {
    throw invalidArgument('impi must be 1-255 characters without whitespace, quotes or control characters', {
      field: 'impi',
    })
  }
}

/**
 * The enrolment names, deduplicated and sorted, or undefined when there are none. Checks
 * syntax and count only: whether a host lies in the CA's domain is known at enrolment.
 */
export function validateEnrolmentNames(names: SubjectNames | undefined): SubjectNames | undefined {
  if (names === undefined) return undefined
  const uris = [...new Set(names.uris)].sort()
  const dnsNames = [...new Set(names.dnsNames)].sort()
  if (uris.length + dnsNames.length === 0) return undefined
  if (uris.length + dnsNames.length > MAX_NAMES) {
    throw invalidArgument(`at most ${MAX_NAMES} enrolment names`, { field: 'enrolment_uris' })
  }
  // The index, never the value: names can identify devices.
  uris.forEach((u, i) => {
    if (uriHost(u) === undefined)
      throw invalidArgument(`enrolment_uris[${i}] is not a scheme://host/... URI`, { field: 'enrolment_uris' })
  })
  dnsNames.forEach((d, i) => {
    if (!isDnsName(d))
      throw invalidArgument(`enrolment_dns_names[${i}] is not a lowercase DNS name`, { field: 'enrolment_dns_names' })
  })
  return { uris, dnsNames }
}

function notFound(): M2msecError {
  return new M2msecError('ERR_NOT_FOUND', 'subscriber not found')
}

/**
 * @example
 * ```ts
 * const subs = createSubscriberOperations(deps)
 * await subs.create(admin, { impi, key: { kind: 'existing', keyId: 'sub-1' }, amf: new Uint8Array(), sqn: 0n })
 * ```
 */
export function createSubscriberOperations(deps: GbaDeps): SubscriberOperations {
  const repo = deps.stores.subscribers
  const base = (caller: GbaCaller, action: string, impi: string) => ({
    tenant: caller.tenant,
    principal: caller.id,
    action: `bootstrap.${action}`,
    resource: `subscriber/${impi}`,
  })

  const load = async (caller: GbaCaller, impi: string) => {
    validateImpi(impi)
    const found = await repo.get(gbaKey(impi))
    if (found === undefined || found.value.tenant !== caller.tenant) throw notFound()
    return found
  }

  return {
    create(caller, input) {
      return audited(deps, base(caller, 'CreateSubscriber', input.impi), async () => {
        requireAdmin(caller, 'CreateSubscriber')
        validateImpi(input.impi)
        const amf = input.amf.length === 0 ? DEFAULT_AMF : input.amf
        if (amf.length !== 2) throw invalidArgument('amf must be 2 bytes', { field: 'amf' })
        if (input.sqn < 0n || input.sqn > SQN_MAX) throw invalidArgument('sqn must be below 2^48', { field: 'sqn' })
        const enrolmentNames = validateEnrolmentNames(input.enrolmentNames)
        // Checked before any key is imported, so a taken IMPI leaves nothing behind.
        if ((await repo.get(gbaKey(input.impi))) !== undefined) {
          throw new M2msecError('ERR_ALREADY_EXISTS', 'a subscriber with this IMPI exists')
        }
        let keyId: string
        if (input.key.kind === 'existing') {
          keyId = input.key.keyId
          if ((await deps.kms.keyAlgorithm(caller.tenant, keyId)) !== 'MILENAGE') {
            throw new M2msecError('ERR_KEY_TYPE_MISMATCH', 'the key is not a MILENAGE key', { keyId })
          }
        } else {
          keyId = await deps.kms.importMilenageKey(caller.tenant, {
            wrappedKey: input.key.wrappedKey,
            unwrappingKeyId: input.key.unwrappingKeyId,
            keyId: input.key.keyId,
          })
        }
        const now = deps.clock.now().toISOString()
        const record: SubscriberRecord = {
          tenant: caller.tenant,
          impi: input.impi,
          milenageKeyId: keyId,
          amf: bytesToHex(amf),
          sqn: input.sqn.toString(),
          createdAt: now,
          updatedAt: now,
          ...(enrolmentNames === undefined ? {} : { enrolmentNames }),
        }
        await repo.create(gbaKey(input.impi), record)
        return record
      })
    },
    get(caller, impi) {
      return audited(deps, base(caller, 'GetSubscriber', impi), async () => {
        requireAdmin(caller, 'GetSubscriber')
        return (await load(caller, impi)).value
      })
    },
    delete(caller, impi) {
      return audited(deps, base(caller, 'DeleteSubscriber', impi), async () => {
        requireAdmin(caller, 'DeleteSubscriber')
        const found = await load(caller, impi)
        await repo.delete(gbaKey(impi), found.revision)
      })
    },
  }
}
