/**
 * The KeyStore and SecretStore contracts (domain/ports.ts), run against every adapter:
 * the in-memory fake and the JetStream KV stores.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { KeyStore, SecretStore } from '../../src/domain/ports.ts'
import type { KeyRecord } from '../../src/domain/model.ts'

export function sampleKey(tenant: string, id: string): KeyRecord {
  return {
    tenant,
    id,
    algorithm: 'AES_256_GCM',
    purpose: 'test',
    state: 'ENABLED',
    secureEnvironment: 'software',
    exportable: false,
    primaryVersion: 1,
    versions: [{ version: 1, ref: 'sw1.x', createdAt: '2026-01-01T00:00:00.000Z' }],
    usagePolicy: [{ principals: ['p'], operations: ['ENCRYPT'] }],
    labels: { a: 'b' },
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    createdBy: 'p',
  }
}

export function runKeyStoreContract(name: string, make: () => Promise<KeyStore>): void {
  test(`${name}: KeyStore contract`, async (t) => {
    const store = await make()
    await t.test('create, get, tenant isolation', async () => {
      await store.create(sampleKey('t1', 'k1'))
      assert.equal((await store.get('t1', 'k1'))?.value.id, 'k1')
      assert.equal(await store.get('t2', 'k1'), undefined)
      await assert.rejects(store.create(sampleKey('t1', 'k1')), { code: 'ERR_ALREADY_EXISTS' })
    })
    await t.test('update is checked by revision', async () => {
      const cur = await store.get('t1', 'k1')
      assert.ok(cur)
      const rev = await store.update({ ...cur.value, purpose: 'second' }, cur.revision)
      assert.ok(rev > cur.revision)
      await assert.rejects(store.update({ ...cur.value, purpose: 'lost' }, cur.revision), {
        code: 'ERR_REVISION_CONFLICT',
      })
      assert.equal((await store.get('t1', 'k1'))?.value.purpose, 'second')
    })
    await t.test('ids with unusual characters and tenants stay distinct', async () => {
      await store.create(sampleKey('tenant.with.dots', 'a.b'))
      await store.create(sampleKey('tenant', 'with.dots.a.b'))
      assert.equal((await store.get('tenant.with.dots', 'a.b'))?.value.tenant, 'tenant.with.dots')
      assert.equal((await store.get('tenant', 'with.dots.a.b'))?.value.tenant, 'tenant')
      assert.equal(await store.get('tenant', 'with.dots.a.c'), undefined)
    })
    await t.test('list pages in id order within one tenant', async () => {
      for (const id of ['p3', 'p1', 'p2', 'p5', 'p4']) await store.create(sampleKey('lt', id))
      await store.create(sampleKey('other', 'p0'))
      const first = await store.list('lt', { limit: 2 })
      assert.deepEqual(
        first.items.map((k) => k.id),
        ['p1', 'p2'],
      )
      assert.equal(first.next, 'p2')
      const second = await store.list('lt', { limit: 2, after: 'p2' })
      assert.deepEqual(
        second.items.map((k) => k.id),
        ['p3', 'p4'],
      )
      const last = await store.list('lt', { limit: 2, after: 'p4' })
      assert.deepEqual(
        last.items.map((k) => k.id),
        ['p5'],
      )
      assert.equal(last.next, undefined)
    })
  })
}

export function runSecretStoreContract(name: string, make: () => Promise<SecretStore>): void {
  test(`${name}: SecretStore contract`, async () => {
    const store = await make()
    const s = { tenant: 't', owner: 'o', name: 'n/1', sealed: 'x', keyId: '_storage', createdAt: 'c', updatedAt: 'u' }
    await store.put(s)
    await store.put({ ...s, owner: 'other' })
    await store.put({ ...s, name: 'n/2' })
    assert.deepEqual(await store.get('t', 'o', 'n/1'), s)
    assert.equal(await store.get('t2', 'o', 'n/1'), undefined)
    assert.deepEqual(
      (await store.list('t', 'o', { limit: 10 })).items.map((x) => x.name),
      ['n/1', 'n/2'],
    )
    const page = await store.list('t', 'o', { limit: 1 })
    assert.equal(page.next, 'n/1')
    assert.equal(await store.delete('t', 'o', 'n/1'), true)
    assert.equal(await store.delete('t', 'o', 'n/1'), false)
    assert.equal(await store.get('t', 'o', 'n/1'), undefined)
  })
}
