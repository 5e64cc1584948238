/**
 * The PolicyStore + DecisionIndex contract (domain/ports.ts), run against every adapter: the
 * in-memory fake and the JetStream KV store.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decide, type AccessControlPolicy } from '@m2msec/acp'
import type { PolicyRecord } from '../../src/domain/model.ts'
import type { DecisionIndex, PolicyStore } from '../../src/domain/ports.ts'

/** A policy whose privileges let `reader` RETRIEVE and whose selfPrivileges let `owner` do everything. */
export function samplePolicy(id: string, reader = 'Cae-reader', owner = 'owner'): AccessControlPolicy {
  return {
    id,
    privileges: { accessControlRule: [{ accessControlOriginators: [reader], accessControlOperations: 2 }] },
    selfPrivileges: { accessControlRule: [{ accessControlOriginators: [owner], accessControlOperations: 63 }] },
  }
}

export function sampleRecord(tenant: string, policy: AccessControlPolicy): PolicyRecord {
  const at = '2026-01-01T00:00:00.000Z'
  return { tenant, policy, createdAt: at, updatedAt: at, createdBy: 'admin', updatedBy: 'admin' }
}

/** Whether `originator` may RETRIEVE through `policyId` in the tenant's index. */
export function permits(index: DecisionIndex, tenant: string, policyId: string, originator: string): boolean {
  return (
    decide(index.forTenant(tenant), {
      originator,
      operation: 'retrieve',
      targetPolicyIds: [policyId],
      authenticated: true,
      context: { time: new Date() },
    }).decision === 'permit'
  )
}

export function runPolicyStoreContract(name: string, make: () => Promise<PolicyStore & DecisionIndex>): void {
  test(`${name}: PolicyStore and DecisionIndex contract`, async (t) => {
    const store = await make()
    await t.test('create, get, tenant isolation, and the index follows at once', async () => {
      const rev = await store.create(sampleRecord('t1', samplePolicy('acp-1')))
      assert.ok(rev > 0)
      const got = await store.get('t1', 'acp-1')
      assert.equal(got?.value.policy.id, 'acp-1')
      assert.equal(got?.revision, rev)
      assert.equal(await store.get('t2', 'acp-1'), undefined)
      await assert.rejects(store.create(sampleRecord('t1', samplePolicy('acp-1'))), { code: 'ERR_ALREADY_EXISTS' })
      assert.equal(permits(store, 't1', 'acp-1', 'Cae-reader'), true)
      assert.equal(permits(store, 't2', 'acp-1', 'Cae-reader'), false, 'another tenant never sees the policy')
      assert.equal(store.forTenant('t2').get('acp-1'), undefined)
    })
    await t.test('update is checked by revision and the index follows at once', async () => {
      const cur = await store.get('t1', 'acp-1')
      assert.ok(cur)
      const next = await store.update(sampleRecord('t1', samplePolicy('acp-1', 'Cae-other')), cur.revision)
      assert.ok(next > cur.revision)
      await assert.rejects(store.update(sampleRecord('t1', samplePolicy('acp-1', 'Cae-lost')), cur.revision), {
        code: 'ERR_REVISION_CONFLICT',
      })
      assert.equal(permits(store, 't1', 'acp-1', 'Cae-reader'), false)
      assert.equal(permits(store, 't1', 'acp-1', 'Cae-other'), true)
    })
    await t.test('delete is checked by revision and the index follows at once', async () => {
      const cur = await store.get('t1', 'acp-1')
      assert.ok(cur)
      await assert.rejects(store.delete('t1', 'acp-1', cur.revision - 1), { code: 'ERR_REVISION_CONFLICT' })
      await store.delete('t1', 'acp-1', cur.revision)
      assert.equal(await store.get('t1', 'acp-1'), undefined)
      assert.equal(permits(store, 't1', 'acp-1', 'Cae-other'), false)
      await assert.rejects(store.delete('t1', 'acp-1', cur.revision), { code: 'ERR_REVISION_CONFLICT' })
      // A deleted id can be created again.
      await store.create(sampleRecord('t1', samplePolicy('acp-1')))
      assert.equal(permits(store, 't1', 'acp-1', 'Cae-reader'), true)
    })
    await t.test('ids in oneM2M forms and tenants with dots stay distinct', async () => {
      for (const [tenant, id] of [
        ['a.b', '/cse1/acp.1'],
        ['a', 'b./cse1/acp.1'],
        ['a.b', '//sp.example/cse1/acp-x'],
      ] as const) {
        await store.create(sampleRecord(tenant, samplePolicy(id, `reader-${tenant}`)))
      }
      assert.equal((await store.get('a.b', '/cse1/acp.1'))?.value.tenant, 'a.b')
      assert.equal((await store.get('a', 'b./cse1/acp.1'))?.value.tenant, 'a')
      assert.equal(await store.get('a', '/cse1/acp.1'), undefined)
      assert.equal(permits(store, 'a.b', '//sp.example/cse1/acp-x', 'reader-a.b'), true)
      assert.equal(permits(store, 'a', 'b./cse1/acp.1', 'reader-a.b'), false)
    })
    await t.test('list pages in id order within one tenant', async () => {
      for (const id of ['p3', 'p1', 'p2', 'p5', 'p4']) await store.create(sampleRecord('lt', samplePolicy(id)))
      await store.create(sampleRecord('other', samplePolicy('p0')))
      const first = await store.list('lt', { limit: 2 })
      assert.deepEqual(
        first.items.map((p) => p.value.policy.id),
        ['p1', 'p2'],
      )
      assert.equal(first.next, 'p2')
      const second = await store.list('lt', { limit: 2, after: 'p2' })
      assert.deepEqual(
        second.items.map((p) => p.value.policy.id),
        ['p3', 'p4'],
      )
      const last = await store.list('lt', { limit: 2, after: 'p4' })
      assert.deepEqual(
        last.items.map((p) => p.value.policy.id),
        ['p5'],
      )
      assert.equal(last.next, undefined)
      assert.ok(last.items.every((p) => p.revision > 0))
    })
  })
}
