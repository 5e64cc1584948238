/**
 * Publishes authn domain events on the bus (`m2msec.evt.authn.<tenant>.<name>`, JSON
 * envelopes): tenant, entity and credential changes, token revocations, signing key
 * rotations. Events carry ids, never assertions, tokens or key material.
 */
import { publishEvent, subjects, type NatsConnection } from '@m2msec/bus'
import type { AuthnEvents } from '../domain/ports.ts'

/** The AuthnEvents port on core NATS (JSON envelopes with trace context). */
export function createAuthnEventPublisher(nc: NatsConnection): AuthnEvents {
  return {
    async publish(event) {
      const { type, tenant, ...data } = event
      await publishEvent(nc, subjects.event('authn', tenant, type), type, { tenant, ...data })
    },
  }
}
