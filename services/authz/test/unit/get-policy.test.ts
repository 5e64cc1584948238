import { test } from 'node:test'
import assert from 'node:assert/strict'
import { admin, authzFixture, otherAdmin, owner, policyJson, stranger } from './authz-fixture.ts'

test('GetPolicy: admins and RETRIEVE in selfPrivileges; another tenant gets NOT_FOUND', async () => {
  const f = authzFixture()
  const { policy } = await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  assert.deepEqual(await f.ops.getPolicy(admin, 'acp-1'), policy)
  assert.equal((await f.ops.getPolicy(owner, 'acp-1')).revision, policy.revision)
  await assert.rejects(f.ops.getPolicy(stranger, 'acp-1'), { code: 'ERR_PERMISSION_DENIED' })
  await assert.rejects(f.ops.getPolicy(otherAdmin, 'acp-1'), { code: 'ERR_NOT_FOUND' })
  await assert.rejects(f.ops.getPolicy(admin, 'acp-404'), { code: 'ERR_NOT_FOUND' })
  await assert.rejects(f.ops.getPolicy(admin, ''), { code: 'ERR_INVALID_ARGUMENT' })
  const denied = f.audit.filter((e) => e.action === 'authz.GetPolicy' && e.result === 'denied')
  assert.deepEqual(
    denied.map((e) => [e.principal, e.code]),
    [
      ['stranger', 'ERR_PERMISSION_DENIED'],
      ['ops', 'ERR_NOT_FOUND'],
      ['ops', 'ERR_NOT_FOUND'],
    ],
  )
})

test('GetPolicy: RETRIEVE is needed, UPDATE alone is not enough', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, {
    policy: policyJson('acp-1', 'x', [{ accessControlOriginators: ['owner'], accessControlOperations: 4 }]),
  })
  await assert.rejects(f.ops.getPolicy(owner, 'acp-1'), { code: 'ERR_PERMISSION_DENIED' })
})
