/**
 * The step after a successful MEF Handshake, shared by the TLS-PSK and the certificate RSPF:
 * export 48 bytes with `EXPORTER-oneM2M-Bootstrap` (RFC 5705, no context), split them into
 * RelativeKeID (first 16) and Ke (last 32), import Ke into the KMS, record the enrolment and
 * answer the Enrolee with one JSON line (the end of the Enrolment Exchange), then close.
 */
import type { TLSSocket } from 'node:tls'
import { bytesToHex, enrolmentKeyFromExporter, ONEM2M_EXPORTER_LABEL, ONEM2M_EXPORTER_LENGTH } from '@m2msec/crypto'
import { isM2msecError } from '@m2msec/errors'
import type { Logger } from '@m2msec/runtime'
import { keKeyId } from './domain/derivation.ts'
import { credentialIdOf, enrolmentExpiry, type Enrolee } from './domain/enrolment.ts'
import type { EnrolmentStore, RspfKms } from './domain/ports.ts'

/** What the MEF sends the Enrolee after the handshake (one JSON line). */
export type EnrolmentReply =
  | { readonly status: true; readonly keId: string; readonly enroleeId: string; readonly expiresAt: string }
  | { readonly status: false; readonly errorString: string; readonly code: string }

/** Dependencies of {@link completeEnrolment}. */
export interface EnrolDeps {
  readonly mefFqdn: string
  readonly kms: RspfKms
  readonly store: EnrolmentStore
  readonly log: Logger
  readonly now: () => Date
}

/**
 * Derives Ke/KeID from `socket` for `enrolee`, stores them and answers the Enrolee. Never
 * throws: failures are logged (without key material) and reported to the Enrolee.
 */
export async function completeEnrolment(
  deps: EnrolDeps,
  socket: TLSSocket,
  enrolee: Enrolee | undefined,
): Promise<void> {
  const reply = (r: EnrolmentReply) => {
    if (!socket.destroyed) socket.end(`${JSON.stringify(r)}\n`)
  }
  if (enrolee === undefined) {
    reply({ status: false, errorString: 'unknown enrolee', code: 'ERR_PERMISSION_DENIED' })
    return
  }
  // A copy we own (Buffer.slice would alias), then wipe node's buffer at once.
  // TS-0003 §10.3.1: no context. @types/node wants one, but node passes an undefined context
  // on as "no context" (which differs from an empty one in TLS 1.2).
  const raw = socket.exportKeyingMaterial(
    ONEM2M_EXPORTER_LENGTH,
    ONEM2M_EXPORTER_LABEL.bootstrap,
    undefined as unknown as Buffer,
  )
  const exported = new Uint8Array(raw)
  raw.fill(0)
  const { ke, relativeKeId, keId } = enrolmentKeyFromExporter(exported, deps.mefFqdn)
  exported.fill(0)
  const relativeHex = bytesToHex(relativeKeId)
  const now = deps.now()
  const expiresAt = enrolmentExpiry(enrolee, now)
  const credentialId = credentialIdOf(enrolee.credential)
  try {
    try {
      await deps.kms.importEnrolmentKey(enrolee.tenant, keKeyId(relativeHex), ke, expiresAt)
    } finally {
      ke.fill(0)
    }
    await deps.store.create({
      tenant: enrolee.tenant,
      keId,
      relativeHex,
      keKeyId: keKeyId(relativeHex),
      enroleeId: enrolee.enroleeId,
      credentialId,
      createdAt: now.toISOString(),
      expiresAt: expiresAt.toISOString(),
    })
    deps.log.info({ tenant: enrolee.tenant, credentialId, keId, protocol: socket.getProtocol() }, 'rspf enrolment')
    reply({ status: true, keId, enroleeId: enrolee.enroleeId, expiresAt: expiresAt.toISOString() })
  } catch (err) {
    const code = isM2msecError(err) ? err.code : 'ERR_INTERNAL'
    deps.log.error({ err, tenant: enrolee.tenant, credentialId, code }, 'rspf enrolment failed')
    reply({ status: false, errorString: 'enrolment failed', code })
  }
}
