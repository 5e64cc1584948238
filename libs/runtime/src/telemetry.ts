/**
 * OpenTelemetry for services: traces and metrics over OTLP/HTTP when an endpoint is configured.
 *
 * ESM caveat (TOOLCHAIN pitfall 21): the gRPC auto-instrumentation only sees `@grpc/grpc-js`
 * when the import hook is registered before the app loads, i.e. start services with
 * `node --import @m2msec/runtime/otel-hook --import tsx src/main.ts`. Without the hook the
 * spans created by `createGrpcServer` (one SERVER span per call) still exist; only the
 * library's own client/server spans are missing.
 */
import { metrics, trace, type Meter, type Tracer } from '@opentelemetry/api'
import { NodeSDK } from '@opentelemetry/sdk-node'
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http'
import {
  BatchSpanProcessor,
  NoopSpanProcessor,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics'
import { z } from 'zod'

/** Schema of the `telemetry` config section. */
export const telemetryConfigSchema = z.object({
  enabled: z
    .boolean()
    .default(true)
    .describe('start the OpenTelemetry SDK (traces, metrics, context propagation) when otlpEndpoint is set'),
  otlpEndpoint: z
    .url()
    .optional()
    .describe(
      'OTLP/HTTP base URL, e.g. http://otel-collector:4318; unset = no telemetry (no spans, no trace context propagation)',
    ),
  metricExportIntervalMs: z.number().int().min(1000).default(60_000).describe('metric export period'),
})

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  readonly serviceName: string
  readonly enabled: boolean
  /** OTLP/HTTP base URL; `/v1/traces` and `/v1/metrics` are appended. */
  readonly otlpEndpoint?: string | undefined
  readonly metricExportIntervalMs?: number | undefined
  /** Test hook: export spans synchronously to this exporter (e.g. `InMemorySpanExporter`). */
  readonly traceExporter?: SpanExporter | undefined
  /** Test hook: extra metric readers (e.g. a `PeriodicExportingMetricReader` on `InMemoryMetricExporter`). */
  readonly metricReaders?: readonly IMetricReader[] | undefined
}

/** Flushes and stops telemetry. */
export type TelemetryShutdown = () => Promise<void>

/** gRPC methods whose automatic spans are noise (probes and tooling). */
const IGNORED_GRPC_METHODS = ['Check', 'Watch', 'ServerReflectionInfo']

/**
 * Starts the OpenTelemetry SDK with gRPC auto-instrumentation and W3C trace-context
 * propagation, when there is somewhere to send the data (an OTLP endpoint, or a test
 * exporter/reader). Without one, nothing starts: recording spans nobody exports cost 70-100 µs
 * of CPU per call here (Node 20's AsyncLocalStorage runs hooks on every promise), for trace ids
 * no backend could resolve. Set the endpoint on every service, or trace context stops at the
 * services without one. Returns the shutdown.
 *
 * @example
 * ```ts
 * onShutdown(startTelemetry({ serviceName: 'kms', ...config.telemetry }))
 * ```
 */
export function startTelemetry(opts: TelemetryOptions): TelemetryShutdown {
  const exports =
    opts.otlpEndpoint !== undefined || opts.traceExporter !== undefined || (opts.metricReaders ?? []).length > 0
  if (!opts.enabled || !exports) return async () => {}
  const endpoint = opts.otlpEndpoint?.replace(/\/+$/, '')

  const spanProcessors: SpanProcessor[] = []
  if (endpoint !== undefined) {
    spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` })))
  }
  if (opts.traceExporter !== undefined) spanProcessors.push(new SimpleSpanProcessor(opts.traceExporter))
  // Metrics only (a test reader): NodeSDK registers no tracer provider for an empty list; a
  // no-op processor keeps real spans, so trace context still propagates.
  if (spanProcessors.length === 0) spanProcessors.push(new NoopSpanProcessor())

  const metricReaders: IMetricReader[] = [...(opts.metricReaders ?? [])]
  if (endpoint !== undefined) {
    metricReaders.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${endpoint}/v1/metrics` }),
        exportIntervalMillis: opts.metricExportIntervalMs ?? 60_000,
      }),
    )
  }

  const sdk = new NodeSDK({
    serviceName: opts.serviceName,
    spanProcessors,
    metricReaders,
    // Logs go to stdout through pino; without this NodeSDK would start an OTLP log exporter.
    logRecordProcessors: [],
    instrumentations: [new GrpcInstrumentation({ ignoreGrpcMethods: IGNORED_GRPC_METHODS })],
  })
  sdk.start()
  running += 1
  let stopped: Promise<void> | undefined
  return () =>
    (stopped ??= sdk.shutdown().finally(() => {
      running -= 1
    }))
}

/** SDKs started by {@link startTelemetry} and not shut down (tests may start more than one). */
let running = 0

/**
 * Whether an OpenTelemetry SDK is running in this process. The gRPC server skips span and
 * context work per call when none is: with no SDK there is nobody to record or export it.
 */
export function telemetryRunning(): boolean {
  return running > 0
}

/**
 * The tracer for manual spans (a no-op tracer until {@link startTelemetry} ran).
 *
 * @example
 * ```ts
 * await getTracer('kms').startActiveSpan('se.sign', async (span) => { try { ... } finally { span.end() } })
 * ```
 */
export function getTracer(scope = 'm2msec'): Tracer {
  return trace.getTracer(scope)
}

/**
 * The meter for service metrics (a no-op meter until {@link startTelemetry} ran with a reader).
 *
 * @example
 * ```ts
 * const signs = getMeter('kms').createCounter('m2msec.kms.sign.count')
 * signs.add(1, { se: 'pkcs11' })
 * ```
 */
export function getMeter(scope = 'm2msec'): Meter {
  return metrics.getMeter(scope)
}
