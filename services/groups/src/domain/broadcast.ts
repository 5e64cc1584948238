/**
 * Secure broadcast (docs/groups-protocol.md §7): the command is signed ES256 by the group's
 * sender key in the KMS, then the KMS encrypts the JWS under the group key of the current
 * epoch. Sequence numbers are reserved in the group record before signing and never reused.
 */
import { M2msecError, isM2msecError } from '@m2msec/errors'
import { COMMAND_TYPE } from '@m2msec/groupkeys'
import { loadGroup } from './access.ts'
import { LIMITS, type Caller, type GroupRecord } from './model.ts'
import type { GroupsDeps } from './ports.ts'

const b64u = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url')

/** Reserves the next sequence number (revision-checked). */
async function reserveSeq(
  deps: GroupsDeps,
  caller: Caller,
  groupId: string,
): Promise<{ group: GroupRecord; seq: number }> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const { value: group, revision } = await loadGroup(deps, caller, groupId, ['admin'])
    if (group.members.length === 0) throw new M2msecError('ERR_FAILED_PRECONDITION', 'the group has no members')
    try {
      await deps.groups.update({ ...group, nextSeq: group.nextSeq + 1 }, revision)
      return { group, seq: group.nextSeq }
    } catch (err) {
      if (!isM2msecError(err) || err.code !== 'ERR_REVISION_CONFLICT') throw err
    }
  }
  throw new M2msecError('ERR_REVISION_CONFLICT', 'the group record kept changing')
}

/** SendBroadcast (admin): the sealed command for the agent to relay. */
export async function sendBroadcast(
  deps: GroupsDeps,
  caller: Caller,
  req: { groupId: string; payload: Uint8Array },
): Promise<{ jwe: string; epoch: number; seq: number }> {
  if (req.payload.byteLength > LIMITS.payloadBytes) {
    throw new M2msecError('ERR_PAYLOAD_TOO_LARGE', `payload is larger than ${LIMITS.payloadBytes} bytes`, {
      field: 'payload',
    })
  }
  for (let attempt = 0; ; attempt++) {
    const { group, seq } = await reserveSeq(deps, caller, req.groupId)
    const header = {
      alg: 'ES256',
      typ: COMMAND_TYPE,
      kid: group.senderKeyId,
      gid: group.id,
      epoch: group.epoch,
      seq,
      iat: Math.floor(deps.clock.now().getTime() / 1000),
    }
    const signingInput = `${b64u(JSON.stringify(header))}.${b64u(req.payload)}`
    const signature = await deps.kms.sign(group.tenant, group.senderKeyId, Buffer.from(signingInput, 'ascii'))
    const jws = `${signingInput}.${b64u(signature)}`
    try {
      const sealed = await deps.kms.sealBroadcast(group.tenant, group.id, jws)
      return { jwe: sealed.jwe, epoch: sealed.epoch, seq }
    } catch (err) {
      // A rekey committed between reading the epoch and sealing: sign again for the new one.
      if (isM2msecError(err) && err.code === 'ERR_KEY_VERSION_NOT_FOUND' && attempt < 3) continue
      throw err
    }
  }
}
