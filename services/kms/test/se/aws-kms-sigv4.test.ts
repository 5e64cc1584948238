/**
 * SigV4 against the AWS Signature Version 4 test suite (fixtures/aws/sigv4-test-suite.json:
 * the 2015-08-30 suite published at docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html,
 * plus the IAM ListUsers worked example of the AWS General Reference).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { loadJson } from '@m2msec/testkit'
import type { AwsCredentials } from '../../src/se/aws-kms/sigv4.ts'
import { signSigV4, toAmzDate } from '../../src/se/aws-kms/sigv4.ts'

interface SuiteCase {
  readonly name: string
  readonly service?: string
  readonly method: string
  readonly path: string
  readonly query: ReadonlyArray<readonly [string, string]>
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly authorization: string
}
const suite = loadJson<{
  credentials: AwsCredentials
  region: string
  service: string
  date: string
  cases: SuiteCase[]
}>(new URL('./fixtures/aws/sigv4-test-suite.json', import.meta.url))

describe('SigV4: AWS Signature Version 4 test suite', () => {
  it(`has the published cases (${suite.cases.length})`, () => assert.ok(suite.cases.length >= 20))

  for (const c of suite.cases) {
    it(c.name, () => {
      const url = new URL(`https://${c.headers['host'] ?? ''}${c.path}`)
      for (const [k, v] of c.query) url.searchParams.append(k, v)
      const headers = signSigV4(
        { method: c.method, url, headers: c.headers, body: c.body },
        {
          region: suite.region,
          service: c.service ?? suite.service,
          credentials: suite.credentials,
          date: new Date(suite.date),
        },
      )
      assert.equal(headers['authorization'], c.authorization)
    })
  }

  it('adds host, x-amz-date and (temporary credentials) x-amz-security-token, and signs them', () => {
    const headers = signSigV4(
      {
        method: 'POST',
        url: new URL('http://127.0.0.1:4566/'),
        headers: { 'Content-Type': 'application/x-amz-json-1.1' },
        body: '{}',
      },
      {
        region: 'eu-west-1',
        service: 'kms',
        credentials: { ...suite.credentials, sessionToken: 'session-token' },
        date: new Date('2026-11-23T10:00:00.123Z'),
      },
    )
    assert.equal(headers['host'], '127.0.0.1:4566')
    assert.equal(headers['x-amz-date'], '20261123T100000Z')
    assert.equal(headers['x-amz-security-token'], 'session-token')
    assert.match(
      headers['authorization'] ?? '',
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261123\/eu-west-1\/kms\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
    )
    assert.ok(!(headers['authorization'] ?? '').includes(suite.credentials.secretAccessKey))
  })

  it('formats the request date as YYYYMMDDTHHMMSSZ', () => {
    assert.equal(toAmzDate(new Date('2015-08-30T12:36:00Z')), '20150830T123600Z')
  })
})
