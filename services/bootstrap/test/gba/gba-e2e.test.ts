/**
 * The GBA BSF end to end on real processes: nats-server (JetStream), the KMS as a child
 * process (mTLS, development PKI) and a bootstrap replica in this process. Simulated devices
 * (`@m2msec/sdk/gba` + a simulated USIM) bootstrap over real HTTP; NAFs call Zn over gRPC.
 * Keys are compared through MACs (KMS Mac with the BSF-side handle vs a local HMAC with the
 * UE's key), never printed.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto'
import * as jose from 'jose'
import { jetstreamManager } from '@nats-io/jetstream'
import { AUDIT_STREAM, connectNats } from '@m2msec/bus'
import { createSqnArrayState, UA_PROTOCOL_ID } from '@m2msec/crypto'
import { answerChallenge, createSimulatedUsim, deriveSessionKsNaf, initialAuthorization } from '@m2msec/gba'
import {
  CreateSubscriberRequest,
  GetNafKeyRequest,
  GetRspfCredentialRequest,
  GetSubscriberRequest,
  NafKeyDelivery,
  RspfTarget,
} from '@m2msec/proto/bootstrap/v1'
import { MacRequest } from '@m2msec/proto/kms/v1'
import { bootstrapOverHttp } from '@m2msec/sdk/gba'
import { DEFAULT_RSPF_UA_PROTOCOL_ID } from '../../src/gba/zn.ts'
import { gbaKey } from '../../src/store/gba-stores.ts'
import { codeOf, startGbaPlatform, type GbaPlatform, type Who } from './platform.ts'

const BSF_HOST = 'bsf.example.org'
const NAF = 'naf.example.com'
const ADMIN = { tenant: 'acme', principal: 'ops', roles: ['admin'] }
const NAF_1 = { tenant: 'acme', principal: 'naf-1', roles: ['naf'] }
const EXT_NAF = { tenant: 'acme', principal: 'ext-naf', roles: [] }
const OTHER_NAF = { tenant: 'globex', principal: 'naf-1', roles: ['naf'] }
const OTHER_ADMIN = { tenant: 'globex', principal: 'ops', roles: ['admin'] }

let p: GbaPlatform
const provision = (sqn = 0n) => p.provision('acme', { sqn })
const subscribersClient = (who: Who) => p.subscribers(who)
const znClient = (who: Who) => p.zn(who)
const kmsClient = (who: Who) => p.kmsClient(who)

function hmac(key: Uint8Array, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex')
}
async function get(authorization?: string): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`${p.app.ubUrl}/`, { headers: authorization === undefined ? {} : { authorization } })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

/** Audit records written by the bootstrap replica. */
async function auditRecords(): Promise<Array<Record<string, unknown>>> {
  const nc = await connectNats({ servers: [p.nats.url], name: 'audit-reader' })
  try {
    const jsm = await jetstreamManager(nc)
    const info = await jsm.streams.info(AUDIT_STREAM)
    const out: Array<Record<string, unknown>> = []
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq }).catch(() => null)
      if (m === null) continue
      for (const line of new TextDecoder().decode(m.data).split('\n')) {
        const r = JSON.parse(line) as Record<string, unknown>
        if (String(r.action).startsWith('bootstrap.')) out.push(r)
      }
    }
    return out
  } finally {
    await nc.close()
  }
}

before(async () => {
  p = await startGbaPlatform({
    name: 'bootstrap-gba-e2e',
    bsfHost: BSF_HOST,
    tenants: ['acme'],
    zn: {
      nafs: [
        { principal: 'role:naf', fqdns: [NAF, '*.m2m.example.com'] },
        { tenant: 'acme', principal: 'ext-naf', fqdns: ['ext.example.com'], allowWrapped: true },
      ],
    },
  })
})

after(async () => {
  await p?.stop()
})

describe('Ub and Zn', () => {
  test('a device bootstraps over HTTP; the NAF key handle and the UE key agree', async () => {
    const d = await provision()
    const session = await bootstrapOverHttp({
      bsfUrl: p.app.ubUrl,
      impi: d.impi,
      realm: BSF_HOST,
      usim: createSimulatedUsim(d),
    })
    assert.equal(session.resyncs, 0)
    assert.match(session.btid, /^[A-Za-z0-9+/]{22}==@bsf\.example\.org$/)
    assert.ok(session.lifetime.getTime() > Date.now() + 3_000_000)

    const zn = await znClient(NAF_1)
    const req = GetNafKeyRequest.fromPartial({
      btid: session.btid,
      nafFqdn: NAF,
      uaProtocolId: Buffer.from(UA_PROTOCOL_ID.httpDigest),
    })
    const first = await zn.getNafKey(req)
    assert.equal(first.nafKey?.impi, d.impi)
    assert.equal(first.nafKey?.btid, session.btid)
    assert.equal(first.nafKey?.wrappedKey, '')
    const keyId = first.nafKey?.keyId ?? ''
    assert.ok(keyId.startsWith('gbanaf-'))
    assert.equal((await zn.getNafKey(req)).nafKey?.keyId, keyId, 'asking again gives the same handle')

    const nafKms = await kmsClient(NAF_1)
    const mac = await nafKms.mac(MacRequest.fromPartial({ keyId, data: Buffer.from('probe') }))
    const ueKey = deriveSessionKsNaf(session, NAF, UA_PROTOCOL_ID.httpDigest)
    assert.equal(mac.mac.toString('hex'), hmac(ueKey, 'probe'))

    // oneM2M GBA RSPF: Km for a MAF = Ks_NAF for the MAF FQDN (default Ua id), KmID = B-TID.
    const rspf = await zn.getRspfCredential(
      GetRspfCredentialRequest.fromPartial({
        btid: session.btid,
        target: RspfTarget.RSPF_TARGET_MAF,
        targetFqdn: 'maf.m2m.example.com',
      }),
    )
    assert.equal(rspf.keyIdentifier, session.btid)
    const km = await nafKms.mac(MacRequest.fromPartial({ keyId: rspf.key?.keyId ?? '', data: Buffer.from('km') }))
    assert.equal(
      km.mac.toString('hex'),
      hmac(deriveSessionKsNaf(session, 'maf.m2m.example.com', DEFAULT_RSPF_UA_PROTOCOL_ID), 'km'),
    )
  })

  test('an external NAF gets Ks_ext_NAF wrapped for its public key, where the policy allows', async () => {
    const d = await provision()
    const session = await bootstrapOverHttp({
      bsfUrl: p.app.ubUrl,
      impi: d.impi,
      realm: BSF_HOST,
      usim: createSimulatedUsim(d),
    })
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = JSON.stringify(pair.publicKey.export({ format: 'jwk' }))
    const ext = await znClient(EXT_NAF)
    const res = await ext.getNafKey(
      GetNafKeyRequest.fromPartial({
        btid: session.btid,
        nafFqdn: 'ext.example.com',
        uaProtocolId: Buffer.from(UA_PROTOCOL_ID.httpDigest),
        delivery: NafKeyDelivery.NAF_KEY_DELIVERY_WRAPPED,
        recipientPublicJwk: jwk,
      }),
    )
    const opened = (await jose.compactDecrypt(res.nafKey?.wrappedKey ?? '', pair.privateKey)).plaintext
    const expected = deriveSessionKsNaf(session, 'ext.example.com', UA_PROTOCOL_ID.httpDigest)
    assert.equal(hmac(opened, 'x'), hmac(expected, 'x'))
    // naf-1 may not take keys out, nor ask for a NAF outside its rule.
    const zn = await znClient(NAF_1)
    const wrapped = GetNafKeyRequest.fromPartial({
      btid: session.btid,
      nafFqdn: NAF,
      uaProtocolId: Buffer.from(UA_PROTOCOL_ID.httpDigest),
      delivery: NafKeyDelivery.NAF_KEY_DELIVERY_WRAPPED,
      recipientPublicJwk: jwk,
    })
    assert.equal(await codeOf(zn.getNafKey(wrapped)), 'ERR_PERMISSION_DENIED')
    assert.equal(
      await codeOf(
        zn.getNafKey({ ...wrapped, nafFqdn: 'evil.example.net', delivery: NafKeyDelivery.NAF_KEY_DELIVERY_KEY_HANDLE }),
      ),
      'ERR_PERMISSION_DENIED',
    )
  })

  test('resynchronisation: a USIM ahead of SQN_HE sends AUTS, the BSF resyncs and the bootstrap completes', async () => {
    const d = await provision()
    const state = createSqnArrayState()
    const seqMs = state.seqMs.slice()
    seqMs[0] = 1000n // the BSF's IND (0): its next SEQ is not fresh for the USIM
    const usim = createSimulatedUsim({ ...d, sqnState: { seqMs } })
    const session = await bootstrapOverHttp({ bsfUrl: p.app.ubUrl, impi: d.impi, realm: BSF_HOST, usim })
    assert.equal(session.resyncs, 1)
    const sub = (
      await (await subscribersClient(ADMIN)).getSubscriber(GetSubscriberRequest.fromPartial({ impi: d.impi }))
    ).subscriber
    assert.ok((sub?.sqn ?? 0n) > 1000n << 5n, 'SQN_HE moved past SQN_MS')
    const records = await auditRecords()
    assert.ok(records.some((r) => (r.details as Record<string, unknown>)?.step === 'resynchronised'))
  })

  test('a replayed answer and a wrong RES are refused (403) and audited; the challenge is single use', async () => {
    const d = await provision()
    const usim = createSimulatedUsim(d)
    const challenge = await get(initialAuthorization({ impi: d.impi, realm: BSF_HOST }))
    assert.equal(challenge.status, 401)
    const a = await answerChallenge({
      impi: d.impi,
      wwwAuthenticate: challenge.headers.get('www-authenticate') ?? '',
      usim,
    })
    assert.equal(a.kind, 'response')
    assert.equal((await get(a.authorization)).status, 200)
    assert.equal((await get(a.authorization)).status, 403, 'replay')

    const c2 = await get(initialAuthorization({ impi: d.impi, realm: BSF_HOST }))
    const a2 = await answerChallenge({ impi: d.impi, wwwAuthenticate: c2.headers.get('www-authenticate') ?? '', usim })
    const wrong = a2.authorization.replace(
      /response="([0-9a-f]{32})"/,
      (_m, r: string) => `response="${r.startsWith('0') ? '1' : '0'}${r.slice(1)}"`,
    )
    assert.notEqual(wrong, a2.authorization)
    assert.equal((await get(wrong)).status, 403, 'wrong RES')
    assert.equal((await get(a2.authorization)).status, 403, 'the right answer after a wrong one: challenge used up')

    const reasons = (await auditRecords()).map((r) => (r.details as Record<string, unknown> | undefined)?.reason)
    assert.ok(reasons.includes('replayed'))
    assert.ok(reasons.includes('wrong-response'))
  })

  test('a repeated initial request gets the outstanding challenge again: no new SQN, no new Ks', async () => {
    const d = await provision()
    const subs = await subscribersClient(ADMIN)
    const sqn = async () =>
      (await subs.getSubscriber(GetSubscriberRequest.fromPartial({ impi: d.impi }))).subscriber?.sqn
    const initial = () => get(initialAuthorization({ impi: d.impi, realm: BSF_HOST }))
    const c1 = await initial()
    const sqnAfterFirst = await sqn()
    const c2 = await initial()
    assert.equal(c2.status, 401)
    assert.equal(c2.headers.get('www-authenticate'), c1.headers.get('www-authenticate'))
    assert.equal(await sqn(), sqnAfterFirst, 'no SQN taken for the repeat')
    // The UE answers the (repeated) challenge; the next initial request gets a fresh one.
    const usim = createSimulatedUsim(d)
    const a = await answerChallenge({ impi: d.impi, wwwAuthenticate: c2.headers.get('www-authenticate') ?? '', usim })
    assert.equal((await get(a.authorization)).status, 200)
    const c3 = await initial()
    assert.notEqual(c3.headers.get('www-authenticate'), c1.headers.get('www-authenticate'))
    // A UE that already processed c3 (its answer got lost) rejects it when it comes again
    // (SQN not fresh), resynchronises, and still bootstraps.
    await answerChallenge({ impi: d.impi, wwwAuthenticate: c3.headers.get('www-authenticate') ?? '', usim })
    const session = await bootstrapOverHttp({ bsfUrl: p.app.ubUrl, impi: d.impi, realm: BSF_HOST, usim })
    assert.equal(session.resyncs, 1)
    const steps = (await auditRecords()).map((r) => (r.details as Record<string, unknown> | undefined)?.step)
    assert.ok(steps.includes('challenge-again'))
  })

  test('a USIM that rejects AUTN (wrong K) makes the SDK fail with ERR_MAC_INVALID; the BSF audits it', async () => {
    const d = await provision()
    const usim = createSimulatedUsim({ k: new Uint8Array(randomBytes(16)), opc: d.opc })
    await assert.rejects(bootstrapOverHttp({ bsfUrl: p.app.ubUrl, impi: d.impi, realm: BSF_HOST, usim }), {
      code: 'ERR_MAC_INVALID',
    })
    const reasons = (await auditRecords()).map((r) => (r.details as Record<string, unknown> | undefined)?.reason)
    assert.ok(reasons.includes('network-authentication-failure'))
  })

  test('unknown IMPI 403, malformed headers 400, unknown nonce 401; all audited', async () => {
    assert.equal((await get(initialAuthorization({ impi: 'nobody@ims.example', realm: BSF_HOST }))).status, 403)
    assert.equal((await get()).status, 400)
    assert.equal((await get('Basic dXNlcjpwYXNz')).status, 400)
    assert.equal((await get('Digest username="x, realm="r", nonce="", uri="/", response=""')).status, 400)
    assert.equal(
      (await get('Digest username="x", realm="r", nonce="", uri="/", response="", username="y"')).status,
      400,
    )
    assert.equal(
      (await get('Digest username="x", realm="r", nonce="", uri="/", response="", algorithm=SHA-256')).status,
      400,
    )
    const fake = initialAuthorization({ impi: 'x', realm: 'r' })
      .replace('nonce=""', `nonce="${randomBytes(32).toString('base64')}"`)
      .replace('response=""', `response="${'a'.repeat(32)}"`)
    assert.equal((await get(fake)).status, 401)
    const res = await fetch(`${p.app.ubUrl}/elsewhere`)
    assert.equal(res.status, 404)
    const reasons = (await auditRecords()).map((r) => (r.details as Record<string, unknown> | undefined)?.reason)
    for (const r of ['unknown-impi', 'missing-authorization', 'malformed', 'unknown-nonce'])
      assert.ok(reasons.includes(r), r)
  })

  test('Zn: unknown, other tenant and expired B-TIDs are typed errors', async () => {
    const d = await provision()
    const session = await bootstrapOverHttp({
      bsfUrl: p.app.ubUrl,
      impi: d.impi,
      realm: BSF_HOST,
      usim: createSimulatedUsim(d),
    })
    const req = (btid: string) =>
      GetNafKeyRequest.fromPartial({ btid, nafFqdn: NAF, uaProtocolId: Buffer.from(UA_PROTOCOL_ID.httpDigest) })
    assert.equal(await codeOf((await znClient(OTHER_NAF)).getNafKey(req(session.btid))), 'ERR_NOT_FOUND')
    assert.equal(
      await codeOf((await znClient(NAF_1)).getNafKey(req(`AAAAAAAAAAAAAAAAAAAAAA==@${BSF_HOST}`))),
      'ERR_NOT_FOUND',
    )
    // Age the stored session: Zn must refuse it as expired.
    const sessions = p.app.gba.deps.stores.sessions
    const stored = await sessions.get(gbaKey(session.btid))
    assert.ok(stored)
    await sessions.update(
      gbaKey(session.btid),
      { ...stored.value, expiresAt: new Date(Date.now() - 1000).toISOString() },
      stored.revision,
    )
    assert.equal(await codeOf((await znClient(NAF_1)).getNafKey(req(session.btid))), 'ERR_FAILED_PRECONDITION')
    // Provisioning is tenant-scoped too.
    const other = await subscribersClient(OTHER_ADMIN)
    assert.equal(await codeOf(other.getSubscriber(GetSubscriberRequest.fromPartial({ impi: d.impi }))), 'ERR_NOT_FOUND')
    assert.equal(
      await codeOf((await subscribersClient(NAF_1)).getSubscriber(GetSubscriberRequest.fromPartial({ impi: d.impi }))),
      'ERR_PERMISSION_DENIED',
    )
    assert.equal(
      await codeOf(
        other.createSubscriber(
          CreateSubscriberRequest.fromPartial({ impi: d.impi, milenageKey: { $case: 'milenageKeyId', value: 'x' } }),
        ),
      ),
      'ERR_ALREADY_EXISTS',
    )
    assert.equal(
      await codeOf(
        (await subscribersClient(ADMIN)).createSubscriber(
          CreateSubscriberRequest.fromPartial({
            impi: 'new@ims.example',
            milenageKey: { $case: 'milenageKeyId', value: 'gba-import' },
          }),
        ),
      ),
      'ERR_KEY_TYPE_MISMATCH',
    )
  })
})
