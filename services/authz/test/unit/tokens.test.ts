/**
 * oneM2M tokens in Check / Explain and IssueToken (TS-0003 §7.3.2.3–§7.3.2.6), on the
 * in-memory store with real ES256 keys (jose): the verification table from the specification
 * text, then bad input, each with its typed error and the failing claim.
 */
import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CompactSign, createLocalJWKSet, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import type { CheckInput } from '../../src/domain/model.ts'
import type { DasDeps, DasSigner } from '../../src/domain/ports.ts'
import { MAX_TOKENS } from '../../src/domain/das.ts'
import { admin, authzFixture, cse, T0, type AuthzFixture } from './authz-fixture.ts'

const ISSUER = '//sp.example/das-ae'
const STRICT_ISSUER = '//sp.example/das-strict'
const OWN_ISSUER = '//sp.example/authz-das'
const OTHER_TENANT_ISSUER = '//sp.example/globex-das'
const CSE_ID = '//sp.example/in-cse'
const HOLDER = '//sp.example/in-cse/Cae1'
const TARGET = '//sp.example/in-cse/cnt-1'
const HOST = { spId: 'sp.example', cseId: 'in-cse' }
const NOW_S = Date.parse(T0) / 1000

let key: CryptoKey
let otherKey: CryptoKey
let ownKey: CryptoKey
let publicKey: CryptoKey
let ownPublicKey: CryptoKey
let das: DasDeps
let f: AuthzFixture

async function publicJwk(k: CryptoKey, kid: string): Promise<JWK> {
  return { ...(await exportJWK(k)), kid, alg: 'ES256' }
}

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tkvr: '1',
    jti: 'tok-1',
    iss: ISSUER,
    azp: HOLDER,
    nbf: NOW_S - 60,
    exp: NOW_S + 600,
    aud: [CSE_ID],
    tkps: {
      pm: [{ ris: [TARGET], pv: { acr: [{ acor: [HOLDER], acop: 4 }] } }, { rids: ['R-reader'] }],
    },
    ...over,
  }
}

async function mint(
  over: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
  signWith: CryptoKey = key,
): Promise<string> {
  const payload = new TextEncoder().encode(JSON.stringify(claims(over)))
  return new CompactSign(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'k1', ...header }).sign(signWith)
}

/** An unsecured JWT (`alg: none`, empty signature), built by hand: jose does not produce one as a JWS. */
function unsecured(): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims())}.`
}

function req(extra: Partial<CheckInput> = {}): CheckInput {
  return {
    originator: HOLDER,
    operation: 'retrieve',
    targetResourceId: TARGET,
    targetPolicyIds: ['acp-roles'],
    authenticated: true,
    host: HOST,
    ...extra,
  }
}

const rolePolicy = {
  id: 'acp-roles',
  privileges: { accessControlRule: [{ accessControlOriginators: ['R-reader'], accessControlOperations: 2 }] },
  selfPrivileges: { accessControlRule: [{ accessControlOriginators: ['owner'], accessControlOperations: 63 }] },
}

/** A DAS signer over a local key (the KMS-backed one is tested over gRPC in test/grpc/das.test.ts). */
function localSigner(): DasSigner {
  let n = 0
  return {
    identity: (tenant) => (tenant === 'acme' ? { issuer: OWN_ISSUER, maxLifetimeSec: 3600 } : undefined),
    newTokenId: () => `own-${++n}`,
    sign: (_tenant, header, payload) =>
      new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
        .setProtectedHeader({ ...header, alg: 'ES256', kid: 'own/1' })
        .sign(ownKey),
  }
}

before(async () => {
  ;({ privateKey: key, publicKey } = await generateKeyPair('ES256'))
  otherKey = (await generateKeyPair('ES256')).privateKey
  ;({ privateKey: ownKey, publicKey: ownPublicKey } = await generateKeyPair('ES256'))
  const jwks = createLocalJWKSet({ keys: [await publicJwk(publicKey, 'k1')] })
  const ownJwks = createLocalJWKSet({ keys: [await publicJwk(ownPublicKey, 'own/1')] })
  const issuers = new Map([
    [
      'acme',
      new Map([
        [ISSUER, { issuer: ISSUER, algorithms: ['ES256'], requireAudience: false, key: jwks }],
        [STRICT_ISSUER, { issuer: STRICT_ISSUER, algorithms: ['ES256'], requireAudience: true, key: jwks }],
        [OWN_ISSUER, { issuer: OWN_ISSUER, algorithms: ['ES256'], requireAudience: true, key: ownJwks }],
      ]),
    ],
    [
      'globex',
      new Map([
        [
          OTHER_TENANT_ISSUER,
          { issuer: OTHER_TENANT_ISSUER, algorithms: ['ES256'], requireAudience: false, key: jwks },
        ],
      ]),
    ],
  ])
  das = {
    trust: { issuer: (tenant, iss) => issuers.get(tenant)?.get(iss) },
    signer: localSigner(),
    settings: { clockToleranceSec: 0, maxTokenBytes: 4096 },
  }
  f = authzFixture(0, das)
  await f.ops.putPolicy(admin, { policy: rolePolicy })
})

describe('Check with oneM2M tokens (§7.3.2.3, §7.3.2.5)', () => {
  test('"the Role-IDs held in [roleIDs] shall be used as valid roles": the policy rule matches through the token', async () => {
    assert.equal((await f.ops.check(cse, req())).decision, 'deny')
    const r = await f.ops.check(cse, req({ tokens: [await mint()] }))
    assert.deepEqual(r, {
      decision: 'permit',
      matched: { policyId: 'acp-roles', attribute: 'privileges', ruleIndex: 0, tokenId: 'tok-1', permissionIndex: 1 },
    })
  })
  test('"the access control rules held in [privileges] shall be used": UPDATE permitted by the token rule', async () => {
    const r = await f.ops.check(cse, req({ operation: 'update', tokens: [await mint()] }))
    assert.deepEqual(r, {
      decision: 'permit',
      matched: { attribute: 'tokenPrivileges', ruleIndex: 0, tokenId: 'tok-1', permissionIndex: 0 },
    })
  })
  test('"shall apply only to the resources specified by [resourceIDs]": another target is denied and audited with the token id', async () => {
    const before = f.audit.length
    const r = await f.ops.check(
      cse,
      req({ operation: 'update', targetResourceId: '//sp.example/in-cse/cnt-2', tokens: [await mint()] }),
    )
    assert.equal(r.decision, 'deny')
    const rec = f.audit.slice(before).find((e) => e.action === 'authz.Check')
    assert.equal(rec?.details?.['tokenIds'], 'tok-1')
    assert.ok(!JSON.stringify(rec).includes('eyJ'), 'the token itself is never audited')
  })
  test('ids in other forms compare in absolute form: CSE-relative originator and SP-relative target', async () => {
    const r = await f.ops.check(
      cse,
      req({ originator: 'Cae1', operation: 'update', targetResourceId: '/in-cse/cnt-1', tokens: [await mint()] }),
    )
    assert.equal(r.decision, 'permit')
  })
  test('a token works without any policy listed (its privileges are the applicable rules)', async () => {
    const r = await f.ops.check(cse, req({ operation: 'update', targetPolicyIds: [], tokens: [await mint()] }))
    assert.equal(r.decision, 'permit')
  })
  test('audience wildcards ("optionally including wildcards") and a holder list are accepted', async () => {
    const t = await mint({ aud: ['//sp.example/in-*'], azp: ['//sp.example/in-cse/Cother', HOLDER] })
    assert.equal((await f.ops.check(cse, req({ tokens: [t] }))).decision, 'permit')
  })
  test('"in case the audience data field is not empty": no aud is accepted unless the issuer requires one', async () => {
    assert.equal((await f.ops.check(cse, req({ tokens: [await mint({ aud: undefined })] }))).decision, 'permit')
  })
  test('Explain names each verified token and the permitting token rule', async () => {
    const r = await f.ops.explain(cse, req({ operation: 'update', tokens: [await mint()] }))
    assert.equal(r.decision, 'permit')
    assert.match(
      r.reasons[0] ?? '',
      /^tokens\[0\]: token tok-1 of \/\/sp\.example\/das-ae verified; permissions \[0, 1\] of 2 apply/,
    )
    assert.match(r.reasons.at(-1) ?? '', /permitted by token tok-1 permission 0 rule 0/)
    const viaRole = await f.ops.explain(cse, req({ tokens: [await mint()] }))
    assert.match(
      viaRole.reasons.at(-1) ?? '',
      /policy acp-roles privileges\[0\] \(role from token tok-1 permission 1\)/,
    )
  })
})

describe('bad tokens fail the request with a typed error naming the claim', () => {
  const cases: Array<{
    name: string
    token: () => Promise<string> | string
    code: string
    claim?: string
    extra?: Record<string, unknown>
  }> = [
    { name: 'alg none (unsecured JWT)', token: unsecured, code: 'ERR_TOKEN_INVALID', claim: 'alg' },
    {
      name: 'wrong audience',
      token: () => mint({ aud: ['//sp.example/other-cse'] }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'aud',
    },
    {
      name: 'expired ("comparing the current time to ... notAfter")',
      token: () => mint({ exp: NOW_S - 1 }),
      code: 'ERR_TOKEN_EXPIRED',
      claim: 'exp',
    },
    {
      name: 'not yet valid (notBefore)',
      token: () => mint({ nbf: NOW_S + 60 }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'nbf',
    },
    {
      name: 'wrong holder ("holder ... shall exactly match ... the Originator")',
      token: () => mint({ azp: '//sp.example/in-cse/Cmallory' }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'azp',
    },
    {
      name: 'untrusted issuer',
      token: () => mint({ iss: '//evil.example/das' }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'iss',
    },
    {
      name: "another tenant's issuer",
      token: () => mint({ iss: OTHER_TENANT_ISSUER }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'iss',
    },
    {
      name: 'signed with another key',
      token: () => mint({}, {}, otherKey),
      code: 'ERR_TOKEN_INVALID',
      claim: 'signature',
    },
    {
      name: 'payload changed after signing',
      token: async () => {
        const [h, , s] = (await mint()).split('.')
        return `${h}.${Buffer.from(JSON.stringify(claims({ azp: HOLDER, tkps: [{ rids: ['R-admin'] }] }))).toString('base64url')}.${s}`
      },
      code: 'ERR_TOKEN_INVALID',
      claim: 'signature',
    },
    {
      name: 'algorithm not allowed for the issuer (HS256)',
      token: () => unsignedWith({ alg: 'HS256', typ: 'JWT' }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'alg',
    },
    {
      name: 'typ missing ("JWS ... carry typ JWT")',
      token: () => mint({}, { typ: undefined }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'typ',
    },
    { name: 'cty in a JWS', token: () => mint({}, { cty: 'JWT' }), code: 'ERR_TOKEN_INVALID', claim: 'cty' },
    { name: 'a JWE (5 parts)', token: () => 'a.b.c.d.e', code: 'ERR_TOKEN_INVALID', claim: 'jwe' },
    { name: 'not a JWS at all', token: () => 'not a token', code: 'ERR_TOKEN_INVALID', claim: 'token' },
    { name: 'header not JSON', token: () => 'bm90IGpzb24.e30.', code: 'ERR_TOKEN_INVALID', claim: 'header' },
    {
      name: 'jti missing (tokenClaimSet multiplicity 1)',
      token: () => mint({ jti: undefined }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'jti',
    },
    {
      name: 'nbf as ISO 8601 text instead of NumericDate',
      token: () => mint({ nbf: '20250304T020304' }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'nbf',
    },
    {
      name: 'privileges without resourceIDs',
      token: () => mint({ tkps: { pm: [{ pv: { acr: [{ acor: ['all'], acop: 63 }] } }] } }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'tkps',
    },
    {
      name: 'no aud for an issuer that requires one',
      token: () => mint({ iss: STRICT_ISSUER, aud: undefined }),
      code: 'ERR_TOKEN_INVALID',
      claim: 'aud',
    },
    { name: 'oversized token', token: () => mint({ tknm: 'x'.repeat(5000) }), code: 'ERR_PAYLOAD_TOO_LARGE' },
    { name: 'empty token', token: () => '', code: 'ERR_TOKEN_INVALID', claim: 'token' },
    {
      name: 'no host to check audience and holder',
      token: () => mint(),
      code: 'ERR_INVALID_ARGUMENT',
      extra: { host: undefined },
    },
  ]
  for (const c of cases) {
    test(c.name, async () => {
      const token = await c.token()
      const input = { ...req({ tokens: [token] }), ...c.extra } as CheckInput
      for (const op of [f.ops.check, f.ops.explain]) {
        await assert.rejects(
          op(cse, input),
          (err: { code?: string; message?: string; details?: Record<string, unknown> }) => {
            assert.equal(err.code, c.code, err.message)
            if (c.claim !== undefined) {
              assert.equal(err.details?.['claim'], c.claim, err.message)
              assert.equal(err.details?.['field'], 'tokens[0]')
            }
            // Errors never echo token content.
            if (token.length > 20) assert.ok(!(err.message ?? '').includes(token.slice(0, 20)))
            assert.ok(!(err.message ?? '').includes(HOLDER), err.message)
            return true
          },
        )
      }
    })
  }
  test(`more than ${MAX_TOKENS} tokens`, async () => {
    const t = await mint()
    await assert.rejects(f.ops.check(cse, req({ tokens: Array.from({ length: MAX_TOKENS + 1 }, () => t) })), {
      code: 'ERR_PAYLOAD_TOO_LARGE',
    })
  })
  test('one bad token among good ones fails the request (no partial use)', async () => {
    await assert.rejects(
      f.ops.check(cse, req({ tokens: [await mint(), await mint({ exp: NOW_S - 1 })] })),
      (err: { details?: Record<string, unknown> }) => err.details?.['field'] === 'tokens[1]',
    )
  })
  test('without DAS configuration no token is trusted', async () => {
    const plain = authzFixture(0)
    await assert.rejects(plain.ops.check(cse, req({ tokens: [await mint()] })), { code: 'ERR_TOKEN_INVALID' })
  })
})

/** A token with an arbitrary header and a junk signature. */
function unsignedWith(header: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  return `${enc(header)}.${enc(claims())}.${Buffer.from('sig').toString('base64url')}`
}

describe('IssueToken: this service as DAS (§7.3.2.1, §7.3.2.6)', () => {
  const issue = {
    holder: HOLDER,
    audience: [CSE_ID],
    permissions: [
      {
        resourceIds: [TARGET],
        privileges: { accessControlRule: [{ accessControlOriginators: [HOLDER], accessControlOperations: 8 }] },
      },
    ],
    lifetimeSeconds: 300,
    tokenName: 'deleter',
  }
  test('issues a oneM2M JWT with the table 7.3.2.6.2-1 claims that Check accepts', async () => {
    const before = f.audit.length
    const r = await f.ops.issueToken(admin, issue)
    assert.equal(r.issuer, OWN_ISSUER)
    assert.equal(r.notAfter.getTime() - r.notBefore.getTime(), 300_000)
    const [h, p] = r.token.split('.') as [string, string]
    assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { typ: 'JWT', alg: 'ES256', kid: 'own/1' })
    assert.deepEqual(JSON.parse(Buffer.from(p, 'base64url').toString()), {
      tkvr: '1',
      jti: r.tokenId,
      iss: OWN_ISSUER,
      azp: HOLDER,
      nbf: NOW_S,
      exp: NOW_S + 300,
      aud: [CSE_ID],
      tkps: { pm: [{ ris: [TARGET], pv: { acr: [{ acor: [HOLDER], acop: 8 }] } }] },
      tknm: 'deleter',
    })
    const d = await f.ops.check(cse, req({ operation: 'delete', targetPolicyIds: [], tokens: [r.token] }))
    assert.deepEqual(d.matched, { attribute: 'tokenPrivileges', ruleIndex: 0, tokenId: r.tokenId, permissionIndex: 0 })
    const records = f.audit.slice(before).filter((e) => e.action === 'authz.IssueToken')
    assert.deepEqual(
      records.map((e) => e.result),
      ['ok', 'ok'],
    )
    assert.equal(records[1]?.resource, `token/${r.tokenId}`)
    assert.ok(!JSON.stringify(records).includes(r.token.split('.')[2] ?? '~'), 'the token is never audited')
  })
  test('the token is bound to its holder and audience', async () => {
    const { token } = await f.ops.issueToken(admin, issue)
    await assert.rejects(f.ops.check(cse, req({ originator: '//sp.example/in-cse/Cother', tokens: [token] })), {
      code: 'ERR_TOKEN_INVALID',
    })
    await assert.rejects(f.ops.check(cse, req({ host: { spId: 'sp.example', cseId: 'mn-cse' }, tokens: [token] })), {
      code: 'ERR_TOKEN_INVALID',
    })
  })
  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['relative holder', { holder: 'Cae1' }, 'ERR_INVALID_ARGUMENT'],
    ['no audience', { audience: [] }, 'ERR_INVALID_ARGUMENT'],
    ['17 audiences', { audience: Array.from({ length: 17 }, () => CSE_ID) }, 'ERR_PAYLOAD_TOO_LARGE'],
    ['no permissions', { permissions: [] }, 'ERR_INVALID_ARGUMENT'],
    [
      'privileges without resource ids',
      { permissions: [{ privileges: issue.permissions[0]?.privileges }] },
      'ERR_INVALID_ARGUMENT',
    ],
    ['an empty permission', { permissions: [{}] }, 'ERR_INVALID_ARGUMENT'],
    [
      'a malformed rule',
      {
        permissions: [
          {
            resourceIds: [TARGET],
            privileges: { accessControlRule: [{ accessControlOriginators: ['all'], accessControlOperations: 64 }] },
          },
        ],
      },
      'ERR_INVALID_ARGUMENT',
    ],
    ['lifetime above the maximum', { lifetimeSeconds: 3601 }, 'ERR_INVALID_ARGUMENT'],
    ['oversized holder', { holder: `//sp.example/${'x'.repeat(2100)}` }, 'ERR_PAYLOAD_TOO_LARGE'],
  ]
  for (const [name, over, code] of bad) {
    test(`refused: ${name}`, async () => {
      await assert.rejects(f.ops.issueToken(admin, { ...issue, ...over }), { code })
    })
  }
  test('refused for a non-admin and for a tenant this service is not DAS of', async () => {
    await assert.rejects(f.ops.issueToken(cse, issue), { code: 'ERR_PERMISSION_DENIED' })
    await assert.rejects(f.ops.issueToken({ tenant: 'globex', id: 'ops', roles: ['admin'] }, issue), {
      code: 'ERR_FAILED_PRECONDITION',
    })
  })
})
