/**
 * The GBA gRPC services (m2msec.bootstrap.v1.GbaSubscribers and GbaZn): decode -> call the
 * operation -> encode. Validation, policy and audit live in ../gba.
 */
import { invalidArgument } from '@m2msec/errors'
import {
  NafKeyDelivery,
  RspfTarget,
  type GbaSubscribersService,
  type GbaZnService,
  type GbaSubscriber,
  type NafKey,
} from '@m2msec/proto/bootstrap/v1'
import type { UnaryHandlers } from '@m2msec/runtime'
import type { SubscriberRecord } from '../store/gba-stores.ts'
import type { SubscriberOperations } from '../gba/subscribers.ts'
import type { NafKeyDelivery as Delivery, NafKeyResult, ZnOperations } from '../gba/zn.ts'

function subscriberToProto(s: SubscriberRecord): GbaSubscriber {
  return {
    impi: s.impi,
    milenageKeyId: s.milenageKeyId,
    amf: Buffer.from(s.amf, 'hex'),
    sqn: BigInt(s.sqn),
    createdAt: new Date(s.createdAt),
    updatedAt: new Date(s.updatedAt),
    enrolmentUris: [...(s.enrolmentNames?.uris ?? [])],
    enrolmentDnsNames: [...(s.enrolmentNames?.dnsNames ?? [])],
  }
}

function deliveryFromProto(d: NafKeyDelivery): Delivery {
  if (d === NafKeyDelivery.NAF_KEY_DELIVERY_WRAPPED) return 'WRAPPED'
  if (d === NafKeyDelivery.NAF_KEY_DELIVERY_KEY_HANDLE || d === NafKeyDelivery.NAF_KEY_DELIVERY_UNSPECIFIED) {
    return 'KEY_HANDLE'
  }
  throw invalidArgument('unknown delivery', { field: 'delivery' })
}

function nafKeyToProto(k: NafKeyResult): NafKey {
  return {
    keyId: k.keyId ?? '',
    wrappedKey: k.wrappedKey ?? '',
    btid: k.btid,
    impi: k.impi,
    bootstrappedAt: k.bootstrappedAt,
    expiresAt: k.expiresAt,
  }
}

/** Handlers of GbaSubscribers. */
export function createGbaSubscribersService(ops: SubscriberOperations): UnaryHandlers<typeof GbaSubscribersService> {
  return {
    async createSubscriber(r, { principal }) {
      const key = r.milenageKey
      if (key === undefined) throw invalidArgument('milenage_key_id or import is required', { field: 'milenage_key' })
      const source =
        key.$case === 'milenageKeyId'
          ? { kind: 'existing' as const, keyId: key.value }
          : {
              kind: 'import' as const,
              wrappedKey: key.value.wrappedKey,
              unwrappingKeyId: key.value.unwrappingKeyId,
              keyId: key.value.keyId,
            }
      const s = await ops.create(principal, {
        impi: r.impi,
        key: source,
        amf: r.amf,
        sqn: r.sqn,
        enrolmentNames: { uris: r.enrolmentUris, dnsNames: r.enrolmentDnsNames },
      })
      return { subscriber: subscriberToProto(s) }
    },
    async getSubscriber(r, { principal }) {
      return { subscriber: subscriberToProto(await ops.get(principal, r.impi)) }
    },
    async deleteSubscriber(r, { principal }) {
      await ops.delete(principal, r.impi)
      return {}
    },
  }
}

/** Handlers of GbaZn. */
export function createGbaZnService(ops: ZnOperations): UnaryHandlers<typeof GbaZnService> {
  return {
    async getNafKey(r, { principal }) {
      const k = await ops.getNafKey(principal, {
        btid: r.btid,
        nafFqdn: r.nafFqdn,
        uaProtocolId: r.uaProtocolId,
        delivery: deliveryFromProto(r.delivery),
        recipientPublicJwk: r.recipientPublicJwk,
      })
      return { nafKey: nafKeyToProto(k) }
    },
    async getRspfCredential(r, { principal }) {
      const target =
        r.target === RspfTarget.RSPF_TARGET_MAF ? 'MAF' : r.target === RspfTarget.RSPF_TARGET_CSE ? 'CSE' : undefined
      if (target === undefined) throw invalidArgument('target must be MAF or CSE', { field: 'target' })
      const k = await ops.getRspfCredential(principal, {
        btid: r.btid,
        target,
        targetFqdn: r.targetFqdn,
        uaProtocolId: r.uaProtocolId,
        delivery: deliveryFromProto(r.delivery),
        recipientPublicJwk: r.recipientPublicJwk,
      })
      return { key: nafKeyToProto(k), keyIdentifier: k.keyIdentifier, target: r.target }
    },
  }
}
