/**
 * The `das` settings: trusted issuers need exactly one key source, an issuer appears once per
 * tenant, a tenant has one own DAS identity, and production needs mTLS to the KMS.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '@m2msec/runtime'
import { authzConfigSchema } from '../../src/config.ts'

const load = (env: Record<string, string>) =>
  loadConfig(authzConfigSchema, { envPrefix: 'M2MSEC_AUTHZ_', argv: [], env })

test('defaults: no issuers, nothing trusted, ES256 and audience optional for trusted issuers', () => {
  const c = load({})
  assert.deepEqual([c.das.issuers, c.das.trusted, c.das.maxTokenBytes, c.das.clockToleranceSec], [[], [], 8192, 5])
  const t = load({
    M2MSEC_AUTHZ_DAS__TRUSTED: JSON.stringify([
      { tenant: 'acme', issuer: '//sp/das', jwksUrl: 'https://das.example/jwks' },
    ]),
    M2MSEC_AUTHZ_DAS__ISSUERS: JSON.stringify([{ tenant: 'acme', issuer: '//sp/authz', keyId: 'das-signing' }]),
  })
  assert.deepEqual(t.das.trusted[0]?.algorithms, ['ES256'])
  assert.equal(t.das.trusted[0]?.requireAudience, false)
  assert.equal(t.das.issuers[0]?.maxLifetimeSec, 3600)
})

test('bad DAS settings stop the start naming the field', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ M2MSEC_AUTHZ_DAS__TRUSTED: JSON.stringify([{ tenant: 'acme', issuer: '//sp/das' }]) }, 'das.trusted'],
    [
      {
        M2MSEC_AUTHZ_DAS__TRUSTED: JSON.stringify([
          { tenant: 'acme', issuer: '//sp/das', jwksFile: '/a', jwksUrl: 'https://b/jwks' },
        ]),
      },
      'das.trusted',
    ],
    [
      {
        M2MSEC_AUTHZ_DAS__TRUSTED: JSON.stringify([
          { tenant: 'acme', issuer: '//sp/das', jwksFile: '/a', algorithms: ['none'] },
        ]),
      },
      'das.trusted',
    ],
    [
      {
        M2MSEC_AUTHZ_DAS__TRUSTED: JSON.stringify([{ tenant: 'acme', issuer: '//sp/das', jwksFile: '/a' }]),
        M2MSEC_AUTHZ_DAS__ISSUERS: JSON.stringify([{ tenant: 'acme', issuer: '//sp/das', keyId: 'k' }]),
      },
      'das',
    ],
    [
      {
        M2MSEC_AUTHZ_DAS__ISSUERS: JSON.stringify([
          { tenant: 'acme', issuer: '//sp/a', keyId: 'k' },
          { tenant: 'acme', issuer: '//sp/b', keyId: 'k' },
        ]),
      },
      'das.issuers',
    ],
    [
      {
        M2MSEC_AUTHZ_PROFILE: 'production',
        M2MSEC_AUTHZ_GRPC__TLS__CERT_FILE: '/c',
        M2MSEC_AUTHZ_GRPC__TLS__KEY_FILE: '/k',
        M2MSEC_AUTHZ_DAS__ISSUERS: JSON.stringify([{ tenant: 'acme', issuer: '//sp/a', keyId: 'k' }]),
      },
      'das.kms.tls',
    ],
  ]
  for (const [env, field] of cases) {
    assert.throws(
      () => load(env),
      (err: { code?: string; message?: string }) =>
        err.code === 'ERR_CONFIG_INVALID' && err.message?.includes(field) === true,
      `${field}: ${JSON.stringify(env)}`,
    )
  }
})
