/** oneM2M token claims (TS-0003 §7.3.2.3–§7.3.2.6) and token permissions in the decision. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  checkTokenClaims,
  compilePolicies,
  decide,
  parseTokenClaims,
  tokenGrants,
  tokenPermissionsClaim,
  type AccessRequest,
  type TokenExpectations,
} from '../src/index.ts'

const NOW = new Date('2025-03-04T02:03:04Z')
const nowS = NOW.getTime() / 1000
const ISSUER = '//sp.example/das-ae'
const CSE = '//sp.example/in-cse'
const HOLDER = '//sp.example/in-cse/Cae1'
const TARGET = '//sp.example/in-cse/cnt-1'

function payload(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tkvr: '1',
    jti: 'tok-1',
    iss: ISSUER,
    azp: HOLDER,
    nbf: nowS - 60,
    exp: nowS + 60,
    aud: [CSE],
    tkps: {
      pm: [{ ris: [TARGET], pv: { acr: [{ acor: [HOLDER], acop: 4 }] } }, { rids: ['R-reader'] }],
    },
    ...over,
  }
}

const EXPECT: TokenExpectations = {
  trustedIssuers: [ISSUER],
  audience: CSE,
  holder: HOLDER,
  now: NOW,
}

function rejects(p: unknown, code: string, claim: string, expect: TokenExpectations = EXPECT): void {
  assert.throws(
    () => checkTokenClaims(p, expect),
    (err: unknown) => {
      const e = err as { code?: string; details?: { claim?: string }; message?: string }
      assert.equal(e.code, code)
      assert.equal(e.details?.claim, claim)
      // Messages name the claim, never echo token content.
      assert.ok(!(e.message ?? '').includes(ISSUER) && !(e.message ?? '').includes(HOLDER), e.message)
      return true
    },
  )
}

describe('token claim set and JWT mapping (table 7.3.2.6.2-1)', () => {
  test('a valid token maps tkvr/jti/iss/azp/nbf/exp/aud/tkps to the claim set', () => {
    const t = checkTokenClaims(payload({ tknm: 'reader token', tkex: 'x' }), EXPECT)
    assert.equal(t.version, '1')
    assert.equal(t.tokenId, 'tok-1')
    assert.equal(t.issuer, ISSUER)
    assert.deepEqual(t.holders, [HOLDER])
    assert.equal(t.notBefore.getTime(), (nowS - 60) * 1000)
    assert.equal(t.notAfter.getTime(), (nowS + 60) * 1000)
    assert.equal(t.tokenName, 'reader token')
    assert.equal(t.extension, 'x')
    assert.deepEqual(t.audience, [CSE])
    assert.equal(t.permissions.length, 2)
    assert.deepEqual(t.permissions[0]?.resourceIds, [TARGET])
    assert.deepEqual(t.permissions[0]?.privileges?.[0]?.accessControlOriginators, [HOLDER])
    assert.deepEqual(t.permissions[1]?.roleIds, ['R-reader'])
  })
  test('tkps may be long-named or a bare list of permissions', () => {
    const long = parseTokenClaims(
      payload({
        tkps: {
          permission: [
            {
              resourceIDs: [TARGET],
              privileges: {
                accessControlRule: [{ accessControlOriginators: ['all'], accessControlOperations: 2 }],
              },
            },
          ],
        },
      }),
    )
    assert.equal(long.permissions[0]?.privileges?.length, 1)
    const bare = parseTokenClaims(payload({ tkps: [{ rids: ['R-1'] }] }))
    assert.deepEqual(bare.permissions[0]?.roleIds, ['R-1'])
  })
  for (const claim of ['tkvr', 'jti', 'iss', 'azp', 'nbf', 'exp']) {
    test(`"${claim}" is mandatory (m2m:tokenClaimSet multiplicity 1)`, () => {
      const p = payload()
      delete p[claim]
      rejects(p, 'ERR_TOKEN_INVALID', claim)
    })
  }
  test('nbf/exp must be NumericDate, not ISO 8601 strings ("shall be mapped to JWT Claim nbf which uses NumericDate")', () => {
    rejects(payload({ nbf: '20250304T020304' }), 'ERR_TOKEN_INVALID', 'nbf')
  })
  test('exp not after nbf is malformed', () => {
    rejects(payload({ nbf: nowS, exp: nowS }), 'ERR_TOKEN_INVALID', 'exp')
  })
  test('a payload that is not an object is rejected', () => {
    rejects('token', 'ERR_TOKEN_INVALID', 'payload')
    rejects(null, 'ERR_TOKEN_INVALID', 'payload')
  })
  test('"If the privileges element is present, then [resourceIDs] shall be present"', () => {
    rejects(payload({ tkps: { pm: [{ pv: { acr: [{ acor: ['all'], acop: 2 }] } }] } }), 'ERR_TOKEN_INVALID', 'tkps')
  })
  test('malformed rules inside tkps are rejected like policy rules', () => {
    rejects(
      payload({
        tkps: {
          pm: [{ ris: [TARGET], pv: { acr: [{ acor: ['all'], acop: 2, acco: [{ actw: ['bad'] }] }] } }],
        },
      }),
      'ERR_TOKEN_INVALID',
      'tkps',
    )
    rejects(payload({ tkps: { pm: [{ ris: [TARGET], bogus: 1 }] } }), 'ERR_TOKEN_INVALID', 'tkps')
  })
})

describe('token verification by the hosting CSE (§7.3.2.3 step 7.1.3, §7.3.2.5)', () => {
  test('"The issuer parameter in the Token shall exactly match the identity of the DAS Server"', () => {
    rejects(payload({ iss: '//sp.example/das-ae2' }), 'ERR_TOKEN_INVALID', 'iss')
    rejects(payload({ iss: '//sp.example/DAS-AE' }), 'ERR_TOKEN_INVALID', 'iss')
  })
  test('"The holder parameter in the Token shall exactly match the Absolute CSE-ID or AE-ID of the Originator"', () => {
    rejects(payload({ azp: '//sp.example/in-cse/Cae2' }), 'ERR_TOKEN_INVALID', 'azp')
    rejects(payload({ azp: '/in-cse/Cae1' }), 'ERR_TOKEN_INVALID', 'azp')
  })
  test('a holder list (direct profile: "may contain other CSE-IDs and AE-IDs") matches any listed id', () => {
    assert.ok(checkTokenClaims(payload({ azp: ['//sp.example/in-cse/Cx', HOLDER] }), EXPECT))
  })
  test('"The HCSE\'s CSE-ID shall match one of the Absolute CSE-IDs (optionally including wildcards) in the audience"', () => {
    rejects(payload({ aud: ['//sp.example/mn-cse'] }), 'ERR_TOKEN_INVALID', 'aud')
    assert.ok(checkTokenClaims(payload({ aud: ['//sp.example/mn-cse', '//*/in-cse'] }), EXPECT))
    assert.ok(checkTokenClaims(payload({ aud: CSE }), EXPECT)) // RFC 7519 single StringOrURI
    rejects(payload({ aud: ['//*/in'] }), 'ERR_TOKEN_INVALID', 'aud')
  })
  test('"in case the audience data field is not empty": no audience is accepted unless required', () => {
    const p = payload()
    delete p['aud']
    assert.ok(checkTokenClaims(p, EXPECT))
    assert.ok(checkTokenClaims(payload({ aud: [] }), EXPECT))
    rejects(p, 'ERR_TOKEN_INVALID', 'aud', { ...EXPECT, requireAudience: true })
  })
  test('"comparing the current time to the notBefore and notAfter parameter": nbf <= now < exp', () => {
    assert.ok(checkTokenClaims(payload({ nbf: nowS, exp: nowS + 1 }), EXPECT))
    rejects(payload({ nbf: nowS + 1, exp: nowS + 60 }), 'ERR_TOKEN_INVALID', 'nbf')
    rejects(payload({ nbf: nowS - 60, exp: nowS }), 'ERR_TOKEN_EXPIRED', 'exp')
    rejects(payload({ nbf: nowS - 60, exp: nowS - 1 }), 'ERR_TOKEN_EXPIRED', 'exp')
  })
  test('a clock tolerance widens both ends', () => {
    const tolerant = { ...EXPECT, clockToleranceSeconds: 5 }
    assert.ok(checkTokenClaims(payload({ nbf: nowS + 4, exp: nowS + 60 }), tolerant))
    assert.ok(checkTokenClaims(payload({ nbf: nowS - 60, exp: nowS - 4 }), tolerant))
    rejects(payload({ nbf: nowS - 60, exp: nowS - 5 }), 'ERR_TOKEN_EXPIRED', 'exp', tolerant)
  })
})

describe('token permissions in the access decision (§7.3.2.5)', () => {
  const policies = [
    {
      id: 'acp',
      privileges: {
        accessControlRule: [{ accessControlOriginators: ['R-reader'], accessControlOperations: 2 }],
      },
      selfPrivileges: {
        accessControlRule: [{ accessControlOriginators: ['/in-cse/admin'], accessControlOperations: 63 }],
      },
    },
  ]
  const index = compilePolicies(policies)
  const base = (over: Partial<AccessRequest> = {}): AccessRequest => ({
    originator: HOLDER,
    operation: 'retrieve',
    targetPolicyIds: ['acp'],
    authenticated: true,
    context: { time: NOW },
    ...over,
  })

  test('without the token the originator has no role: deny', () => {
    assert.equal(decide(index, base()).decision, 'deny')
  })
  test('"If the roleIDs element is present, the Role-IDs held in this element shall be used as valid roles"', () => {
    const token = checkTokenClaims(payload(), EXPECT)
    const d = decide(index, base({ tokenGrants: tokenGrants(token, TARGET) }))
    assert.equal(d.decision, 'permit')
    assert.deepEqual(d.matched, {
      source: 'policy',
      policyId: 'acp',
      attribute: 'privileges',
      ruleIndex: 0,
      tokenId: 'tok-1',
      permissionIndex: 1,
    })
  })
  test('"If the privileges element is present, the access control rules held in this element shall be used as applicable access control policy"', () => {
    const token = checkTokenClaims(payload(), EXPECT)
    const d = decide(index, base({ operation: 'update', tokenGrants: tokenGrants(token, TARGET) }))
    assert.equal(d.decision, 'permit')
    assert.deepEqual(d.matched, {
      source: 'token',
      tokenId: 'tok-1',
      permissionIndex: 0,
      ruleIndex: 0,
    })
  })
  test('"the authorization information ... shall apply only to the resources specified by [resourceIDs]"', () => {
    const token = checkTokenClaims(payload(), EXPECT)
    const grants = tokenGrants(token, '//sp.example/in-cse/cnt-2')
    assert.deepEqual(
      grants.map((g) => g.permissionIndex),
      [1],
    )
    assert.equal(decide(index, base({ operation: 'update', tokenGrants: grants })).decision, 'deny')
    assert.deepEqual(
      tokenGrants(token).map((g) => g.permissionIndex),
      [1],
    )
  })
  test('"For each permission in the list of the permissions the evaluation shall be done": roles of one permission do not combine with rules of another', () => {
    const token = checkTokenClaims(
      payload({
        tkps: {
          pm: [{ rids: ['R-writer'] }, { ris: [TARGET], pv: { acr: [{ acor: ['R-writer'], acop: 4 }] } }],
        },
      }),
      EXPECT,
    )
    const d = decide(index, base({ operation: 'update', tokenGrants: tokenGrants(token, TARGET) }), { explain: true })
    assert.equal(d.decision, 'deny', d.reasons.join('\n'))
  })
  test('token privileges keep their contexts (a window that is closed denies)', () => {
    const token = checkTokenClaims(
      payload({
        tkps: [
          {
            ris: [TARGET],
            pv: { acr: [{ acor: [HOLDER], acop: 4, acco: [{ actw: ['* * 9 * * * *'] }] }] },
          },
        ],
      }),
      EXPECT,
    )
    assert.equal(decide(index, base({ operation: 'update', tokenGrants: tokenGrants(token, TARGET) })).decision, 'deny')
  })
})

describe('resource ids in other forms and the tkps claim a DAS writes', () => {
  test('with host, resourceIDs and the target compare in absolute form; without, only exactly', () => {
    const token = checkTokenClaims(payload(), EXPECT)
    const host = { spId: 'sp.example', cseId: 'in-cse' }
    for (const target of ['/in-cse/cnt-1', 'cnt-1', TARGET]) {
      assert.deepEqual(
        tokenGrants(token, target, host).map((g) => g.permissionIndex),
        [0, 1],
        target,
      )
    }
    assert.deepEqual(
      tokenGrants(token, '/in-cse/cnt-1').map((g) => g.permissionIndex),
      [1],
    )
    assert.deepEqual(
      tokenGrants(token, '/other-cse/cnt-1', host).map((g) => g.permissionIndex),
      [1],
    )
  })
  test('tokenPermissionsClaim writes short names that parseTokenClaims reads back unchanged', () => {
    const permissions = [
      {
        resourceIds: [TARGET],
        privileges: [
          {
            accessControlOriginators: [HOLDER],
            accessControlOperations: 6,
            accessControlContexts: [
              {
                accessControlWindow: ['* * 2 * * * *'],
                accessControlIpAddresses: { ipv4Addresses: ['10.0.0.0/8'] },
                accessControlLocationRegion: { countryCode: ['DE'] },
              },
            ],
            accessControlAuthenticationFlag: true,
            accessControlObjectDetails: [{ resourceType: 2, childResourceType: [3, 4] }],
          },
        ],
      },
      { roleIds: ['R-1'] },
    ]
    const claim = tokenPermissionsClaim(permissions)
    assert.deepEqual(Object.keys(claim.pm[0] ?? {}), ['ris', 'pv'])
    assert.deepEqual(parseTokenClaims(payload({ tkps: claim })).permissions, permissions)
  })
})
