import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base'
import { MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics'
import {
  createGrpcServer,
  devStaticTokenAuthenticator,
  getTracer,
  grpcServerConfigSchema,
  startTelemetry,
  type GrpcServer,
  type TelemetryShutdown,
} from '../src/index.ts'
import { ECHO_SERVICE, bearer, captureLogger, echoClient, echoRequest, loadEchoDefinition, unary } from './helpers.ts'

class TestMetricReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const TOKEN = 'dev-token-0123456789abcdef'
const def = loadEchoDefinition()
const exporter = new InMemorySpanExporter()
const metricReader = new TestMetricReader()
let stopTelemetry: TelemetryShutdown
let server: GrpcServer
let client: grpc.Client

before(async () => {
  stopTelemetry = startTelemetry({
    serviceName: 'runtime-test',
    enabled: true,
    traceExporter: exporter,
    metricReaders: [metricReader],
  })
  server = createGrpcServer(grpcServerConfigSchema({ port: 0 }).parse({}), {
    log: captureLogger().log,
    authenticator: devStaticTokenAuthenticator({
      token: TOKEN,
      tenant: 'demo',
      principal: 'admin',
      roles: [],
    }),
  })
  server.addUnaryService(def, {
    async Echo(req, ctx) {
      if (req.fail === 'm2msec') {
        const { M2msecError } = await import('@m2msec/errors')
        throw new M2msecError('ERR_NOT_FOUND', 'nope')
      }
      // A manual child span, as a service would create around an SE call.
      getTracer('test').startSpan('child').end()
      return {
        text: req.text,
        tenant: ctx.principal.tenant,
        principal: '',
        roles: [],
        via: '',
        requestId: ctx.requestId,
        aborted: false,
      }
    },
    async Ping() {
      throw new Error('unused')
    },
  })
  client = echoClient((await server.listen()).address)
})

after(async () => {
  client.close()
  await server.shutdown()
  await stopTelemetry()
})

test('without the ESM hook: the server wrapper records a SERVER span per call, continuing the caller trace', async () => {
  exporter.reset()
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const md = bearer(TOKEN)
  md.set('traceparent', `00-${traceId}-00f067aa0ba902b7-01`)
  await unary(client, def.Echo, echoRequest(), md).result
  await assert.rejects(unary(client, def.Echo, echoRequest({ fail: 'm2msec' }), bearer(TOKEN)).result)
  // SimpleSpanProcessor exports once async resource attributes (host.id) resolve.
  for (let i = 0; i < 500 && exporter.getFinishedSpans().length < 3; i++) await new Promise((r) => setTimeout(r, 10))
  const spans = exporter.getFinishedSpans()
  const servers = spans.filter((s) => s.name === `${ECHO_SERVICE}/Echo`)
  assert.equal(servers.length, 2, spans.map((s) => s.name).join(','))
  const [ok, failed] = servers
  assert.ok(ok && failed)
  assert.equal(ok.kind, SpanKind.SERVER)
  assert.equal(ok.spanContext().traceId, traceId)
  assert.equal(ok.parentSpanContext?.spanId, '00f067aa0ba902b7')
  assert.equal(ok.attributes['rpc.system'], 'grpc')
  assert.equal(ok.attributes['rpc.service'], ECHO_SERVICE)
  assert.equal(ok.attributes['rpc.method'], 'Echo')
  assert.equal(ok.attributes['rpc.grpc.status_code'], 0)
  assert.equal(ok.attributes['m2msec.tenant'], 'demo')
  const child = spans.find((s) => s.name === 'child')
  assert.equal(child?.parentSpanContext?.spanId, ok.spanContext().spanId, 'handler runs inside the server span')
  assert.equal(failed.attributes['rpc.grpc.status_code'], grpc.status.NOT_FOUND)
  assert.equal(failed.status.code, SpanStatusCode.ERROR)
})

test('the duration histogram and in-flight counter are recorded per method and status', async () => {
  const { resourceMetrics } = await metricReader.collect()
  const metrics = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
  const duration = metrics.find((m) => m.descriptor.name === 'm2msec.rpc.server.duration') as
    HistogramMetricData | undefined
  assert.ok(duration, metrics.map((m) => m.descriptor.name).join(','))
  assert.equal(duration.descriptor.unit, 's')
  const okPoint = duration.dataPoints.find(
    (p) => p.attributes['rpc.grpc.status_code'] === 0 && p.attributes['rpc.method'] === 'Echo',
  )
  assert.ok(okPoint && okPoint.value.count >= 1)
  const active = metrics.find((m) => m.descriptor.name === 'm2msec.rpc.server.active_calls')
  assert.ok(active)
  assert.equal(active.dataPoints[0]?.value, 0)
})

test('with the ESM hook (child process): grpc auto-instrumentation adds CLIENT and SERVER spans, ours nests inside', () => {
  const root = join(import.meta.dirname, '..', '..', '..')
  const r = spawnSync(
    process.execPath,
    ['--import', '@m2msec/runtime/otel-hook', '--import', 'tsx', join(import.meta.dirname, 'fixtures', 'otel-app.ts')],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  )
  assert.equal(r.status, 0, r.stderr)
  const line = r.stdout.split('\n').find((l) => l.startsWith('SPANS '))
  assert.ok(line, r.stdout + r.stderr)
  const spans = JSON.parse(line.slice('SPANS '.length)) as {
    name: string
    kind: number
    scope: string
    traceId: string
    spanId: string
    parentSpanId?: string
  }[]
  const auto = spans.filter((s) => s.scope === '@opentelemetry/instrumentation-grpc')
  const clientSpan = auto.find((s) => s.kind === SpanKind.CLIENT)
  const serverSpan = auto.find((s) => s.kind === SpanKind.SERVER)
  assert.ok(clientSpan && serverSpan, JSON.stringify(spans))
  assert.equal(serverSpan.name, `grpc.${ECHO_SERVICE}/Echo`)
  const ours = spans.find((s) => s.scope === '@m2msec/runtime')
  assert.ok(ours)
  assert.equal(ours.kind, SpanKind.INTERNAL)
  assert.equal(ours.parentSpanId, serverSpan.spanId)
  assert.equal(serverSpan.parentSpanId, clientSpan.spanId)
  assert.equal(new Set([clientSpan.traceId, serverSpan.traceId, ours.traceId]).size, 1)
})

test('disabled telemetry starts nothing and its shutdown resolves', async () => {
  await startTelemetry({ serviceName: 'x', enabled: false })()
})
