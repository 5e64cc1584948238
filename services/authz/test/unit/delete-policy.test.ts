import { test } from 'node:test'
import assert from 'node:assert/strict'
import { admin, authzFixture, cse, otherAdmin, owner, policyJson, stranger } from './authz-fixture.ts'

test('DeletePolicy: DELETE in selfPrivileges or admin; afterwards the id grants nothing', async () => {
  const f = authzFixture()
  const { policy } = await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  const read = () =>
    f.ops.check(cse, {
      originator: 'Cae-reader',
      operation: 'retrieve',
      targetPolicyIds: ['acp-1'],
      authenticated: true,
    })
  assert.equal((await read()).decision, 'permit')
  await assert.rejects(f.ops.deletePolicy(stranger, 'acp-1'), { code: 'ERR_PERMISSION_DENIED' })
  await assert.rejects(f.ops.deletePolicy(otherAdmin, 'acp-1'), { code: 'ERR_NOT_FOUND' })
  await assert.rejects(f.ops.deletePolicy(owner, 'acp-1', policy.revision + 1), { code: 'ERR_REVISION_CONFLICT' })
  await assert.rejects(f.ops.deletePolicy(owner, 'acp-1', 0), { code: 'ERR_INVALID_ARGUMENT' })
  assert.ok(await f.store.get('acme', 'acp-1'), 'refused deletes change nothing')
  await f.ops.deletePolicy(owner, 'acp-1', policy.revision)
  assert.equal(await f.store.get('acme', 'acp-1'), undefined)
  assert.equal((await read()).decision, 'deny')
  await assert.rejects(f.ops.deletePolicy(admin, 'acp-1'), { code: 'ERR_NOT_FOUND' })
  const attempts = f.audit.filter((e) => e.action === 'authz.DeletePolicy' && e.details?.['phase'] === 'attempt')
  assert.equal(attempts.length, 6, 'every delete writes its attempt record first')
})

test('DeletePolicy: nothing is deleted while the audit log is down', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  f.auditDown = true
  await assert.rejects(f.ops.deletePolicy(admin, 'acp-1'), { code: 'ERR_AUDIT_UNAVAILABLE' })
  assert.ok(await f.store.get('acme', 'acp-1'))
})
