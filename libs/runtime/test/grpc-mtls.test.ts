import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import {
  chainAuthenticators,
  createGrpcServer,
  devMtlsAuthenticator,
  devStaticTokenAuthenticator,
  fromGrpcError,
  grpcServerConfigSchema,
  type GrpcServer,
  type UnaryHandlers,
} from '../src/index.ts'
import {
  bearer,
  captureLogger,
  createTestCa,
  echoClient,
  echoRequest,
  loadEchoDefinition,
  unary,
  type EchoServiceDefinition,
  type Pem,
} from './helpers.ts'

const TOKEN = 'dev-token-0123456789abcdef'
const def = loadEchoDefinition()

function tlsClient(address: string, ca: string, client?: Pem): grpc.Client {
  const creds = grpc.credentials.createSsl(
    Buffer.from(ca),
    client === undefined ? null : Buffer.from(client.key),
    client === undefined ? null : Buffer.from(client.cert),
  )
  return echoClient(address, creds, { 'grpc.ssl_target_name_override': 'localhost' })
}

const soon = (): Date => new Date(Date.now() + 3_000)

describe('gRPC server with mTLS', () => {
  let dir: string
  let server: GrpcServer
  let address: string
  let caPem: string
  let device: Pem
  let noUri: Pem
  let foreign: Pem
  const clients: grpc.Client[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'm2msec-runtime-mtls-'))
    const ca = await createTestCa()
    const serverPem = await ca.issueServer()
    caPem = ca.ca.cert
    device = await ca.issueClient('CN=device-1, OU=role:admin, OU=role:reader, OU=engineering', [
      'm2msec://tenant-a/device-1',
    ])
    noUri = await ca.issueClient('CN=nobody, OU=role:admin', [])
    foreign = await (await createTestCa('other CA')).issueClient('CN=x', ['m2msec://tenant-a/device-1'])
    await writeFile(join(dir, 'ca.pem'), ca.ca.cert)
    await writeFile(join(dir, 'server.pem'), serverPem.cert)
    await writeFile(join(dir, 'server.key'), serverPem.key, { mode: 0o600 })

    const handlers: UnaryHandlers<EchoServiceDefinition> = {
      async Echo(req, ctx) {
        return {
          text: req.text,
          tenant: ctx.principal.tenant,
          principal: ctx.principal.id,
          roles: [...ctx.principal.roles],
          via: ctx.principal.via,
          requestId: ctx.requestId,
          aborted: false,
        }
      },
      async Ping() {
        throw new Error('unused')
      },
    }
    server = createGrpcServer(
      {
        ...grpcServerConfigSchema({ port: 0 }).parse({}),
        tls: {
          certFile: join(dir, 'server.pem'),
          keyFile: join(dir, 'server.key'),
          caFile: join(dir, 'ca.pem'),
          requireClientCert: true,
        },
      },
      {
        log: captureLogger().log,
        authenticator: chainAuthenticators(
          devMtlsAuthenticator(),
          devStaticTokenAuthenticator({
            token: TOKEN,
            tenant: 'demo',
            principal: 'admin',
            roles: ['admin'],
          }),
        ),
      },
    )
    server.addUnaryService(def, handlers)
    address = (await server.listen()).address
  })

  after(async () => {
    for (const c of clients) c.close()
    await server.shutdown()
    await rm(dir, { recursive: true, force: true })
  })

  test('the verified client certificate becomes the principal (SAN URI + OU=role:*)', async () => {
    const client = tlsClient(address, caPem, device)
    clients.push(client)
    const { response } = await unary(client, def.Echo, echoRequest({ text: 'x' }), undefined, {
      deadline: soon(),
    }).result
    assert.equal(response.tenant, 'tenant-a')
    assert.equal(response.principal, 'device-1')
    assert.deepEqual(response.roles, ['admin', 'reader'])
    assert.equal(response.via, 'mtls')
  })

  test('a certificate without an m2msec URI falls through the chain to the token authenticator', async () => {
    const client = tlsClient(address, caPem, noUri)
    clients.push(client)
    const err = await unary(client, def.Echo, echoRequest(), undefined, {
      deadline: soon(),
    }).result.then(
      () => assert.fail('expected an error'),
      (e: grpc.ServiceError) => e,
    )
    assert.equal(err.code, grpc.status.UNAUTHENTICATED)
    assert.equal(fromGrpcError(err).code, 'ERR_UNAUTHENTICATED')
    const { response } = await unary(client, def.Echo, echoRequest(), bearer(TOKEN), {
      deadline: soon(),
    }).result
    assert.equal(response.via, 'dev-token')
  })

  test('a client without a certificate is rejected by the TLS handshake', async () => {
    const client = tlsClient(address, caPem)
    clients.push(client)
    await assert.rejects(
      unary(client, def.Echo, echoRequest(), bearer(TOKEN), { deadline: soon() }).result,
      (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED,
    )
  })

  test('a certificate from another CA is rejected by the TLS handshake', async () => {
    const client = tlsClient(address, caPem, foreign)
    clients.push(client)
    await assert.rejects(
      unary(client, def.Echo, echoRequest(), bearer(TOKEN), { deadline: soon() }).result,
      (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED,
    )
  })
})
