/**
 * authz as DAS Server over real gRPC: IssueToken signs with the tenant's ES256 key in a real
 * KMS process (created on first use), Check accepts that token and tokens of an external DAS
 * trusted through a JWKS file, and bad tokens come back as ERR_TOKEN_INVALID with the failing
 * claim (per item in BatchCheck).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey } from 'jose'
import { fromGrpcError } from '@m2msec/runtime'
import { startKmsProcess } from '@m2msec/testkit'
import * as pb from '@m2msec/proto/authz/v1'
import { startAuthzHarness, type Authz, type AuthzHarness } from './authz-harness.ts'

const TENANT = 'acme'
const OWN_ISSUER = '//sp.example/authz-das'
const EXT_ISSUER = '//sp.example/das-ae'
const CSE_ID = '//sp.example/in-cse'
const HOLDER = '//sp.example/in-cse/Cae1'
const TARGET = '//sp.example/in-cse/cnt-1'

let h: AuthzHarness
let admin: Authz
let pep: Authz
let extKey: CryptoKey

before(async () => {
  const pair = await generateKeyPair('ES256')
  extKey = pair.privateKey
  h = await startAuthzHarness({
    extras: async ({ pki, natsUrl, dir }) => {
      const kms = await startKmsProcess({ natsUrl, pki })
      // The development mTLS authenticator refuses the `_platform` tenant (see the authn e2e
      // test): authz reaches the KMS as an admin/service principal of the tenant instead.
      const cert = await pki.issueClientCert({ tenant: TENANT, principal: 'authz', roles: ['admin', 'service'] })
      const certFile = join(dir, 'authz-kms.pem')
      const keyFile = join(dir, 'authz-kms.key')
      const jwksFile = join(dir, 'das-ae.jwks.json')
      await writeFile(certFile, cert.certPem)
      await writeFile(keyFile, cert.keyPem, { mode: 0o600 })
      await writeFile(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'ext-1' }] }))
      return {
        config: {
          das: {
            issuers: [{ tenant: TENANT, issuer: OWN_ISSUER, keyId: 'das-signing' }],
            trusted: [{ tenant: TENANT, issuer: EXT_ISSUER, jwksFile }],
            kms: { target: kms.target, tls: { caFile: pki.paths.caCert, certFile, keyFile } },
          },
        },
        stop: () => kms.stop(),
      }
    },
  })
  admin = await h.client({ tenant: TENANT, principal: 'ops', roles: ['admin'] })
  pep = await h.client({ tenant: TENANT, principal: 'in-cse', roles: ['cse'] })
})

after(() => h?.stop())

function checkReq(tokens: string[], extra: Partial<pb.CheckRequest> = {}): pb.CheckRequest {
  return pb.CheckRequest.fromPartial({
    originator: HOLDER,
    operation: pb.Operation.OPERATION_UPDATE,
    targetResourceId: TARGET,
    authenticated: true,
    host: { spId: 'sp.example', cseId: 'in-cse' },
    tokens,
    ...extra,
  })
}

test('IssueToken signs with the KMS key; Check accepts the token and names it in the matched rule', async () => {
  const res = await admin.issueToken(
    pb.IssueTokenRequest.fromPartial({
      holder: HOLDER,
      audience: [CSE_ID],
      permissions: [
        {
          resourceIds: [TARGET],
          privileges: { accessControlRule: [{ accessControlOriginators: [HOLDER], accessControlOperations: 4 }] },
        },
      ],
      lifetimeSeconds: 600,
    }),
  )
  assert.equal(res.issuer, OWN_ISSUER)
  const header = JSON.parse(Buffer.from(res.token.split('.')[0] ?? '', 'base64url').toString()) as Record<
    string,
    unknown
  >
  assert.deepEqual(header, { typ: 'JWT', alg: 'ES256', kid: 'das-signing/1' })
  const d = await pep.check(checkReq([res.token]))
  assert.equal(d.decision, pb.Decision.DECISION_PERMIT)
  assert.deepEqual(d.matchedRule, {
    policyId: '',
    attribute: pb.PolicyAttribute.POLICY_ATTRIBUTE_TOKEN_PRIVILEGES,
    ruleIndex: 0,
    tokenId: res.tokenId,
    permissionIndex: 0,
  })
  // The PEP is no admin: it cannot issue tokens.
  await assert.rejects(
    pep.issueToken(pb.IssueTokenRequest.fromPartial({ holder: HOLDER })),
    (err: grpc.ServiceError) => {
      assert.equal(fromGrpcError(err).code, 'ERR_PERMISSION_DENIED')
      return true
    },
  )
})

test('a token of a trusted external DAS (JWKS file) is accepted; a bad one is UNAUTHENTICATED / ERR_TOKEN_INVALID naming the claim', async () => {
  const mint = (claims: Record<string, unknown>) =>
    new CompactSign(
      new TextEncoder().encode(
        JSON.stringify({
          tkvr: '1',
          jti: 'ext-tok',
          iss: EXT_ISSUER,
          azp: HOLDER,
          nbf: Math.floor(Date.now() / 1000) - 10,
          exp: Math.floor(Date.now() / 1000) + 600,
          aud: [CSE_ID],
          tkps: [{ ris: [TARGET], pv: { acr: [{ acor: ['all'], acop: 4 }] } }],
          ...claims,
        }),
      ),
    )
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: 'ext-1' })
      .sign(extKey)
  const good = await pep.check(checkReq([await mint({})]))
  assert.equal(good.decision, pb.Decision.DECISION_PERMIT)
  assert.equal(good.matchedRule?.tokenId, 'ext-tok')

  const wrongAud = await mint({ aud: ['//sp.example/mn-cse'] })
  await assert.rejects(pep.check(checkReq([wrongAud])), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.UNAUTHENTICATED)
    const e = fromGrpcError(err)
    assert.equal(e.code, 'ERR_TOKEN_INVALID')
    assert.equal(e.details['claim'], 'aud')
    assert.equal(e.details['field'], 'tokens[0]')
    return true
  })
  const batch = await pep.batchCheck(
    pb.BatchCheckRequest.fromPartial({
      items: [
        checkReq([await mint({})]),
        checkReq([await mint({ nbf: Math.floor(Date.now() / 1000) - 100, exp: Math.floor(Date.now() / 1000) - 30 })]),
      ],
    }),
  )
  assert.equal(batch.results[0]?.outcome?.$case, 'result')
  const second = batch.results[1]?.outcome
  assert.equal(second?.$case, 'error')
  assert.equal(second?.$case === 'error' ? second.value.code : -1, grpc.status.UNAUTHENTICATED)
  assert.match(second?.$case === 'error' ? second.value.message : '', /token has expired/)
})
