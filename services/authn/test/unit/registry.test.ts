/**
 * Tenants, entities and credentials with in-memory fakes: who may do what, the oneM2M id
 * forms, tenant isolation, certificate validation at AddCredential.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { validateEntityId } from '../../src/domain/entity-ids.ts'
import { createAuthnOperations } from '../../src/domain/operations/index.ts'
import { fakeDeps } from './fakes.ts'
import { createTestCa, issueEntityCert } from '../test-pki.ts'

const OPERATOR = { tenant: '_platform', id: 'op', roles: ['operator'] }
const ADMIN = { tenant: 'acme', id: 'adm', roles: ['admin'] }

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    return (err as { code: string }).code
  }
  return 'resolved'
}

test('oneM2M entity id forms per kind', async () => {
  const ok: Array<[Parameters<typeof validateEntityId>[0], string]> = [
    ['AE', 'Cmeter01'],
    ['AE', 'Smy-app'],
    ['AE', '/in-cse/Cmeter01'],
    ['AE', '//sp.example.com/in-cse/Cmeter01'],
    ['CSE', '/in-cse'],
    ['CSE', '//sp.example.com/mn-cse-1'],
    ['DEVICE', '1.2.840.10045.1.42'],
    ['DEVICE', 'urn:dev:mac:0024befffe804ff1'],
    ['GATEWAY', 'urn:imei:490154203237518'],
  ]
  for (const [kind, id] of ok) validateEntityId(kind, id)
  const bad: Array<[Parameters<typeof validateEntityId>[0], string]> = [
    ['AE', 'meter01'],
    ['AE', 'C'],
    ['AE', '/in-cse/'],
    ['CSE', 'in-cse'],
    ['CSE', '/in cse'],
    ['DEVICE', 'mac:0024'],
    ['DEVICE', '3.1.2'],
    ['GATEWAY', 'Cmeter01'],
    ['DEVICE', `urn:dev:${'x'.repeat(300)}`],
  ]
  for (const [kind, id] of bad) assert.equal(await codeOf(() => validateEntityId(kind, id)), 'ERR_INVALID_ARGUMENT', id)
})

test('only platform operators manage tenants; tenant admins manage their own entities', async () => {
  const deps = fakeDeps()
  const ops = createAuthnOperations(deps)
  const create = { tenantId: 'acme', displayName: 'ACME', trustAnchorsPem: [], secureEnvironment: '' }
  assert.equal(await codeOf(ops.createTenant(ADMIN, create)), 'ERR_PERMISSION_DENIED')
  // The operator role counts only in the platform tenant (a tenant admin can give roles to its entities).
  assert.equal(
    await codeOf(ops.createTenant({ tenant: 'acme', id: 'x', roles: ['operator'] }, create)),
    'ERR_PERMISSION_DENIED',
  )
  assert.equal(await codeOf(ops.createTenant(OPERATOR, { ...create, tenantId: '_platform' })), 'ERR_INVALID_ARGUMENT')
  const t = await ops.createTenant(OPERATOR, create)
  assert.equal(t.signingKeyId, 'authn-signing-acme')
  assert.equal(await codeOf(ops.createTenant(OPERATOR, create)), 'ERR_ALREADY_EXISTS')
  await ops.createTenant(OPERATOR, { ...create, tenantId: 'globex' })
  assert.deepEqual(
    (await ops.listTenants(OPERATOR, { pageSize: 1, pageToken: '' })).tenants.map((x) => x.id),
    ['acme'],
  )
  const page1 = await ops.listTenants(OPERATOR, { pageSize: 1, pageToken: '' })
  const page2 = await ops.listTenants(OPERATOR, { pageSize: 1, pageToken: page1.nextPageToken as string })
  assert.deepEqual(
    page2.tenants.map((x) => x.id),
    ['globex'],
  )
  assert.equal(page2.nextPageToken, undefined)

  const dev = { entityId: 'urn:dev:mac:0024befffe804ff1', kind: 'DEVICE' as const, roles: ['device'], labels: {} }
  assert.equal(await codeOf(ops.registerEntity({ ...ADMIN, roles: [] }, dev)), 'ERR_PERMISSION_DENIED')
  assert.equal(await codeOf(ops.registerEntity(ADMIN, { ...dev, kind: 'AE' })), 'ERR_INVALID_ARGUMENT')
  assert.equal(await codeOf(ops.registerEntity(ADMIN, { ...dev, roles: ['bad role'] })), 'ERR_INVALID_ARGUMENT')
  await ops.registerEntity(ADMIN, dev)
  assert.equal(await codeOf(ops.registerEntity(ADMIN, dev)), 'ERR_ALREADY_EXISTS')
  // Another tenant's admin sees nothing: NOT_FOUND, exactly like an unknown id.
  const globexAdmin = { tenant: 'globex', id: 'adm', roles: ['admin'] }
  assert.equal(await codeOf(ops.getEntity(globexAdmin, dev.entityId)), 'ERR_NOT_FOUND')
  assert.equal(await codeOf(ops.disableEntity(globexAdmin, dev.entityId)), 'ERR_NOT_FOUND')
  // The entity itself may read its record; another entity may not.
  assert.equal((await ops.getEntity({ tenant: 'acme', id: dev.entityId, roles: [] }, dev.entityId)).id, dev.entityId)
  assert.equal(await codeOf(ops.getEntity({ tenant: 'acme', id: 'Cother', roles: [] }, dev.entityId)), 'ERR_NOT_FOUND')

  await ops.disableTenant(OPERATOR, 'globex')
  assert.equal(
    await codeOf(ops.registerEntity(globexAdmin, { ...dev, entityId: 'urn:dev:mac:01' })),
    'ERR_FAILED_PRECONDITION',
  )
  assert.equal(await codeOf(ops.disableTenant(OPERATOR, 'nope')), 'ERR_NOT_FOUND')
})

test('AddCredential: certificate chains are validated; symmetric keys must be HMAC keys', async () => {
  const deps = fakeDeps()
  const ops = createAuthnOperations(deps)
  const ca = await createTestCa('acme CA')
  const other = await createTestCa('other CA')
  assert.equal(
    await codeOf(
      ops.createTenant(OPERATOR, {
        tenantId: 'acme',
        displayName: '',
        trustAnchorsPem: [(await issueEntityCert(ca, { cn: 'leaf' })).pem],
        secureEnvironment: '',
      }),
    ),
    'ERR_INVALID_ARGUMENT',
    'a leaf is no trust anchor',
  )
  await ops.createTenant(OPERATOR, {
    tenantId: 'acme',
    displayName: '',
    trustAnchorsPem: [ca.pem],
    secureEnvironment: '',
  })
  const id = '/in-cse'
  await ops.registerEntity(ADMIN, { entityId: id, kind: 'CSE', roles: [], labels: {} })
  const add = (chainPem: string) =>
    ops.addCredential(ADMIN, { entityId: id, credential: { type: 'CERTIFICATE', chainPem } })

  assert.equal(await codeOf(add((await issueEntityCert(other, { uri: id, cn: 'x' })).pem)), 'ERR_INVALID_ARGUMENT')
  assert.equal(await codeOf(add((await issueEntityCert(ca, { uri: '/mn-cse', cn: id })).pem)), 'ERR_INVALID_ARGUMENT')
  assert.equal(
    await codeOf(add('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')),
    'ERR_INVALID_ARGUMENT',
  )
  assert.equal(await codeOf(add('x'.repeat(17 * 1024))), 'ERR_INVALID_ARGUMENT')
  const notAfter = new Date(Date.now() + 86_400_000)
  const byCn = await issueEntityCert(ca, { cn: id, notAfter })
  const ok = await ops.addCredential(ADMIN, {
    entityId: id,
    notAfter: new Date(Date.now() + 10 * 86_400_000),
    credential: { type: 'CERTIFICATE', chainPem: byCn.pem },
  })
  assert.equal(ok.credential.type, 'CERTIFICATE')
  assert.equal(
    Date.parse(ok.credential.notAfter as string),
    Math.floor(notAfter.getTime() / 1000) * 1000,
    'capped by the certificate',
  )
  assert.equal(
    await codeOf(
      ops.addCredential(ADMIN, {
        entityId: id,
        credentialId: ok.credential.id,
        credential: { type: 'CERTIFICATE', chainPem: byCn.pem },
      }),
    ),
    'ERR_ALREADY_EXISTS',
  )

  await deps.kms.createKey('acme', {
    keyId: 'sig',
    algorithm: 'EC_P256_SIGN',
    exportable: false,
    purpose: '',
    labels: {},
    secureEnvironment: '',
  })
  const sym = (keyId: string) =>
    ops.addCredential(ADMIN, { entityId: id, credential: { type: 'SYMMETRIC', source: { kind: 'kms', keyId } } })
  assert.equal(await codeOf(sym('sig')), 'ERR_INVALID_ARGUMENT')
  assert.equal(await codeOf(sym('missing')), 'ERR_KEY_NOT_FOUND')
  deps.kms.putHmacKey('acme', 'imported-psk', Buffer.alloc(32, 7))
  assert.equal((await sym('imported-psk')).credential.kmsKeyId, 'imported-psk')

  const stored = await ops.getEntity(ADMIN, id)
  assert.equal(stored.credentials.length, 2)
  assert.equal(JSON.stringify(stored).includes('BEGIN PRIVATE'), false)
})
