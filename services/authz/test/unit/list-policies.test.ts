import { test } from 'node:test'
import assert from 'node:assert/strict'
import { admin, authzFixture, otherAdmin, owner, policyJson } from './authz-fixture.ts'

test('ListPolicies: admins page through all; others see what DISCOVERY in selfPrivileges allows', async () => {
  const f = authzFixture()
  const discoverable = [{ accessControlOriginators: ['owner'], accessControlOperations: 32 }]
  const retrieveOnly = [{ accessControlOriginators: ['owner'], accessControlOperations: 2 }]
  for (let i = 1; i <= 7; i++) {
    const id = `acp-${i}`
    await f.ops.putPolicy(admin, { policy: policyJson(id, 'x', i % 2 === 1 ? discoverable : retrieveOnly) })
  }
  await f.ops.putPolicy(otherAdmin, { policy: policyJson('acp-globex') })

  const ids: string[] = []
  let token: string | undefined
  do {
    const page = await f.ops.listPolicies(admin, { pageSize: 3, ...(token === undefined ? {} : { pageToken: token }) })
    assert.ok(page.policies.length <= 3)
    ids.push(...page.policies.map((p) => p.value.policy.id))
    token = page.nextPageToken
  } while (token !== undefined)
  assert.deepEqual(ids, ['acp-1', 'acp-2', 'acp-3', 'acp-4', 'acp-5', 'acp-6', 'acp-7'])

  const first = await f.ops.listPolicies(owner, { pageSize: 2 })
  assert.deepEqual(
    first.policies.map((p) => p.value.policy.id),
    ['acp-1', 'acp-3'],
  )
  const rest = await f.ops.listPolicies(owner, { pageSize: 2, pageToken: first.nextPageToken ?? '' })
  assert.deepEqual(
    rest.policies.map((p) => p.value.policy.id),
    ['acp-5', 'acp-7'],
  )
  assert.equal(rest.nextPageToken, undefined)
  await assert.rejects(f.ops.listPolicies(admin, { pageSize: -1 }), { code: 'ERR_INVALID_ARGUMENT' })
})
