import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { service as healthService } from 'grpc-health-check'
import { M2msecError } from '@m2msec/errors'
import {
  ERROR_CODE_METADATA,
  REQUEST_ID_METADATA,
  createGrpcServer,
  devStaticTokenAuthenticator,
  fromGrpcError,
  grpcServerConfigSchema,
  type CallContext,
  type GrpcServer,
  type GrpcServerConfig,
  type UnaryHandlers,
  type UnaryMethodNames,
} from '../src/index.ts'
import {
  ECHO_PROTO,
  ECHO_SERVICE,
  FIXTURES,
  bearer,
  captureLogger,
  echoClient,
  echoRequest,
  loadEchoDefinition,
  unary,
  type EchoRequest,
  type EchoResponse,
  type EchoServiceDefinition,
} from './helpers.ts'

const TOKEN = 'dev-token-0123456789abcdef'
const def = loadEchoDefinition()

// Type-level checks: streaming methods are not unary handlers; requests are typed.
// @ts-expect-error Tail is server-streaming
const notUnary: UnaryMethodNames<EchoServiceDefinition> = 'Tail'
void notUnary

function baseConfig(overrides: Partial<GrpcServerConfig> = {}): GrpcServerConfig {
  return { ...grpcServerConfigSchema({ port: 0 }).parse({}), shutdownGraceMs: 2_000, ...overrides }
}

/** Waits `ms`, ending early when the call's signal aborts. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(t)
      resolve()
    })
  })
}

function respond(req: EchoRequest, ctx: CallContext): EchoResponse {
  return {
    text: req.text,
    tenant: ctx.principal.tenant,
    principal: ctx.principal.id,
    roles: [...ctx.principal.roles],
    via: ctx.principal.via,
    requestId: ctx.requestId,
    aborted: ctx.signal.aborted,
  }
}

interface Harness {
  server: GrpcServer
  address: string
  client: grpc.Client
  logs: ReturnType<typeof captureLogger>
  contexts: CallContext[]
}

async function startHarness(config: GrpcServerConfig = baseConfig()): Promise<Harness> {
  const logs = captureLogger()
  const contexts: CallContext[] = []
  const server = createGrpcServer(config, {
    log: logs.log,
    authenticator: devStaticTokenAuthenticator({
      token: TOKEN,
      tenant: 'demo',
      principal: 'admin',
      roles: ['admin', 'ops'],
    }),
    reflection: [{ protoFiles: [ECHO_PROTO], includeDirs: [FIXTURES] }],
  })
  const handlers: UnaryHandlers<EchoServiceDefinition> = {
    async Echo(req, ctx) {
      contexts.push(ctx)
      if (req.delayMs > 0) await wait(req.delayMs, ctx.signal)
      if (req.fail === 'm2msec')
        throw new M2msecError('ERR_KEY_NOT_FOUND', 'key not found', { keyId: 'k-1', version: 3 })
      if (req.fail === 'plain') throw new Error('db down: postgres://admin:hunter2@db.internal')
      if (req.fail === 'internal') throw new M2msecError('ERR_INTERNAL', 'invariant broken near hunter2')
      return respond(req, ctx)
    },
    async Ping(req, ctx) {
      return respond(req, ctx)
    },
  }
  server.addUnaryService(def, handlers, { unauthenticated: ['Ping'] })
  const { address } = await server.listen()
  return { server, address, client: echoClient(address), logs, contexts }
}

async function stopHarness(h: Harness): Promise<void> {
  h.client.close()
  await h.server.shutdown()
}

describe('gRPC server', () => {
  let h: Harness
  before(async () => {
    h = await startHarness()
  })
  after(async () => {
    await stopHarness(h)
  })

  test('listen reports a real port on loopback', () => {
    assert.match(h.address, /^127\.0\.0\.1:\d+$/)
    assert.notEqual(Number(h.address.split(':')[1]), 0)
  })

  test('health answers SERVING without credentials, per service and overall; setServing switches it', async () => {
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health')
    const health = new Health(h.address, grpc.credentials.createInsecure())
    try {
      const check = (service: string) =>
        unary<{ service: string }, { status: string }>(
          health,
          healthService.Check as grpc.MethodDefinition<{ service: string }, { status: string }>,
          { service },
        ).result
      assert.equal((await check('')).response.status, 'SERVING')
      assert.equal((await check(ECHO_SERVICE)).response.status, 'SERVING')
      h.server.setServing(ECHO_SERVICE, false)
      assert.equal((await check(ECHO_SERVICE)).response.status, 'NOT_SERVING')
      h.server.setServing(ECHO_SERVICE, true)
      assert.equal((await check(ECHO_SERVICE)).response.status, 'SERVING')
      await assert.rejects(check('no.such.Service'), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND)
    } finally {
      health.close()
    }
  })

  test('reflection lists the service and returns its descriptor without credentials', async () => {
    const reflectionDir = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto')
    const pkg = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', {
      includeDirs: [reflectionDir],
      keepCase: true,
      defaults: true,
      oneofs: true,
    })
    const Reflection = grpc.loadPackageDefinition(pkg) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } }
    }
    const client = new Reflection.grpc.reflection.v1.ServerReflection(h.address, grpc.credentials.createInsecure())
    try {
      const ask = (request: Record<string, unknown>) =>
        new Promise<Record<string, any>>((resolve, reject) => {
          const stream = (
            client as unknown as Record<string, () => grpc.ClientDuplexStream<unknown, Record<string, any>>>
          )['ServerReflectionInfo']!()
          stream.on('data', (msg) => {
            resolve(msg)
            stream.end()
          })
          stream.on('error', reject)
          stream.write(request)
        })
      const list = await ask({ list_services: '*' })
      const names = (list['list_services_response'].service as { name: string }[]).map((s) => s.name)
      assert.ok(names.includes(ECHO_SERVICE), names.join(','))
      assert.ok(names.includes('grpc.health.v1.Health'), names.join(','))
      const file = await ask({ file_containing_symbol: ECHO_SERVICE })
      assert.ok(file['file_descriptor_response'].file_descriptor_proto.length >= 1)
    } finally {
      client.close()
    }
  })

  test('a call without credentials is UNAUTHENTICATED and the handler never runs', async () => {
    const before = h.contexts.length
    const err = await unary(h.client, def.Echo, echoRequest()).result.then(
      () => assert.fail('expected an error'),
      (e: grpc.ServiceError) => e,
    )
    assert.equal(err.code, grpc.status.UNAUTHENTICATED)
    assert.equal(fromGrpcError(err).code, 'ERR_UNAUTHENTICATED')
    assert.equal(h.contexts.length, before)
  })

  test('a wrong token is UNAUTHENTICATED with reason ERR_TOKEN_INVALID', async () => {
    const err = await unary(h.client, def.Echo, echoRequest(), bearer('wrong-token-0123456789')).result.then(
      () => assert.fail('expected an error'),
      (e: grpc.ServiceError) => e,
    )
    assert.equal(err.code, grpc.status.UNAUTHENTICATED)
    assert.equal(fromGrpcError(err).code, 'ERR_TOKEN_INVALID')
  })

  test('the dev token reaches the handler as a principal, with request id in context and trailers', async () => {
    const md = bearer(TOKEN)
    md.set('x-request-id', 'req-abc-123')
    const { response, trailers } = await unary(h.client, def.Echo, echoRequest({ text: 'hi' }), md).result
    assert.deepEqual(
      { ...response },
      {
        text: 'hi',
        tenant: 'demo',
        principal: 'admin',
        roles: ['admin', 'ops'],
        via: 'dev-token',
        requestId: 'req-abc-123',
        aborted: false,
      },
    )
    assert.deepEqual(trailers.get(REQUEST_ID_METADATA), ['req-abc-123'])
    const ctx = h.contexts.at(-1)
    assert.ok(ctx)
    assert.equal(ctx.method, `/${ECHO_SERVICE}/Echo`)
    assert.match(ctx.peer, /127\.0\.0\.1/)
  })

  test('a malformed x-request-id is replaced by a UUID', async () => {
    const md = bearer(TOKEN)
    md.set('x-request-id', 'bad id with spaces')
    const { response } = await unary(h.client, def.Echo, echoRequest(), md).result
    assert.match(response.requestId, /^[0-9a-f-]{36}$/)
  })

  test('the deadline is passed to the handler', async () => {
    const deadline = new Date(Date.now() + 5_000)
    await unary(h.client, def.Echo, echoRequest(), bearer(TOKEN), { deadline }).result
    const seen = h.contexts.at(-1)?.deadline
    assert.ok(seen instanceof Date)
    assert.ok(Math.abs(seen.getTime() - deadline.getTime()) < 1_000)
  })

  test('an M2msecError becomes its status with an ErrorInfo that fromGrpcError decodes', async () => {
    const err = await unary(h.client, def.Echo, echoRequest({ fail: 'm2msec' }), bearer(TOKEN)).result.then(
      () => assert.fail('expected an error'),
      (e: grpc.ServiceError) => e,
    )
    assert.equal(err.code, grpc.status.NOT_FOUND)
    assert.equal(err.details, 'key not found')
    assert.deepEqual(err.metadata.get(ERROR_CODE_METADATA), ['ERR_KEY_NOT_FOUND'])
    assert.equal(err.metadata.get('grpc-status-details-bin').length, 1)
    const back = fromGrpcError(err)
    assert.equal(back.code, 'ERR_KEY_NOT_FOUND')
    assert.equal(back.message, 'key not found')
    assert.deepEqual(back.details, { keyId: 'k-1', version: '3' })
  })

  test('a plain Error becomes INTERNAL with a request id and no internal text; the cause is logged', async () => {
    const md = bearer(TOKEN)
    md.set('x-request-id', 'req-internal-1')
    const err = await unary(h.client, def.Echo, echoRequest({ fail: 'plain' }), md).result.then(
      () => assert.fail('expected an error'),
      (e: grpc.ServiceError) => e,
    )
    assert.equal(err.code, grpc.status.INTERNAL)
    assert.equal(err.details, 'internal error (request id req-internal-1)')
    const everything =
      JSON.stringify({ details: err.details, md: err.metadata.toJSON() }) +
      Buffer.concat(err.metadata.get('grpc-status-details-bin').map((v) => Buffer.from(v))).toString('latin1')
    assert.ok(!everything.includes('hunter2'))
    assert.ok(!everything.includes('postgres'))
    assert.equal(fromGrpcError(err).code, 'ERR_INTERNAL')
    const logged = h.logs.lines().find((l) => l['requestId'] === 'req-internal-1' && l['msg'] === 'rpc failed')
    assert.ok(logged, 'the real error is logged')
    assert.match(JSON.stringify(logged['err']), /db down/)
  })

  test('an M2msecError with status INTERNAL does not expose its message either', async () => {
    const err = await unary(h.client, def.Echo, echoRequest({ fail: 'internal' }), bearer(TOKEN)).result.then(
      () => assert.fail('expected an error'),
      (e: grpc.ServiceError) => e,
    )
    assert.equal(err.code, grpc.status.INTERNAL)
    assert.match(err.details, /^internal error \(request id [0-9a-f-]+\)$/)
    assert.equal(fromGrpcError(err).code, 'ERR_INTERNAL')
  })

  test('a method declared unauthenticated runs without credentials as the anonymous principal', async () => {
    const { response } = await unary(h.client, def.Ping, echoRequest({ text: 'p' })).result
    assert.equal(response.via, 'anonymous')
    assert.equal(response.tenant, '')
  })

  test('a streaming method of the definition answers UNIMPLEMENTED', async () => {
    const stream = h.client.makeServerStreamRequest(
      def.Tail.path,
      def.Tail.requestSerialize,
      def.Tail.responseDeserialize,
      echoRequest(),
      bearer(TOKEN),
    )
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      stream.on('error', resolve)
      stream.on('data', () => {})
    })
    assert.equal(err.code, grpc.status.UNIMPLEMENTED)
  })

  test('a client cancel aborts the handler signal and in-flight drops back to 0', async () => {
    const { call, result } = unary(h.client, def.Echo, echoRequest({ delayMs: 5_000 }), bearer(TOKEN))
    await waitFor(() => h.server.inFlight === 1)
    const ctx = h.contexts.at(-1)
    assert.ok(ctx)
    call.cancel()
    await assert.rejects(result, (e: grpc.ServiceError) => e.code === grpc.status.CANCELLED)
    await waitFor(() => ctx.signal.aborted)
    await waitFor(() => h.server.inFlight === 0)
  })
})

async function waitFor(cond: () => boolean, timeoutMs = 3_000): Promise<void> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('gRPC server shutdown', () => {
  test('graceful: an in-flight slow call finishes, health goes NOT_SERVING, new calls are refused', async () => {
    const h = await startHarness(baseConfig({ shutdownGraceMs: 5_000 }))
    try {
      // A health Watch opened before shutdown sees the switch to NOT_SERVING.
      const Health = grpc.makeGenericClientConstructor(healthService, 'Health')
      const health = new Health(h.address, grpc.credentials.createInsecure())
      const watch = health.makeServerStreamRequest(
        healthService.Watch!.path,
        healthService.Watch!.requestSerialize,
        healthService.Watch!.responseDeserialize,
        { service: ECHO_SERVICE },
      )
      const statuses: string[] = []
      watch.on('data', (m: { status: string }) => statuses.push(m.status))
      watch.on('error', () => {})
      await waitFor(() => statuses.length === 1)
      const slow = unary(h.client, def.Echo, echoRequest({ text: 'slow', delayMs: 400 }), bearer(TOKEN))
      await waitFor(() => h.server.inFlight === 1)
      const started = Date.now()
      const stopping = h.server.shutdown()
      await waitFor(() => statuses.length === 2)
      assert.deepEqual(statuses, ['SERVING', 'NOT_SERVING'])
      watch.cancel()
      health.close()
      const { response } = await slow.result
      assert.equal(response.text, 'slow')
      assert.equal(response.aborted, false)
      await stopping
      assert.ok(Date.now() - started < 4_000, 'shutdown did not wait for the grace period')
      const late = echoClient(h.address)
      await assert.rejects(
        unary(late, def.Echo, echoRequest(), bearer(TOKEN), {
          deadline: new Date(Date.now() + 1_000),
        }).result,
        (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED,
      )
      late.close()
    } finally {
      h.client.close()
      await h.server.shutdown()
    }
  })

  test('forced: a call outlasting shutdownGraceMs is cancelled and its signal aborted', async () => {
    const h = await startHarness(baseConfig({ shutdownGraceMs: 200 }))
    try {
      const slow = unary(h.client, def.Echo, echoRequest({ delayMs: 10_000 }), bearer(TOKEN))
      await waitFor(() => h.server.inFlight === 1)
      const ctx = h.contexts.at(-1)
      assert.ok(ctx)
      const started = Date.now()
      await h.server.shutdown()
      assert.ok(Date.now() - started < 2_000)
      assert.equal(ctx.signal.aborted, true)
      await assert.rejects(slow.result, (e: grpc.ServiceError) => e.code !== grpc.status.OK)
      assert.ok(h.logs.lines().some((l) => l['msg'] === 'grpc shutdown grace period over, cancelling calls'))
    } finally {
      h.client.close()
    }
  })
})

describe('gRPC server configuration', () => {
  const { log } = captureLogger()
  const authenticator = devStaticTokenAuthenticator({
    token: TOKEN,
    tenant: 't',
    principal: 'p',
    roles: [],
  })

  test('plaintext on a non-loopback host is refused', () => {
    assert.throws(
      () => createGrpcServer(baseConfig({ host: '0.0.0.0' }), { log, authenticator }),
      (err: M2msecError) => err.code === 'ERR_CONFIG_INVALID' && /0\.0\.0\.0/.test(err.message),
    )
  })

  test('plaintext on a non-loopback host is allowed with allowInsecure', async () => {
    const server = createGrpcServer(baseConfig({ host: '0.0.0.0', allowInsecure: true }), {
      log,
      authenticator,
    })
    await server.shutdown()
  })

  test('the config schema requires caFile when client certificates are required', () => {
    const r = grpcServerConfigSchema({ port: 7001 }).safeParse({
      tls: { certFile: 'a', keyFile: 'b' },
    })
    assert.equal(r.success, false)
    assert.deepEqual(
      r.error?.issues.map((i) => i.path.join('.')),
      ['tls.caFile'],
    )
  })

  test('unreadable TLS files fail listen with ERR_CONFIG_INVALID naming the file', async () => {
    const server = createGrpcServer(
      baseConfig({
        tls: {
          certFile: '/nonexistent/cert.pem',
          keyFile: '/nonexistent/key.pem',
          requireClientCert: false,
        },
      }),
      { log, authenticator },
    )
    await assert.rejects(
      server.listen(),
      (err: M2msecError) => err.code === 'ERR_CONFIG_INVALID' && err.message.includes('/nonexistent/'),
    )
    await server.shutdown()
  })
})
