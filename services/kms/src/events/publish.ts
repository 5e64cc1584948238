/**
 * Publishes KMS domain events on the bus (`m2msec.evt.kms.<tenant>.<name>`), so other services
 * and replicas learn of new, rotated and disabled keys. Events carry ids, never key material.
 */
import type { NatsConnection } from '@m2msec/bus'
import { publishEvent, subjects } from '@m2msec/bus'
import type { KeyEvents } from '../domain/ports.ts'

export function createKeyEventPublisher(nc: NatsConnection): KeyEvents {
  return {
    async publish(event) {
      const { type, tenant, ...data } = event
      await publishEvent(nc, subjects.event('kms', tenant, type), type, { tenant, ...data })
    },
  }
}
