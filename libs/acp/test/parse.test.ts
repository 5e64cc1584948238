import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { compilePolicies, parsePolicies, parsePolicy, type AccessControlPolicy } from '../src/index.ts'

/** A valid policy in short names, as a CSE stores it; tests break one field at a time. */
function shortPolicy(): Record<string, unknown> {
  return {
    ri: 'acp-1',
    pv: {
      acr: [
        {
          acor: ['//sp.example', '/cse1/C98*', 'grp-1'],
          acop: 63,
          acco: [
            {
              actw: ['* 0-5 2,6,10 * * * *'],
              acip: { ipv4: ['10.125.0.0/16'], ipv6: ['fadf:ddd0::/32'] },
              aclr: { accr: [48.8566, 2.3522, 1000] },
            },
            { aclr: { accc: ['fr', 'DE'] } },
          ],
          acaf: true,
          acod: [{ ty: 3, chty: [4, 23] }],
        },
      ],
    },
    pvs: { acr: [{ acor: ['/cse-admin'], acop: 63 }] },
  }
}

function expectInvalid(input: unknown, path: string): void {
  assert.throws(
    () => parsePolicy(input),
    (err: unknown) => {
      const e = err as { code?: string; details?: { path?: string }; message?: string }
      assert.equal(e.code, 'ERR_INVALID_ARGUMENT')
      assert.equal(e.details?.path, path)
      assert.ok(e.message?.startsWith(path), `message "${e.message}" names ${path}`)
      return true
    },
  )
}

/** Applies `edit` to a fresh short-name policy and returns it. */
function broken(edit: (p: any) => void): unknown {
  const p = shortPolicy()
  edit(p)
  return p
}

describe('parsePolicy: accepted input', () => {
  test('short names are normalized to TS-0004 long names', () => {
    const p = parsePolicy(shortPolicy())
    assert.equal(p.id, 'acp-1')
    const rule = p.privileges.accessControlRule[0]
    assert.ok(rule)
    assert.deepEqual(rule.accessControlOriginators, ['//sp.example', '/cse1/C98*', 'grp-1'])
    assert.equal(rule.accessControlOperations, 63)
    assert.equal(rule.accessControlAuthenticationFlag, true)
    assert.deepEqual(rule.accessControlContexts?.[1]?.accessControlLocationRegion, {
      countryCode: ['FR', 'DE'],
    })
    assert.deepEqual(rule.accessControlObjectDetails, [{ resourceType: 3, childResourceType: [4, 23] }])
    assert.equal(p.selfPrivileges.accessControlRule.length, 1)
  })
  test('long names are accepted, and the result parses to itself', () => {
    const long: AccessControlPolicy = parsePolicy(shortPolicy())
    assert.deepEqual(parsePolicy(JSON.parse(JSON.stringify(long))), long)
  })
  test('an empty privileges rule set is legal (m2m:setOfAcrs is 0..n)', () => {
    const p = parsePolicy(broken((x) => (x.pv = { acr: [] })))
    assert.equal(p.privileges.accessControlRule.length, 0)
    assert.equal(parsePolicy(broken((x) => (x.pv = {}))).privileges.accessControlRule.length, 0)
  })
  test('a numeric specializationType (mgmtDefinition) is kept as a string', () => {
    const p = parsePolicy(broken((x) => (x.pv.acr[0].acod = [{ ty: 14, spty: 1001, chty: [13] }])))
    assert.equal(p.privileges.accessControlRule[0]?.accessControlObjectDetails?.[0]?.specializationType, '1001')
  })
})

describe('parsePolicy: malformed input names the field and accepts nothing', () => {
  const cases: Array<[string, (p: any) => void, string]> = [
    ['malformed crontab', (p) => (p.pv.acr[0].acco[0].actw = ['* 0-5 2,6,10 * * *']), 'pv.acr[0].acco[0].actw[0]'],
    ['crontab out of range', (p) => (p.pv.acr[0].acco[0].actw = ['* * 25 * * * *']), 'pv.acr[0].acco[0].actw[0]'],
    ['crontab not a string', (p) => (p.pv.acr[0].acco[0].actw = [5]), 'pv.acr[0].acco[0].actw[0]'],
    [
      'malformed IPv4 CIDR',
      (p) => (p.pv.acr[0].acco[0].acip.ipv4 = ['10.0.0.0/8', '10.125.0.0/33']),
      'pv.acr[0].acco[0].acip.ipv4[1]',
    ],
    [
      'IPv4 CIDR with host bits',
      (p) => (p.pv.acr[0].acco[0].acip.ipv4 = ['10.125.1.0/16']),
      'pv.acr[0].acco[0].acip.ipv4[0]',
    ],
    [
      'IPv6 block in the IPv4 list',
      (p) => (p.pv.acr[0].acco[0].acip.ipv4 = ['::/0']),
      'pv.acr[0].acco[0].acip.ipv4[0]',
    ],
    [
      'malformed IPv6 CIDR',
      (p) => (p.pv.acr[0].acco[0].acip.ipv6 = ['fadf::ddd0::/32']),
      'pv.acr[0].acco[0].acip.ipv6[0]',
    ],
    ['acip without lists', (p) => (p.pv.acr[0].acco[0].acip = {}), 'pv.acr[0].acco[0].acip'],
    ['bit mask 0', (p) => (p.pv.acr[0].acop = 0), 'pv.acr[0].acop'],
    ['bit mask 64', (p) => (p.pv.acr[0].acop = 64), 'pv.acr[0].acop'],
    ['bit mask negative', (p) => (p.pv.acr[0].acop = -1), 'pv.acr[0].acop'],
    ['bit mask fractional', (p) => (p.pv.acr[0].acop = 2.5), 'pv.acr[0].acop'],
    ['bit mask as string', (p) => (p.pv.acr[0].acop = '63'), 'pv.acr[0].acop'],
    ['latitude > 90', (p) => (p.pv.acr[0].acco[0].aclr = { accr: [90.5, 0, 10] }), 'pv.acr[0].acco[0].aclr.accr'],
    ['longitude < -180', (p) => (p.pv.acr[0].acco[0].aclr = { accr: [0, -181, 10] }), 'pv.acr[0].acco[0].aclr.accr'],
    ['negative radius', (p) => (p.pv.acr[0].acco[0].aclr = { accr: [0, 0, -1] }), 'pv.acr[0].acco[0].aclr.accr'],
    ['circle with 2 numbers', (p) => (p.pv.acr[0].acco[0].aclr = { accr: [0, 0] }), 'pv.acr[0].acco[0].aclr.accr'],
    [
      'circle with NaN',
      (p) => (p.pv.acr[0].acco[0].aclr = { accr: [0, Number.NaN, 1] }),
      'pv.acr[0].acco[0].aclr.accr',
    ],
    [
      'both circle and country (xs:choice)',
      (p) => (p.pv.acr[0].acco[0].aclr = { accr: [0, 0, 1], accc: ['FR'] }),
      'pv.acr[0].acco[0].aclr',
    ],
    ['neither circle nor country', (p) => (p.pv.acr[0].acco[0].aclr = {}), 'pv.acr[0].acco[0].aclr'],
    ['3-letter country code', (p) => (p.pv.acr[0].acco[1].aclr = { accc: ['FRA'] }), 'pv.acr[0].acco[1].aclr.accc[0]'],
    ['missing originators', (p) => delete p.pv.acr[0].acor, 'pv.acr[0]'],
    ['empty originators', (p) => (p.pv.acr[0].acor = []), 'pv.acr[0].acor'],
    ['empty originator string', (p) => (p.pv.acr[0].acor = ['']), 'pv.acr[0].acor[0]'],
    ['wildcard in an SP domain', (p) => (p.pv.acr[0].acor = ['//*.example']), 'pv.acr[0].acor[0]'],
    ['missing operations', (p) => delete p.pv.acr[0].acop, 'pv.acr[0]'],
    ['auth flag not boolean', (p) => (p.pv.acr[0].acaf = 'true'), 'pv.acr[0].acaf'],
    ['object details without childResourceType', (p) => (p.pv.acr[0].acod = [{ ty: 3 }]), 'pv.acr[0].acod[0]'],
    ['child resource type not a number', (p) => (p.pv.acr[0].acod = [{ chty: ['cin'] }]), 'pv.acr[0].acod[0].chty[0]'],
    ['empty window list', (p) => (p.pv.acr[0].acco[0].actw = []), 'pv.acr[0].acco[0].actw'],
    ['empty context list', (p) => (p.pv.acr[0].acco = []), 'pv.acr[0].acco'],
    ['unknown element in a rule (Rel-4 aca)', (p) => (p.pv.acr[0].aca = []), 'pv.acr[0].aca'],
    ['unknown element in a context', (p) => (p.pv.acr[0].acco[0].acul = 1), 'pv.acr[0].acco[0].acul'],
    [
      'long and short name together',
      (p) => (p.pv.acr[0].accessControlOperations = 2),
      'pv.acr[0].accessControlOperations',
    ],
    ['empty selfPrivileges ("must contain at least one rule")', (p) => (p.pvs = { acr: [] }), 'pvs.acr'],
    ['missing selfPrivileges', (p) => delete p.pvs, 'policy'],
    ['missing id', (p) => delete p.ri, 'policy'],
    ['rule is not an object', (p) => (p.pv.acr[0] = 'rule'), 'pv.acr[0]'],
    ['setOfAcrs is a list', (p) => (p.pv = []), 'pv'],
  ]
  for (const [name, edit, path] of cases) {
    test(`${name} → ${path}`, () => expectInvalid(broken(edit), path))
  }
  test('not an object', () => expectInvalid([], ''))
})

describe('lists of policies', () => {
  test('duplicate ids are rejected', () => {
    const a = shortPolicy()
    assert.throws(() => parsePolicies([a, shortPolicy()]), { code: 'ERR_INVALID_ARGUMENT' })
    const long = parsePolicy(a)
    assert.throws(() => compilePolicies([long, long]), { code: 'ERR_INVALID_ARGUMENT' })
  })
  test('compilePolicies re-validates typed input and names the policy', () => {
    const good = parsePolicy(shortPolicy())
    const bad = {
      ...good,
      id: 'acp-2',
      privileges: {
        accessControlRule: [
          {
            accessControlOriginators: ['all'],
            accessControlOperations: 2,
            accessControlContexts: [{ accessControlWindow: ['bad'] }],
          },
        ],
      },
    } as AccessControlPolicy
    assert.throws(
      () => compilePolicies([good, bad]),
      (err: unknown) => {
        const e = err as { code?: string; details?: { path?: string } }
        assert.equal(e.code, 'ERR_INVALID_ARGUMENT')
        assert.equal(
          e.details?.path,
          'policies[1].privileges.accessControlRule[0].accessControlContexts[0].accessControlWindow[0]',
        )
        return true
      },
    )
  })
  test('a failed upsert leaves the index unchanged', () => {
    const index = compilePolicies([parsePolicy(shortPolicy())])
    const before = index.get('acp-1')
    const invalid: AccessControlPolicy = {
      id: 'acp-1',
      privileges: {
        accessControlRule: [{ accessControlOriginators: [], accessControlOperations: 1 }],
      },
      selfPrivileges: { accessControlRule: [] },
    }
    assert.throws(() => index.upsert(invalid), { code: 'ERR_INVALID_ARGUMENT' })
    assert.equal(index.get('acp-1'), before)
    assert.equal(index.size, 1)
  })
})
