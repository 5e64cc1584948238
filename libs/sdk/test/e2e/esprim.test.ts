/** ESPrim (TS-0003 §8.4, §10.3.8): session key, protected primitives, relays, anti-replay. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose'
import {
  ESPRIM_REQUEST_CTY,
  ESPRIM_RESPONSE_CTY,
  createEsprimOriginator,
  createEsprimReceiver,
  deriveSessionEsprimKey,
  fromSecurityInfo,
  randObjectFromJson,
  randObjectToJson,
  toSecurityInfo,
  type ContentEncryption,
  type EsprimOriginatorOptions,
  type EsprimReceiverOptions,
  type EsprimRandObject,
} from '../../src/e2e/index.ts'
import { fixedBytes, seededRandom } from './helpers.ts'

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0)
const PAIRWISE = fixedBytes('pairwise-ae7-cse9')
const RELAY_KEY = fixedBytes('pairwise-mn-cse')
const KEYS = new Map([
  ['ae7-esprim@maf.example.com', { key: PAIRWISE, originatorId: 'Cae-7' }],
  ['mn-cse-esprim@maf.example.com', { key: RELAY_KEY, originatorId: '/mn-cse-1' }],
])

function clock(start = NOW): { now: () => number; advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => (t += ms) }
}

function receiver(over: Partial<EsprimReceiverOptions> = {}) {
  return createEsprimReceiver({
    pairwiseKey: (kid) => KEYS.get(kid),
    random: seededRandom('rx'),
    now: () => NOW,
    ...over,
  })
}

function originator(rro: EsprimRandObject, over: Partial<EsprimOriginatorOptions> = {}) {
  return createEsprimOriginator({
    keyId: 'ae7-esprim@maf.example.com',
    pairwiseKey: PAIRWISE,
    receiverRandObject: rro,
    random: seededRandom('tx'),
    now: () => NOW,
    ...over,
  })
}

const request = (rqi: string, fr = 'Cae-7') => ({ op: 2, to: '/in-cse-9/ae-9/cnt-1/la', fr, rqi, rvi: '3' })

/** `code`, `code/reason` or `code#rsc`. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    const e = err as { code?: string; details?: { reason?: string; rsc?: number } }
    return `${e.code}${e.details?.reason === undefined ? '' : `/${e.details.reason}`}${e.details?.rsc === undefined ? '' : `#${e.details.rsc}`}`
  }
}

/** Re-encodes the protected header of a compact JWE, keeping the rest (what a relay could do). */
function withHeader(jwe: string, change: (h: Record<string, unknown>) => Record<string, unknown>): string {
  const [, ...rest] = jwe.split('.')
  const h = change({ ...decodeProtectedHeader(jwe) })
  return [Buffer.from(JSON.stringify(h)).toString('base64url'), ...rest].join('.')
}

describe('sessionESPrimKey', () => {
  test('HMAC-SHA256(pairwise, receiver esrv || originator esrv || label): pinned self-generated vector', () => {
    const rand = (v: number): EsprimRandObject => ({
      id: 'x',
      value: new Uint8Array(16).fill(v),
      expiresAt: NOW,
      keyGenAlgIds: [1],
      protocolAlgIds: [12],
    })
    const key = deriveSessionEsprimKey(new Uint8Array(32).fill(0x11), rand(0x22), rand(0x33))
    // Computed with node:crypto here and with python hmac when written (not a oneM2M vector).
    assert.equal(Buffer.from(key).toString('hex'), 'c2652d331516bc16bdec0e42361dfb43c4105408b8f36dd400e5754d508cd14d')
    const expected = createHmac('sha256', new Uint8Array(32).fill(0x11))
      .update(Buffer.concat([Buffer.alloc(16, 0x22), Buffer.alloc(16, 0x33)]))
      .update('oneM2M HMAC-SHA256 sessionESPrimKey derivation algorithm', 'ascii')
      .digest('hex')
    assert.equal(Buffer.from(key).toString('hex'), expected)
    // The order matters: receiver first.
    assert.notEqual(
      Buffer.from(deriveSessionEsprimKey(new Uint8Array(32).fill(0x11), rand(0x33), rand(0x22))).toString('hex'),
      expected,
    )
  })

  test('rand objects: JSON form with short names round-trips; bad forms are refused', () => {
    const rro = receiver().issueRandObject()
    const json = randObjectToJson(rro, 'receiver')
    assert.deepEqual(Object.keys(json), ['esri', 'esrv', 'esrx', 'esks', 'espa'])
    assert.match(json.esrx, /^\d{8}T\d{6}$/)
    assert.deepEqual(json.espa, [12, 11, 10])
    assert.deepEqual(randObjectFromJson(JSON.parse(JSON.stringify(json))), rro)
    const oro = originator(rro).randObject
    const oj = randObjectToJson(oro, 'originator')
    assert.equal(oj.esk, 1)
    assert.equal('esks' in oj, false)
    assert.deepEqual(randObjectFromJson(oj), oro)
    for (const bad of [
      { ...json, esrv: 'AAAA' },
      { ...json, esrx: '2025-06-01T12:00:00Z' },
      { ...json, esrx: '20251301T000000' },
      { ...json, esri: 'has space' },
      { ...json, espa: [] },
      { ...json, esks: undefined },
      null,
    ]) {
      assert.throws(() => randObjectFromJson(bad), { code: 'ERR_INVALID_ARGUMENT' })
    }
    assert.match(receiver().issueRandObject({ shared: true }).id, /^shared-/)
  })
})

describe('ESPrim request and response', () => {
  test('through a transit CSE: headers, oro only until the first response, response bound to the request', async () => {
    const rx = receiver()
    const rro = randObjectFromJson(randObjectToJson(rx.issueRandObject(), 'receiver')) // as received (sit 4)
    const tx = originator(rro)
    const epo = await tx.protectRequest(request('req-1'))
    // The transit CSE sees only an outer primitive with m2m:securityInfo.
    const outer = JSON.stringify({
      op: 5,
      to: '/in-cse-9/ae-9',
      fr: 'Cae-7',
      rqi: 'o-1',
      pc: { 'm2m:seci': toSecurityInfo(epo) },
    })
    const relayed = fromSecurityInfo((JSON.parse(outer) as { pc: { 'm2m:seci': unknown } }).pc['m2m:seci'])
    const h = decodeProtectedHeader(relayed)
    assert.deepEqual(
      { ...h, oro: undefined },
      {
        alg: 'dir',
        enc: 'A256GCM',
        kid: 'ae7-esprim@maf.example.com',
        cty: ESPRIM_REQUEST_CTY,
        ori: tx.randObject.id,
        rri: rro.id,
        seq: 0,
        oro: undefined,
      },
    )
    assert.deepEqual(h.oro, randObjectToJson(tx.randObject, 'originator'))
    assert.equal(relayed.split('.')[1], '') // dir: empty encrypted key

    const req = await rx.openRequest(relayed)
    assert.deepEqual(req.primitive, request('req-1'))
    assert.equal(req.originatorId, 'Cae-7')
    assert.equal(rx.sessionCount, 1)
    const rsp = await rx.protectResponse(req, { rsc: 2000, rqi: 'req-1', pc: { 'm2m:cin': { con: '21.5' } } })
    assert.equal(decodeProtectedHeader(rsp).cty, ESPRIM_RESPONSE_CTY)
    assert.equal(decodeProtectedHeader(rsp).seq, 0)
    assert.deepEqual((await tx.openResponse(rsp)).primitive, {
      rsc: 2000,
      rqi: 'req-1',
      pc: { 'm2m:cin': { con: '21.5' } },
    })
    assert.equal(await outcome(tx.openResponse(rsp)), 'ERR_REPLAY/replay')

    const second = await tx.protectRequest(request('req-2'))
    assert.equal('oro' in decodeProtectedHeader(second), false)
    assert.equal((await rx.openRequest(second)).seq, 1)
    // A request is not a response and vice versa.
    assert.equal(await outcome(tx.openResponse(second)), 'ERR_INVALID_ARGUMENT/wrong-session#4111')
    assert.equal(await outcome(rx.openRequest(rsp)), 'ERR_INVALID_ARGUMENT/wrong-direction#4111')
  })

  test('enc negotiation: the strongest common AES-GCM; A128GCM uses the first 16 bytes of the session key', async () => {
    for (const [only, len] of [
      ['A128GCM', 16],
      ['A192GCM', 24],
      ['A256GCM', 32],
    ] as [ContentEncryption, number][]) {
      const rx = receiver({ encryptions: [only] })
      const rro = rx.issueRandObject()
      const tx = originator(rro)
      assert.equal(tx.enc, only)
      const epo = await tx.protectRequest(request('r'))
      const session = deriveSessionEsprimKey(PAIRWISE, rro, tx.randObject)
      const { plaintext } = await compactDecrypt(epo, session.slice(0, len))
      assert.deepEqual(JSON.parse(new TextDecoder().decode(plaintext)), request('r'))
      assert.equal((await rx.openRequest(epo)).enc, only)
    }
    const rro = receiver({ encryptions: ['A128GCM'] }).issueRandObject()
    assert.throws(() => originator(rro, { encryptions: ['A256GCM'] }), { code: 'ERR_INVALID_ARGUMENT' })
  })

  test('replay window: duplicates and messages older than the window are refused, late ones inside it accepted', async () => {
    const rx = receiver({ windowSize: 4 })
    const tx = originator(rx.issueRandObject())
    const msgs: string[] = []
    for (let i = 0; i < 10; i++) msgs.push(await tx.protectRequest(request(`r${i}`)))
    assert.equal((await rx.openRequest(msgs[0]!)).seq, 0) // sets up the session (carries oro)
    assert.equal((await rx.openRequest(msgs[9]!)).seq, 9)
    assert.equal(await outcome(rx.openRequest(msgs[9]!)), 'ERR_REPLAY/replay')
    assert.equal((await rx.openRequest(msgs[7]!)).seq, 7)
    assert.equal(await outcome(rx.openRequest(msgs[7]!)), 'ERR_REPLAY/replay')
    assert.equal(await outcome(rx.openRequest(msgs[5]!)), 'ERR_REPLAY/too-old')
    assert.equal(await outcome(rx.openRequest(msgs[0]!)), 'ERR_REPLAY/too-old')
    assert.equal((await rx.openRequest(msgs[6]!)).seq, 6)
    // Responses: only for outstanding requests, each once.
    const r9 = await rx.protectResponse(await rx.openRequest(await tx.protectRequest(request('r10'))), { rsc: 2000 })
    assert.equal((await tx.openResponse(r9)).seq, 10)
    assert.equal(await outcome(tx.openResponse(r9)), 'ERR_REPLAY/replay')
  })

  test('a relay can neither read, change, re-route nor impersonate', async () => {
    const rx = receiver()
    const tx = originator(rx.issueRandObject())
    const epo = await tx.protectRequest(request('secret-read'))
    // 1. Read: the relay holds its own pairwise key with the receiver, not the originator's.
    await assert.rejects(compactDecrypt(epo, RELAY_KEY))
    await assert.rejects(compactDecrypt(epo, deriveSessionEsprimKey(RELAY_KEY, rx.issueRandObject(), tx.randObject)))
    // 2. Change: any header or ciphertext edit breaks the GCM tag (the header is the AAD).
    const edits: [string, string][] = [
      [withHeader(epo, (h) => ({ ...h, seq: 5 })), 'ERR_CIPHERTEXT_INVALID#4115'],
      [withHeader(epo, (h) => ({ ...h, cty: ESPRIM_REQUEST_CTY, extra: 1 })), 'ERR_CIPHERTEXT_INVALID#4115'],
      [withHeader(epo, (h) => ({ ...h, kid: 'mn-cse-esprim@maf.example.com' })), 'ERR_CIPHERTEXT_INVALID#4115'],
      [withHeader(epo, (h) => ({ ...h, oro: undefined })), 'ERR_NOT_FOUND#4113'],
      [withHeader(epo, (h) => ({ ...h, rri: 'r-unknown' })), 'ERR_NOT_FOUND#4114'],
      [withHeader(epo, (h) => ({ ...h, alg: 'A256KW' })), 'ERR_INVALID_ARGUMENT/unsupported-alg#4111'],
      [withHeader(epo, (h) => ({ ...h, enc: 'A128CBC-HS256' })), 'ERR_INVALID_ARGUMENT/unsupported-alg#4111'],
      [withHeader(epo, (h) => ({ ...h, seq: -1 })), 'ERR_INVALID_ARGUMENT/malformed#4111'],
    ]
    const parts = epo.split('.')
    const ct = Buffer.from(parts[3]!, 'base64url')
    ct[3]! ^= 0x20
    edits.push([
      [parts[0], parts[1], parts[2], ct.toString('base64url'), parts[4]].join('.'),
      'ERR_CIPHERTEXT_INVALID#4115',
    ])
    for (const [bad, expected] of edits) assert.equal(await outcome(rx.openRequest(bad)), expected)
    // Failed copies created no session and used no sequence number: the original still opens.
    assert.equal(rx.sessionCount, 0)
    assert.deepEqual((await rx.openRequest(epo)).primitive, request('secret-read'))
    // 3. Impersonate: the relay's own valid ESPrim session, with the originator's `fr`.
    const relay = createEsprimOriginator({
      keyId: 'mn-cse-esprim@maf.example.com',
      pairwiseKey: RELAY_KEY,
      receiverRandObject: rx.issueRandObject(),
      random: seededRandom('relay'),
      now: () => NOW,
    })
    assert.equal(
      await outcome(rx.openRequest(await relay.protectRequest(request('x', 'Cae-7')))),
      'ERR_UNAUTHENTICATED#4116',
    )
    assert.equal(
      (await rx.openRequest(await relay.protectRequest(request('y', '/mn-cse-1')))).originatorId,
      '/mn-cse-1',
    )
    // 4. A response forged under another session does not open at the originator.
    const forged = await new CompactEncrypt(new TextEncoder().encode('{"rsc":2000}'))
      .setProtectedHeader({
        alg: 'dir',
        enc: 'A256GCM',
        kid: 'ae7-esprim@maf.example.com',
        cty: ESPRIM_RESPONSE_CTY,
        ori: tx.randObject.id,
        rri: decodeProtectedHeader(epo).rri as string,
        seq: 0,
      })
      .encrypt(fixedBytes('guess'))
    assert.equal(await outcome(tx.openResponse(forged)), 'ERR_CIPHERTEXT_INVALID#4115')
  })

  test('keys, rand objects and sessions expire; unknown ids get the TS-0004 codes', async () => {
    const c = clock()
    const rx = receiver({ now: c.now, randLifetimeMs: 60_000 })
    const rro = rx.issueRandObject()
    const tx = originator(rro, { now: c.now })
    assert.ok(tx.randObject.expiresAt <= rro.expiresAt)
    const early = await tx.protectRequest(request('a'))
    const unknownKey = createEsprimOriginator({
      keyId: 'nobody',
      pairwiseKey: PAIRWISE,
      receiverRandObject: rro,
      random: seededRandom('n'),
      now: c.now,
    })
    assert.equal(await outcome(rx.openRequest(await unknownKey.protectRequest(request('n')))), 'ERR_KEY_NOT_FOUND#4112')
    c.advance(61_000)
    assert.equal(await outcome(rx.openRequest(early)), 'ERR_NOT_FOUND#4114')
    assert.equal(await outcome(tx.protectRequest(request('b'))), 'ERR_FAILED_PRECONDITION/expired')
    assert.throws(() => originator(rro, { now: c.now }), { code: 'ERR_INVALID_ARGUMENT' })
    // An expired pairwise key.
    const rx2 = createEsprimReceiver({
      pairwiseKey: () => ({ key: PAIRWISE, originatorId: 'Cae-7', expiresAt: NOW + 1000 }),
      random: seededRandom('rx2'),
      now: c.now,
    })
    const tx2 = originator(rx2.issueRandObject(), { now: c.now })
    assert.equal(await outcome(rx2.openRequest(await tx2.protectRequest(request('c')))), 'ERR_KEY_NOT_FOUND#4112')
  })

  test('an originator rand object must fit the receiver one; sessions are capped', async () => {
    const rx = receiver({ maxSessions: 2 })
    const rro = rx.issueRandObject()
    // A hand-made request whose oro outlives the receiver rand object.
    const oro = { ...randObjectToJson(originator(rro).randObject, 'originator'), esrx: '20990101T000000' }
    const h = {
      alg: 'dir',
      enc: 'A256GCM',
      kid: 'ae7-esprim@maf.example.com',
      cty: ESPRIM_REQUEST_CTY,
      ori: oro.esri,
      rri: rro.id,
      seq: 0,
      oro,
    }
    const key = deriveSessionEsprimKey(PAIRWISE, rro, randObjectFromJson(oro))
    const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(request('z'))))
      .setProtectedHeader(h)
      .encrypt(key)
    assert.equal(await outcome(rx.openRequest(jwe)), 'ERR_INVALID_ARGUMENT/incompatible-rand#4111')
    // Three originators share the receiver rand object: two sessions fit, the third is refused.
    for (const seed of ['a', 'b']) {
      const tx = originator(rro, { random: seededRandom(seed) })
      await rx.openRequest(await tx.protectRequest(request(seed)))
    }
    const third = originator(rro, { random: seededRandom('c') })
    assert.equal(await outcome(rx.openRequest(await third.protectRequest(request('c')))), 'ERR_RATE_LIMITED')
    assert.equal(await outcome(rx.openRequest('a.b.c')), 'ERR_INVALID_ARGUMENT/malformed')
    assert.equal(await outcome(receiver({ maxLength: 10 }).openRequest('x'.repeat(11))), 'ERR_PAYLOAD_TOO_LARGE')
    assert.throws(() => fromSecurityInfo({ sit: 1, epo: 'x' }), { code: 'ERR_INVALID_ARGUMENT' })
  })
})
