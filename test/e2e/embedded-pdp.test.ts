/**
 * The embedded PDP (`@m2msec/sdk/pdp`): an application mirrors one tenant's policies from the
 * authz service's KV bucket and decides locally. A policy written through the authz API reaches
 * it within a second; another tenant's policies never do.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { authzConfigSchema, startAuthz, type AuthzApp } from '@m2msec/authz'
import { connectNats, type NatsConnection } from '@m2msec/bus'
import * as pb from '@m2msec/proto/authz/v1'
import { createLogger, promiseClient } from '@m2msec/runtime'
import { createEmbeddedPdp, type EmbeddedPdp } from '@m2msec/sdk/pdp'
import { startNats, tmpDir, type NatsServer, type TmpDir } from '@m2msec/testkit'

let nats: NatsServer
let dir: TmpDir
let authz: AuthzApp
let nc: NatsConnection
let pdp: EmbeddedPdp
let client: pb.AuthorizationClient
const token = randomBytes(24).toString('base64url')

before(async () => {
  nats = await startNats()
  dir = await tmpDir('m2msec-embedded-pdp')
  const tokenFile = join(dir.path, 'admin.token')
  await writeFile(tokenFile, token, { mode: 0o600 })
  authz = await startAuthz(
    authzConfigSchema.parse({
      grpc: { port: 0 },
      nats: { servers: [nats.url] },
      auth: { devAdminTokenFile: tokenFile, devTenant: 'acme' },
    }),
    createLogger({ service: 'authz', level: 'warn' }),
  )
  client = new pb.AuthorizationClient(`127.0.0.1:${authz.address.port}`, grpc.credentials.createInsecure())
  nc = await connectNats({ servers: [nats.url], name: 'embedded-pdp-test' })
})

after(async () => {
  await pdp?.close()
  client?.close()
  await nc?.drain()
  await authz?.shutdown()
  await nats?.stop()
  await dir?.cleanup()
})

const auth = (): { metadata: grpc.Metadata } => {
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${token}`)
  return { metadata }
}

function policy(operations: number): pb.PutPolicyRequest {
  return pb.PutPolicyRequest.fromPartial({
    policy: {
      id: 'acp-meters',
      privileges: {
        accessControlRule: [{ accessControlOriginators: ['C-meter-1'], accessControlOperations: operations }],
      },
      selfPrivileges: { accessControlRule: [{ accessControlOriginators: ['dev-admin'], accessControlOperations: 63 }] },
    },
  })
}

const retrieve = {
  originator: 'C-meter-1',
  operation: 'retrieve' as const,
  targetPolicyIds: ['acp-meters'],
  authenticated: true,
  context: { time: new Date() },
}

async function until(what: string, check: () => boolean): Promise<number> {
  const t0 = Date.now()
  while (!check()) {
    assert.ok(Date.now() - t0 < 1000, `${what} not seen within a second`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return Date.now() - t0
}

test('policies written through authz reach the embedded PDP, which decides without a network hop', async () => {
  const api = promiseClient(pb.AuthorizationService, client)
  await api.putPolicy(policy(2), auth()) // RETRIEVE
  pdp = await createEmbeddedPdp({ nc, tenant: 'acme' })
  assert.equal(pdp.size, 1, 'the initial load has the existing policy')
  assert.equal(pdp.decide(retrieve).decision, 'permit')
  assert.equal(pdp.decide({ ...retrieve, operation: 'delete' as const }).decision, 'deny')

  await api.putPolicy(policy(8), auth()) // DELETE only
  await until('the policy change', () => pdp.decide(retrieve).decision === 'deny')
  assert.equal(pdp.decide({ ...retrieve, operation: 'delete' as const }).decision, 'permit')

  await api.deletePolicy(pb.DeletePolicyRequest.fromPartial({ policyId: 'acp-meters' }), auth())
  await until('the deletion', () => pdp.size === 0)
  assert.equal(pdp.decide({ ...retrieve, operation: 'delete' as const }).decision, 'deny', 'no policy: default deny')
})

test('another tenant’s policies never reach the mirror', async () => {
  const other = await createEmbeddedPdp({ nc, tenant: 'globex' })
  try {
    const api = promiseClient(pb.AuthorizationService, client)
    await api.putPolicy(policy(2), auth()) // written by tenant acme
    await until('acme’s policy', () => pdp.size === 1)
    assert.equal(other.size, 0)
    assert.equal(other.decide(retrieve).decision, 'deny')
  } finally {
    await other.close()
  }
})
