/**
 * Group events on the bus: `m2msec.evt.groups.<tenant>.<name>` with the JSON envelope of
 * `@m2msec/bus` (ids and epochs only, never keys). Names: `group.created`, `group.deleted`,
 * `membership.changed` (type `m2msec.groups.<name>.v1`).
 */
import { publishEvent, subjects, type NatsConnection } from '@m2msec/bus'
import type { GroupEvents } from '../domain/ports.ts'

/**
 * @example
 * ```ts
 * subscribeEvents(nc, subjects.eventsOf('groups', 'acme'), (e) => console.log(e.type, e.data))
 * ```
 */
export function createGroupEventPublisher(nc: NatsConnection): GroupEvents {
  return {
    async publish(event) {
      const { type, tenant, ...data } = event
      await publishEvent(nc, subjects.event('groups', tenant, type), `m2msec.groups.${type}.v1`, data)
    },
  }
}
