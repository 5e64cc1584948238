/**
 * Issue 5, end to end on real processes (nats-server, the KMS as a child process, authn): keys
 * for end-to-end protection come from the platform's MAF (authn RegisterMafKey / RetrieveMafKey,
 * keys generated in the KMS), and a gateway (an HTTP relay that records every byte) forwards
 * what it cannot read.
 *
 * - TR-0012 §5.1.1 key distribution, server to device through a gateway: the application (IN-AE,
 *   ESPrim originator) registers an ESPrim key (suid 33) with the device as target; the device
 *   (receiver) fetches it from the MAF the first time it sees its key identifier (TS-0003 table
 *   8.8.1-1: source = originator, target = receiver). Requests and responses open at the ends
 *   only; the relay saw neither the plaintext nor a key; a modified message is refused (4115), a
 *   replayed request and a replayed response are refused; the gateway can neither fetch the key,
 *   nor read with its own MAF key, nor pass itself off as the application (4116).
 * - The other direction: the device registers the key with the application as target, the
 *   application fetches it and receives the device's reading.
 * - ESData (suid 34) with two recipients: the gateway cannot open it, nor fetch their keys;
 *   a modified object is refused; an object addressed to the gateway too opens for it.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { compactDecrypt, decodeProtectedHeader } from 'jose'
import { EntityKind } from '@m2msec/proto/authn/v1'
import {
  createEsprimOriginator,
  createEsprimReceiver,
  decryptEsData,
  deriveSessionEsprimKey,
  encryptEsData,
  esdataKeyFromMaf,
  esprimKeyFromMaf,
  fromSecurityInfo,
  openMafKey,
  randObjectFromJson,
  randObjectToJson,
  SECURITY_INFO_TYPE,
  toSecurityInfo,
  type EsprimOriginator,
  type EsprimPrimitive,
  type EsprimRandObject,
  type MafEsprimKey,
  type OpenedEsprimRequest,
} from '@m2msec/sdk/e2e'
import {
  assertAbsent,
  grpcRefusal,
  MAF_FQDN,
  postJson,
  refusal,
  startE2ePlatform,
  via,
  type E2ePlatform,
  type HttpReply,
  type Party,
} from './e2e-protection-platform.ts'

const APP = 'Cmeterapp' // IN-AE of the service provider
const BILLING = 'Cbilling' // a second application
const DEVICE = 'Cmeter17' // ADN-AE on the meter
const GATEWAY = '/mn-gw01' // MN-CSE the meter reaches the platform through

const CONFIG = 'valve-schedule:06:00-open;22:00-close;pin=4412'
const READING = 'meter17:kWh=18231.442;tamper=0'
const utf8 = (s: string) => new TextEncoder().encode(s)

type Json = Record<string, unknown>
const seciOf = (outer: Json): unknown => (outer.pc as Json | undefined)?.['m2m:seci']

/** An ESPrim receiver behind an HTTP endpoint that fetches a MAF key on its first use. */
interface ReceiverEndpoint {
  readonly url: string
  readonly opened: OpenedEsprimRequest[]
  readonly keys: Map<string, MafEsprimKey>
  retrievals: number
}

describe('end-to-end protection with keys from the MAF, through a recording gateway', { timeout: 120_000 }, () => {
  let platform: E2ePlatform
  let app: Party
  let billing: Party
  let device: Party
  let gateway: Party

  before(async () => {
    platform = await startE2ePlatform('e2e-protection-keys')
    app = await platform.enrol(APP, EntityKind.ENTITY_KIND_AE)
    billing = await platform.enrol(BILLING, EntityKind.ENTITY_KIND_AE)
    device = await platform.enrol(DEVICE, EntityKind.ENTITY_KIND_AE)
    gateway = await platform.enrol(GATEWAY, EntityKind.ENTITY_KIND_CSE)
  })

  after(async () => {
    await platform?.stop()
  })

  async function receiverEndpoint(
    party: Party,
    answer: (request: EsprimPrimitive) => EsprimPrimitive,
  ): Promise<ReceiverEndpoint> {
    const keys = new Map<string, MafEsprimKey>()
    const rx = createEsprimReceiver({ pairwiseKey: (kid) => keys.get(kid), random: randomBytes, now: Date.now })
    const state: ReceiverEndpoint = { url: '', opened: [], keys, retrievals: 0 }
    const url = await platform.endpoint(async (outer) => {
      const seci = seciOf(outer) as { sit?: unknown } | undefined
      if (seci?.sit === SECURITY_INFO_TYPE.randObjectRequest) {
        const ero = randObjectToJson(rx.issueRandObject(), 'receiver')
        return { rsc: 2000, rqi: outer.rqi, pc: { 'm2m:seci': { sit: SECURITY_INFO_TYPE.randObjectResponse, ero } } }
      }
      const epo = fromSecurityInfo(seci)
      let kid: unknown
      try {
        kid = decodeProtectedHeader(epo).kid
      } catch {
        kid = undefined // openRequest refuses the malformed object with its own code
      }
      // MAF ESPrim (TS-0003 §8.4): an unknown key identifier of our MAF is fetched on first use.
      if (typeof kid === 'string' && !keys.has(kid) && kid.endsWith(`@${MAF_FQDN}`)) {
        try {
          const res = await party.retrieveMafKey(kid)
          state.retrievals++
          keys.set(kid, esprimKeyFromMaf(await openMafKey(res, party.mafPrivateKey)))
        } catch {
          // Not a target, unknown or expired at the MAF: openRequest answers 4112.
        }
      }
      const request = await rx.openRequest(epo)
      state.opened.push(request)
      const epoOut = await rx.protectResponse(request, answer(request.primitive))
      return { rsc: 2000, rqi: outer.rqi, pc: { 'm2m:seci': toSecurityInfo(epoOut) } }
    })
    return Object.assign(state, { url })
  }

  /** Fetches the receiver's rand object through the relay (sit 3 / 4) and starts a session. */
  async function session(
    from: Party,
    to: string,
    key: MafEsprimKey,
  ): Promise<{ tx: EsprimOriginator; rro: EsprimRandObject }> {
    const r = await postJson(via(platform.relay, to), {
      op: 2,
      to,
      fr: from.id,
      rqi: `rro-${randomBytes(4).toString('hex')}`,
      pc: { 'm2m:seci': { sit: SECURITY_INFO_TYPE.randObjectRequest } },
    })
    assert.equal(r.status, 200)
    const rro = randObjectFromJson((seciOf(r.body) as Json).ero)
    const tx = createEsprimOriginator({
      keyId: key.keyId,
      pairwiseKey: key.key,
      receiverRandObject: rro,
      random: randomBytes,
      now: Date.now,
    })
    return { tx, rro }
  }

  /** Protects `inner` and sends it through the relay as `m2m:securityInfo` (sit 5). */
  async function send(tx: EsprimOriginator, to: string, fr: string, inner: EsprimPrimitive): Promise<HttpReply> {
    const epo = await tx.protectRequest(inner)
    return postJson(via(platform.relay, to), {
      op: inner.op,
      to,
      fr,
      rqi: inner.rqi,
      pc: { 'm2m:seci': toSecurityInfo(epo) },
    })
  }

  /**
   * The hostile gateway edits the ESPrim object of a request body: it flips the first character
   * of the ciphertext, or it adds a parameter to the protected header.
   */
  function tamperEpo(body: Buffer, where: 'ciphertext' | 'header'): Buffer {
    const outer = JSON.parse(body.toString('utf8')) as Json
    const seci = seciOf(outer) as { epo: string }
    const parts = seci.epo.split('.')
    if (where === 'ciphertext') {
      const ct = parts[3] ?? ''
      parts[3] = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1)
    } else {
      const header = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString('utf8')) as Json
      parts[0] = Buffer.from(JSON.stringify({ ...header, via: GATEWAY })).toString('base64url')
    }
    seci.epo = parts.join('.')
    return Buffer.from(JSON.stringify(outer))
  }

  test('TR-0012 §5.1.1: application to device through the gateway with a MAF ESPrim key', async (t) => {
    const started = performance.now()
    const deviceEnd = await receiverEndpoint(device, (req) => ({
      rsc: req.op === 1 ? 2001 : 2000,
      rqi: req.rqi,
      pc: { 'm2m:cin': { con: READING } },
    }))
    platform.relay.route(DEVICE, deviceEnd.url)

    const reg = await app.registerMafKey(33, [DEVICE])
    const maf = await openMafKey(reg, app.mafPrivateKey)
    const appKey = esprimKeyFromMaf(maf)
    assert.match(appKey.keyId, /^[0-9a-f]{32}@maf\.m2msec\.local$/)
    assert.equal(appKey.key.length, 16)
    assert.equal(appKey.originatorId, APP)
    assert.throws(() => esdataKeyFromMaf(maf), { code: 'ERR_KEY_TYPE_MISMATCH' })
    assert.equal((await refusal(openMafKey(reg, gateway.mafPrivateKey))).code, 'ERR_CIPHERTEXT_INVALID')
    assert.equal(deviceEnd.keys.size, 0, 'the device has no key before the first request')

    const { tx, rro } = await session(app, DEVICE, appKey)
    const first = await send(tx, DEVICE, APP, {
      op: 1,
      to: `${GATEWAY}/${DEVICE}/cnt-config`,
      fr: APP,
      rqi: 'q1',
      ty: 4,
      pc: { 'm2m:cin': { con: CONFIG } },
    })
    assert.equal(first.status, 200, JSON.stringify(first.body))
    const response = await tx.openResponse(fromSecurityInfo(seciOf(first.body)))
    assert.deepEqual(response.primitive, { rsc: 2001, rqi: 'q1', pc: { 'm2m:cin': { con: READING } } })
    const seen = deviceEnd.opened[0]
    assert.equal(seen?.originatorId, APP)
    assert.deepEqual(seen?.primitive.pc, { 'm2m:cin': { con: CONFIG } })
    assert.deepEqual(deviceEnd.keys.get(appKey.keyId)?.key, appKey.key, 'both ends hold the same pairwise key')
    t.diagnostic(`key registration + first protected exchange: ${(performance.now() - started).toFixed(0)} ms`)

    const second = await send(tx, DEVICE, APP, { op: 2, to: `${GATEWAY}/${DEVICE}/cnt/la`, fr: APP, rqi: 'q2' })
    assert.equal((await tx.openResponse(fromSecurityInfo(seciOf(second.body)))).primitive.rqi, 'q2')
    assert.equal(deviceEnd.retrievals, 1, 'the device fetched the key once, on first use')

    // The gateway forwarded ciphertext only (the recording itself is checked by a positive control).
    assert.ok(platform.relay.bytes().includes(fromSecurityInfo(seciOf(first.body))))
    const sessionKey = deriveSessionEsprimKey(appKey.key, rro, tx.randObject)
    assertAbsent(platform.relay.bytes(), {
      'the configuration': CONFIG,
      'the reading': READING,
      'the MAF key': maf.key,
      'the pairwise key': appKey.key,
      'the session key': sessionKey,
    })

    // A modified request (ciphertext, then protected header) is refused; nothing is consumed.
    for (const where of ['ciphertext', 'header'] as const) {
      platform.relay.rewrite = (_to, body) => tamperEpo(body, where)
      const tampered = await send(tx, DEVICE, APP, { op: 2, to: `${DEVICE}/cnt/la`, fr: APP, rqi: `t-${where}` })
      platform.relay.rewrite = undefined
      assert.equal(tampered.status, 400)
      assert.deepEqual(tampered.body, { code: 'ERR_CIPHERTEXT_INVALID', rsc: 4115 })
    }

    // The gateway replays a request it forwarded, and an old response.
    const forwarded = platform.relay.records.find(
      (r) => r.to === DEVICE && r.status === 200 && r.request.includes('epo'),
    )
    assert.ok(forwarded !== undefined)
    const replayed = await platform.relay.inject(DEVICE, forwarded.request)
    assert.equal(replayed.status, 400)
    assert.equal(replayed.body.code, 'ERR_REPLAY')
    assert.equal((await refusal(tx.openResponse(fromSecurityInfo(seciOf(first.body))))).code, 'ERR_REPLAY')
    const third = await send(tx, DEVICE, APP, { op: 2, to: `${DEVICE}/cnt/la`, fr: APP, rqi: 'q3' })
    assert.equal((await tx.openResponse(fromSecurityInfo(seciOf(third.body)))).primitive.rqi, 'q3')

    // The gateway cannot fetch the key: it is not the target.
    assert.equal(await grpcRefusal(gateway.retrieveMafKey(appKey.keyId)), 'ERR_NOT_FOUND')
    // Its own MAF key with the device does not read the application's session.
    const gwKey = esprimKeyFromMaf(await openMafKey(await gateway.registerMafKey(33, [DEVICE]), gateway.mafPrivateKey))
    const epo = fromSecurityInfo(seciOf(JSON.parse(forwarded.request.toString('utf8')) as Json))
    const oro = randObjectFromJson(decodeProtectedHeader(epo).oro)
    await assert.rejects(compactDecrypt(epo, deriveSessionEsprimKey(gwKey.key, rro, oro)))
    // With its own valid key it can talk to the device as itself, never as the application.
    const gw = await session(gateway, DEVICE, gwKey)
    const asItself = await send(gw.tx, DEVICE, GATEWAY, { op: 2, to: `${DEVICE}/cnt/la`, fr: GATEWAY, rqi: 'g1' })
    assert.equal(asItself.status, 200)
    assert.equal(deviceEnd.opened.at(-1)?.originatorId, GATEWAY)
    const asApp = await send(gw.tx, DEVICE, GATEWAY, { op: 2, to: `${DEVICE}/cnt/la`, fr: APP, rqi: 'g2' })
    assert.equal(asApp.status, 400)
    assert.deepEqual(asApp.body, { code: 'ERR_UNAUTHENTICATED', rsc: 4116 })
    // A key identifier the device is not a target of stays unknown (4112).
    const notForDevice = esprimKeyFromMaf(
      await openMafKey(await gateway.registerMafKey(33, [APP]), gateway.mafPrivateKey),
    )
    const stranger = await session(gateway, DEVICE, notForDevice)
    const unknown = await send(stranger.tx, DEVICE, GATEWAY, { op: 2, to: DEVICE, fr: GATEWAY, rqi: 'g3' })
    assert.deepEqual(unknown.body, { code: 'ERR_KEY_NOT_FOUND', rsc: 4112 })
  })

  test('device to application: the device registers the key, the application fetches it', async () => {
    const appEnd = await receiverEndpoint(app, (req) => ({ rsc: 2001, rqi: req.rqi }))
    platform.relay.route(APP, appEnd.url)
    const maf = await openMafKey(await device.registerMafKey(33, [APP]), device.mafPrivateKey)
    const deviceKey = esprimKeyFromMaf(maf)
    const { tx } = await session(device, APP, deviceKey)
    const before = platform.relay.records.length
    const r = await send(tx, APP, DEVICE, {
      op: 1,
      to: `/in-cse/${APP}/cnt-readings`,
      fr: DEVICE,
      rqi: 'd1',
      ty: 4,
      pc: { 'm2m:cin': { con: READING } },
    })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    assert.equal((await tx.openResponse(fromSecurityInfo(seciOf(r.body)))).primitive.rsc, 2001)
    assert.equal(appEnd.retrievals, 1)
    assert.equal(appEnd.opened[0]?.originatorId, DEVICE, 'the MAF source is the identity bound to the key')
    assert.deepEqual(appEnd.opened[0]?.primitive.pc, { 'm2m:cin': { con: READING } })
    const relayed = Buffer.concat(platform.relay.records.slice(before).flatMap((x) => [x.request, x.response]))
    assertAbsent(relayed, { 'the reading': READING, 'the MAF key': maf.key, 'the pairwise key': deviceKey.key })
  })

  test('ESData with two recipients through the gateway: it cannot open it nor fetch their keys', async () => {
    const inbox = new Map<string, Json[]>()
    for (const id of [APP, BILLING]) {
      inbox.set(id, [])
      platform.relay.route(
        id,
        await platform.endpoint(async (outer) => {
          inbox.get(id)?.push(outer)
          return { rsc: 2001, rqi: outer.rqi }
        }),
      )
    }
    // The device (MAF source) registers one ESData key per reader; the gateway has its own.
    const forApp = esdataKeyFromMaf(await openMafKey(await device.registerMafKey(34, [APP]), device.mafPrivateKey))
    const forBilling = esdataKeyFromMaf(
      await openMafKey(await device.registerMafKey(34, [BILLING]), device.mafPrivateKey),
    )
    const forGateway = esdataKeyFromMaf(
      await openMafKey(await device.registerMafKey(34, [GATEWAY]), device.mafPrivateKey),
    )
    const data = utf8(JSON.stringify({ reading: READING, at: '20250601T120000' }))
    const aad = utf8(`${DEVICE}|cnt-readings|42`)
    const jwe = await encryptEsData(data, {
      serialization: 'json',
      recipients: [forApp, forBilling],
      aad,
      header: { cty: 'application/json' },
    })
    const before = platform.relay.records.length
    for (const to of [APP, BILLING]) {
      const outer = { op: 1, to, fr: DEVICE, rqi: `e-${to}`, ty: 4, pc: { 'm2m:cin': { con: jwe } } }
      assert.equal((await postJson(via(platform.relay, to), outer)).status, 200)
    }
    const received = (id: string, i = 0): string => ((inbox.get(id)?.[i]?.pc as Json)['m2m:cin'] as { con: string }).con

    // Each reader fetches its own key from the MAF and opens.
    for (const [reader, party] of [
      [APP, app],
      [BILLING, billing],
    ] as const) {
      const key = esdataKeyFromMaf(
        await openMafKey(await party.retrieveMafKey(reader === APP ? forApp.kid : forBilling.kid), party.mafPrivateKey),
      )
      const opened = await decryptEsData(received(reader), { keys: [key] })
      assert.deepEqual(opened.plaintext, data)
      assert.deepEqual(opened.aad, aad)
      assert.equal(opened.kid, key.kid)
    }

    // The gateway: no key of the readers at the MAF, and its own key opens nothing.
    for (const kid of [forApp.kid, forBilling.kid]) {
      assert.equal(await grpcRefusal(gateway.retrieveMafKey(kid)), 'ERR_NOT_FOUND')
    }
    const gwKey = esdataKeyFromMaf(
      await openMafKey(await gateway.retrieveMafKey(forGateway.kid), gateway.mafPrivateKey),
    )
    assert.equal((await refusal(decryptEsData(jwe, { keys: [gwKey] }))).code, 'ERR_KEY_NOT_FOUND')
    assert.equal(
      (await refusal(decryptEsData(jwe, { keys: [{ ...gwKey, kid: forApp.kid }] }))).code,
      'ERR_CIPHERTEXT_INVALID',
    )
    const relayed = Buffer.concat(platform.relay.records.slice(before).flatMap((x) => [x.request, x.response]))
    assertAbsent(relayed, {
      'the reading': READING,
      "the application's key": forApp.key,
      "billing's key": forBilling.key,
    })

    // A modified object (one ciphertext character) is refused by the reader.
    platform.relay.rewrite = (_to, body) => {
      const outer = JSON.parse(body.toString('utf8')) as Json
      const cin = (outer.pc as Json)['m2m:cin'] as { con: string }
      const general = JSON.parse(cin.con) as { ciphertext: string }
      general.ciphertext = (general.ciphertext[0] === 'A' ? 'B' : 'A') + general.ciphertext.slice(1)
      cin.con = JSON.stringify(general)
      return Buffer.from(JSON.stringify(outer))
    }
    await postJson(via(platform.relay, APP), {
      op: 1,
      to: APP,
      fr: DEVICE,
      rqi: 'e-t',
      pc: { 'm2m:cin': { con: jwe } },
    })
    platform.relay.rewrite = undefined
    assert.equal((await refusal(decryptEsData(received(APP, 1), { keys: [forApp] }))).code, 'ERR_CIPHERTEXT_INVALID')

    // Data meant for the gateway as well opens for it and for the application.
    const both = await encryptEsData(data, { serialization: 'json', recipients: [forApp, forGateway] })
    assert.deepEqual((await decryptEsData(both, { keys: [gwKey] })).plaintext, data)
    assert.deepEqual((await decryptEsData(both, { keys: [forApp] })).plaintext, data)
  })
})
