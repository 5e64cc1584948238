import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { CheckInput } from '../../src/domain/model.ts'
import { admin, authzFixture, cse, policyJson } from './authz-fixture.ts'

test('Explain names the permitting rule, or every rule and why it did not apply', async () => {
  const f = authzFixture()
  await f.ops.putPolicy(admin, { policy: policyJson('acp-1') })
  await f.ops.putPolicy(admin, {
    policy: {
      ...policyJson('acp-2'),
      privileges: {
        accessControlRule: [
          { accessControlOriginators: ['Cae-w'], accessControlOperations: 4 },
          { accessControlOriginators: ['Cae-w'], accessControlOperations: 8, accessControlAuthenticationFlag: true },
        ],
      },
    },
  })
  const input = (extra: Partial<CheckInput>): CheckInput => ({
    originator: 'Cae-w',
    operation: 'delete',
    targetPolicyIds: ['acp-1', 'acp-2', 'acp-gone'],
    authenticated: false,
    ...extra,
  })
  const denied = await f.ops.explain(cse, input({}))
  assert.equal(denied.decision, 'deny')
  assert.equal(denied.matched, undefined)
  assert.deepEqual(denied.reasons, [
    'policy acp-1 privileges[0]: operation not in accessControlOperations',
    'policy acp-2 privileges[0]: operation not in accessControlOperations',
    'policy acp-2 privileges[1]: accessControlAuthenticationFlag requires an authenticated originator',
    'policy acp-gone: not found',
    'deny: no applicable rule permits (3 rules considered)',
  ])
  const permitted = await f.ops.explain(cse, input({ authenticated: true }))
  assert.deepEqual(permitted.matched, { policyId: 'acp-2', attribute: 'privileges', ruleIndex: 1 })
  assert.equal(permitted.reasons.at(-1), 'permitted by policy acp-2 privileges[1]')
  // Same answer as Check, audited as Explain.
  assert.deepEqual(await f.ops.check(cse, input({ authenticated: true })), {
    decision: permitted.decision,
    matched: permitted.matched,
  })
  assert.ok(f.audit.some((e) => e.action === 'authz.Explain' && e.result === 'denied'))
})
