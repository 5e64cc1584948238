/**
 * The `auth.tokens` settings: authn access tokens are accepted only when a JWKS URL is set;
 * issuer and audience default to authn's defaults; the URL must be http(s).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '@m2msec/runtime'
import { kmsConfigSchema } from '../../src/config.ts'

const base = {
  M2MSEC_KMS_SECURE_ENVIRONMENTS: JSON.stringify([
    { name: 'software', type: 'software', options: { masterKeyFile: '/dev/null' } },
  ]),
}
const load = (env: Record<string, string>) =>
  loadConfig(kmsConfigSchema, { envPrefix: 'M2MSEC_KMS_', argv: [], env: { ...base, ...env } })

test('unset: tokens are not accepted', () => {
  assert.equal(load({}).auth.tokens, undefined)
})

test('the JWKS URL alone turns tokens on with authn’s default issuer and audience', () => {
  const c = load({ M2MSEC_KMS_AUTH__TOKENS__JWKS_URL: 'http://127.0.0.1:7080/.well-known/jwks.json' })
  assert.deepEqual(c.auth.tokens, {
    jwksUrl: 'http://127.0.0.1:7080/.well-known/jwks.json',
    issuer: 'm2msec-authn',
    audience: 'm2msec',
  })
  const custom = load({
    M2MSEC_KMS_AUTH__TOKENS__JWKS_URL: 'https://authn.example/tenants/acme/jwks.json',
    M2MSEC_KMS_AUTH__TOKENS__ISSUER: 'https://authn.example',
    M2MSEC_KMS_AUTH__TOKENS__AUDIENCE: 'kms',
  })
  assert.deepEqual([custom.auth.tokens?.issuer, custom.auth.tokens?.audience], ['https://authn.example', 'kms'])
})

test('a JWKS URL that is not http(s), or an empty issuer, stops the start naming the field', () => {
  for (const [env, field] of [
    [{ M2MSEC_KMS_AUTH__TOKENS__JWKS_URL: 'file:///etc/jwks.json' }, 'auth.tokens.jwksUrl'],
    [{ M2MSEC_KMS_AUTH__TOKENS__JWKS_URL: 'not a url' }, 'auth.tokens.jwksUrl'],
    [
      { M2MSEC_KMS_AUTH__TOKENS__JWKS_URL: 'http://a/jwks.json', M2MSEC_KMS_AUTH__TOKENS__ISSUER: '' },
      'auth.tokens.issuer',
    ],
  ] as const) {
    assert.throws(
      () => load(env),
      (err: { code?: string; message?: string }) =>
        err.code === 'ERR_CONFIG_INVALID' && err.message?.includes(field) === true,
      field,
    )
  }
})
