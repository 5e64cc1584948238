/**
 * The MAF procedures (TS-0003 §8.8) with fakes: client registration, key registration with
 * one or many targets, retrieval only by a registered target (everyone else NOT_FOUND), update,
 * de-registration and expiry. Every refused request leaves no key behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compactDecrypt, exportJWK, generateKeyPair } from 'jose'
import { ADMIN, codeOf, createWorld, type World } from './world.ts'

const SOURCE = 'Csensor01'
const TARGET = '/in-cse'
const OTHER = '/mn-cse-2'
const HOUR = 3600_000

const caller = (id: string) => ({ tenant: 'acme', id, roles: [] as string[] })

async function recipient() {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
  return {
    jwk: JSON.stringify(await exportJWK(publicKey)),
    open: async (jwe: string) => (await compactDecrypt(jwe, privateKey)).plaintext,
  }
}

async function world(): Promise<World> {
  const w = await createWorld()
  await w.register(SOURCE, 'AE')
  await w.register(TARGET, 'CSE')
  await w.register(OTHER, 'CSE')
  return w
}

async function registerClient(w: World, id: string) {
  return w.ops.registerMafClient(caller(id), {
    clientId: '',
    expirationTime: new Date(w.now + 24 * HOUR),
    labels: ['site:berlin'],
    adminFqdn: 'admin.example.com',
  })
}

test('MAF client registration: the caller itself (admins may name another); validated; retrievable; de-registered', async () => {
  const w = await world()
  const c = await registerClient(w, SOURCE)
  assert.equal(c.clientId, SOURCE)
  assert.match(c.registrationId, /^[a-z2-7]{26}$/)
  assert.deepEqual(await w.ops.getMafClient(caller(SOURCE), ''), c)
  assert.equal(await codeOf(w.ops.getMafClient(caller(OTHER), SOURCE)), 'ERR_NOT_FOUND')
  assert.deepEqual(await w.ops.getMafClient(ADMIN, SOURCE), c)
  const bad: Array<[Promise<unknown>, string]> = [
    [
      w.ops.registerMafClient(caller(OTHER), {
        clientId: SOURCE,
        expirationTime: new Date(w.now + HOUR),
        labels: [],
        adminFqdn: 'a.example',
      }),
      'ERR_PERMISSION_DENIED',
    ],
    [
      w.ops.registerMafClient(caller(OTHER), {
        clientId: '',
        expirationTime: new Date(w.now - 1),
        labels: [],
        adminFqdn: 'a.example',
      }),
      'ERR_INVALID_ARGUMENT',
    ],
    [
      w.ops.registerMafClient(caller(OTHER), {
        clientId: '',
        expirationTime: undefined,
        labels: [],
        adminFqdn: 'a.example',
      }),
      'ERR_INVALID_ARGUMENT',
    ],
    [
      w.ops.registerMafClient(caller(OTHER), {
        clientId: '',
        expirationTime: new Date(w.now + 400 * 24 * HOUR),
        labels: [],
        adminFqdn: 'a.example',
      }),
      'ERR_INVALID_ARGUMENT',
    ],
    [
      w.ops.registerMafClient(caller(OTHER), {
        clientId: '',
        expirationTime: new Date(w.now + HOUR),
        labels: [],
        adminFqdn: 'not a name',
      }),
      'ERR_INVALID_ARGUMENT',
    ],
    [
      w.ops.registerMafClient(caller(OTHER), {
        clientId: '',
        expirationTime: new Date(w.now + HOUR),
        labels: [''],
        adminFqdn: 'a.example',
      }),
      'ERR_INVALID_ARGUMENT',
    ],
    [
      w.ops.registerMafClient(caller('Cunknown'), {
        clientId: '',
        expirationTime: new Date(w.now + HOUR),
        labels: [],
        adminFqdn: 'a.example',
      }),
      'ERR_NOT_FOUND',
    ],
  ]
  for (const [p, code] of bad) assert.equal(await codeOf(p), code)
  assert.equal(await codeOf(w.ops.getMafClient(caller(OTHER), '')), 'ERR_NOT_FOUND')
  await w.ops.deregisterMafClient(caller(SOURCE), '')
  assert.equal(await codeOf(w.ops.getMafClient(caller(SOURCE), '')), 'ERR_NOT_FOUND')
  assert.equal(await codeOf(w.ops.deregisterMafClient(caller(SOURCE), '')), 'ERR_NOT_FOUND')
})

test('key registration and retrieval: the source and its one target get the same key; nobody else', async () => {
  const w = await world()
  const src = await recipient()
  const tgt = await recipient()
  const created = () => w.deps.kms.calls.filter((c) => c === 'createKey').length
  const input = {
    sourceClientId: '',
    suid: 32,
    targetIds: [TARGET],
    expirationTime: new Date(w.now + HOUR),
    labels: [],
    adminFqdn: '',
    recipientPublicJwk: src.jwk,
  }
  const before = created()
  assert.equal(await codeOf(w.ops.registerMafKey(caller(SOURCE), input)), 'ERR_FAILED_PRECONDITION', 'not a MAF client')
  await registerClient(w, SOURCE)
  const bad: Array<[Partial<typeof input>, string]> = [
    [{ suid: 22 }, 'ERR_INVALID_ARGUMENT'],
    [{ targetIds: [TARGET, OTHER] }, 'ERR_INVALID_ARGUMENT'],
    [{ targetIds: [] }, 'ERR_INVALID_ARGUMENT'],
    [{ targetIds: ['in-cse'] }, 'ERR_INVALID_ARGUMENT'],
    [{ expirationTime: new Date(w.now) }, 'ERR_INVALID_ARGUMENT'],
    [{ recipientPublicJwk: '{"kty":"EC","crv":"P-384","x":"a","y":"b"}' }, 'ERR_INVALID_ARGUMENT'],
    [{ recipientPublicJwk: '' }, 'ERR_INVALID_ARGUMENT'],
    [{ sourceClientId: OTHER }, 'ERR_PERMISSION_DENIED'],
  ]
  for (const [over, code] of bad)
    assert.equal(await codeOf(w.ops.registerMafKey(caller(SOURCE), { ...input, ...over })), code)
  assert.equal(created(), before, 'refused registrations create no key')

  const reg = await w.ops.registerMafKey(caller(SOURCE), input)
  assert.match(reg.key.relativeKeyId, /^[0-9a-f]{32}$/)
  assert.equal(reg.key.sourceClientId, SOURCE)
  assert.equal(reg.key.adminFqdn, 'admin.example.com', 'inherited from the source registration')
  const sourceKey = await src.open(reg.wrappedKey)
  assert.equal(sourceKey.length, 32)
  const identifier = `${reg.key.relativeKeyId}@maf.example.com`

  const retrieve = (id: string, keyIdentifier = identifier) =>
    w.ops.retrieveMafKey(caller(id), { keyIdentifier, recipientPublicJwk: tgt.jwk })
  assert.equal(await codeOf(retrieve(TARGET)), 'ERR_FAILED_PRECONDITION', 'the target must be a MAF client too')
  await registerClient(w, TARGET)
  await registerClient(w, OTHER)
  const got = await retrieve(TARGET)
  assert.deepEqual(await tgt.open(got.wrappedKey), sourceKey)
  assert.equal(got.key.sourceClientId, SOURCE)
  assert.equal(got.key.suid, 32)
  assert.deepEqual(await tgt.open((await retrieve(TARGET, reg.key.relativeKeyId)).wrappedKey), sourceKey)
  // Not a target, the source itself, an admin, a foreign MAF, a malformed or unknown id: NOT_FOUND.
  for (const [id, ident] of [
    [OTHER, identifier],
    [SOURCE, identifier],
    [TARGET, `${reg.key.relativeKeyId}@other-maf.example.com`],
    [TARGET, 'zz@maf.example.com'],
    [TARGET, `${'0'.repeat(32)}@maf.example.com`],
  ] as const) {
    assert.equal(await codeOf(retrieve(id, ident)), 'ERR_NOT_FOUND', `${id} ${ident}`)
  }
  assert.equal(
    await codeOf(w.ops.retrieveMafKey(ADMIN, { keyIdentifier: identifier, recipientPublicJwk: tgt.jwk })),
    'ERR_FAILED_PRECONDITION',
  )
})

test('ESData keys have many targets; update changes targets and expiry; de-registration and expiry remove the key', async () => {
  const w = await world()
  const src = await recipient()
  for (const id of [SOURCE, TARGET, OTHER]) await registerClient(w, id)
  const reg = await w.ops.registerMafKey(caller(SOURCE), {
    sourceClientId: '',
    suid: 34,
    targetIds: [TARGET],
    expirationTime: new Date(w.now + HOUR),
    labels: ['batch-7'],
    adminFqdn: 'other-admin.example.com',
    recipientPublicJwk: src.jwk,
  })
  const rel = reg.key.relativeKeyId
  const retrieve = (id: string) => w.ops.retrieveMafKey(caller(id), { keyIdentifier: rel, recipientPublicJwk: src.jwk })
  assert.equal(await codeOf(retrieve(OTHER)), 'ERR_NOT_FOUND')
  assert.equal(
    await codeOf(w.ops.updateMafKey(caller(OTHER), { relativeKeyId: rel, targetIds: [OTHER] })),
    'ERR_NOT_FOUND',
  )
  assert.equal(
    await codeOf(w.ops.updateMafKey(caller(SOURCE), { relativeKeyId: rel, targetIds: [TARGET, TARGET] })),
    'ERR_INVALID_ARGUMENT',
  )
  const updated = await w.ops.updateMafKey(caller(SOURCE), { relativeKeyId: rel, targetIds: [TARGET, OTHER] })
  assert.deepEqual(updated.targetIds, [TARGET, OTHER])
  assert.equal(await codeOf(retrieve(OTHER)), 'resolved')
  assert.equal(await codeOf(retrieve(TARGET)), 'resolved')

  // Expiry: shortened by an admin, then passed: gone for everyone, and swept.
  await w.ops.updateMafKey(ADMIN, { relativeKeyId: rel, expirationTime: new Date(w.now + 60_000) })
  w.now += 60_000
  assert.equal(await codeOf(retrieve(TARGET)), 'ERR_NOT_FOUND')
  assert.equal(await codeOf(w.ops.updateMafKey(caller(SOURCE), { relativeKeyId: rel, labels: [] })), 'ERR_NOT_FOUND')
  const swept = await w.ops.sweepExpired()
  assert.equal(swept.mafKeys, 1)
  assert.equal(w.deps.mafKeys.records.kv.items.size, 0)
  const kmsKeyId = [...w.deps.kms.keys.values()].find((k) => k.labels === undefined && k.exportable)?.id
  assert.ok(kmsKeyId !== undefined)
  assert.equal(w.deps.kms.stateOf('acme', kmsKeyId), 'DESTRUCTION_SCHEDULED')

  // De-registration.
  const second = await w.ops.registerMafKey(caller(SOURCE), {
    sourceClientId: '',
    suid: 35,
    targetIds: [TARGET, OTHER],
    expirationTime: new Date(w.now + HOUR),
    labels: [],
    adminFqdn: '',
    recipientPublicJwk: src.jwk,
  })
  assert.equal(await codeOf(w.ops.deregisterMafKey(caller(TARGET), second.key.relativeKeyId)), 'ERR_NOT_FOUND')
  await w.ops.deregisterMafKey(caller(SOURCE), second.key.relativeKeyId)
  assert.equal(
    await codeOf(
      w.ops.retrieveMafKey(caller(TARGET), { keyIdentifier: second.key.relativeKeyId, recipientPublicJwk: src.jwk }),
    ),
    'ERR_NOT_FOUND',
  )
  assert.equal(await codeOf(w.ops.deregisterMafKey(caller(SOURCE), second.key.relativeKeyId)), 'ERR_NOT_FOUND')
  assert.ok(w.deps.auditLog.some((e) => e.action === 'authn.DeregisterMafKey' && e.result === 'ok'))
})
