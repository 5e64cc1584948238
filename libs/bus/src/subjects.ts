import { M2msecError } from '@m2msec/errors'
import { decodeToken, encodeToken } from './tokens.ts'

/** Areas (services) that publish events. */
const AREA = /^[a-z][a-z0-9-]*$/
/** Event names: one or more lowercase tokens, e.g. `key.rotated` or `token_revoked`. */
const NAME = /^[a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_-]*)*$/
const EVENT_PREFIX = 'm2msec.evt'

function checkArea(area: string): void {
  if (!AREA.test(area)) throw new M2msecError('ERR_INVALID_ARGUMENT', 'invalid event area', { area })
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw new M2msecError('ERR_INVALID_ARGUMENT', 'invalid event name', { name })
}

/** The parts of an event subject. */
export interface EventSubject {
  area: string
  tenant: string
  name: string
}

/**
 * Builders for the NATS subjects of m2msec. Tenant ids are user data, so they are encoded
 * (see `encodeToken`): a tenant named `a.b` or `*` cannot reach another tenant's subjects.
 *
 * @example
 * ```ts
 * subjects.event('kms', 'acme', 'key.rotated')  // 'm2msec.evt.kms.acme.key.rotated'
 * subjects.eventAllTenants('kms', 'key.rotated') // 'm2msec.evt.kms.*.key.rotated' (subscribe only)
 * ```
 */
export const subjects = {
  /** `m2msec.evt.<area>.<tenant>.<name>` for one tenant. */
  event(area: string, tenant: string, name: string): string {
    checkArea(area)
    checkName(name)
    return `${EVENT_PREFIX}.${area}.${encodeToken(tenant)}.${name}`
  },
  /** Subscription filter: the event `name` of `area` for every tenant. */
  eventAllTenants(area: string, name: string): string {
    checkArea(area)
    checkName(name)
    return `${EVENT_PREFIX}.${area}.*.${name}`
  },
  /** Subscription filter: every event of `area`, for one tenant or (without `tenant`) all. */
  eventsOf(area: string, tenant?: string): string {
    checkArea(area)
    return tenant === undefined ? `${EVENT_PREFIX}.${area}.>` : `${EVENT_PREFIX}.${area}.${encodeToken(tenant)}.>`
  },
  /** Splits an event subject back into area, decoded tenant and name. */
  parseEvent(subject: string): EventSubject {
    const parts = subject.split('.')
    const [m, evt, area, tenant, ...rest] = parts
    if (`${m}.${evt}` !== EVENT_PREFIX || area === undefined || tenant === undefined || rest.length === 0) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'not an event subject', {
        subject: subject.slice(0, 200),
      })
    }
    return { area, tenant: decodeToken(tenant), name: rest.join('.') }
  },
} as const
