/**
 * The gRPC server every service runs: TLS or loopback plaintext, the standard health service,
 * server reflection, and a wrapper around each unary handler that authenticates the call,
 * builds its context, maps errors, records a span and a duration metric, and tracks in-flight
 * calls for graceful shutdown. Health and reflection answer without credentials.
 */
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import { HealthImplementation } from 'grpc-health-check'
import { ReflectionService } from '@grpc/reflection'
import {
  SpanKind,
  SpanStatusCode,
  INVALID_SPAN_CONTEXT,
  context as otelContext,
  isSpanContextValid,
  propagation,
  trace,
  type TextMapGetter,
} from '@opentelemetry/api'
import { M2msecError, isM2msecError } from '@m2msec/errors'
import type { Logger } from '../logger.ts'
import { getMeter, getTracer, telemetryRunning } from '../telemetry.ts'
import { ANONYMOUS_PRINCIPAL, type AuthRequest, type Authenticator, type Principal } from './auth.ts'
import type { GrpcServerConfig } from './config.ts'
import { REQUEST_ID_METADATA, toGrpcError } from './errors.ts'
import { loadReflectionDefinition, type ReflectionSource } from './reflection.ts'

/** The span of every call while no telemetry SDK runs: records nothing, costs nothing. */
const UNTRACED_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT)

/** Everything a handler knows about its call besides the request. */
export interface CallContext {
  readonly principal: Principal
  /** From the client's `x-request-id` when well-formed, else a new UUID; in every log line. */
  readonly requestId: string
  /** The client address (`ipv4:127.0.0.1:53412`). */
  readonly peer: string
  /** Full method path, `/m2msec.kms.v1.KmsService/Encrypt`. */
  readonly method: string
  readonly deadline?: Date
  /** Aborted when the client cancels, the deadline passes, or shutdown gives up waiting. */
  readonly signal: AbortSignal
  /** Child logger with `requestId` and `rpc` bound. */
  readonly log: Logger
  /** Incoming metadata (already authenticated; do not log it whole). */
  readonly metadata: grpc.Metadata
  /**
   * DER of the client certificate the caller presented on a TLS connection, present only when
   * the TLS handshake verified it against the server's CA bundle (`grpc.tls.caFile`); set for
   * every method, public ones included (RFC 8705-style client authentication). It is the leaf
   * only (no intermediates). Never log it.
   */
  readonly peerCertificateDer?: Buffer
}

/** A typed unary handler. Throw M2msecError for expected failures. */
export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>

/** The request type of a method definition (ts-proto `…Service` entry or grpc-js MethodDefinition). */
export type RequestOf<M> = M extends { requestDeserialize: (bytes: Buffer) => infer Req } ? Req : never
/** The response type of a method definition. */
export type ResponseOf<M> = M extends { responseSerialize: (value: infer Res) => Buffer } ? Res : never

/** Names of the unary methods of a service definition. */
export type UnaryMethodNames<D> = {
  [K in keyof D]: D[K] extends { requestStream: infer RS; responseStream: infer SS }
    ? false extends RS
      ? false extends SS
        ? K
        : never
      : never
    : never
}[keyof D] &
  string

/**
 * One handler per unary method, typed from the definition.
 *
 * @example
 * ```ts
 * const handlers: UnaryHandlers<typeof KmsServiceService> = {
 *   async encrypt(req, ctx) { return EncryptResponse.fromPartial({ ... }) }, // req: EncryptRequest
 * }
 * ```
 */
export type UnaryHandlers<D> = {
  readonly [K in UnaryMethodNames<D>]: UnaryHandler<RequestOf<D[K]>, ResponseOf<D[K]>>
}

/** Options of {@link GrpcServer.addUnaryService}. */
export interface AddServiceOptions<D> {
  /**
   * Methods callable without credentials (e.g. a token endpoint that authenticates by an
   * assertion in the request). Their handlers get {@link ANONYMOUS_PRINCIPAL}.
   */
  readonly unauthenticated?: readonly UnaryMethodNames<D>[]
}

/** Collaborators of {@link createGrpcServer}. */
export interface GrpcServerDeps {
  readonly log: Logger
  readonly authenticator: Authenticator
  /** Descriptors for reflection (required for the service's own APIs to be listed). */
  readonly reflection?: readonly ReflectionSource[]
}

/** Address a server listens on. */
export interface ListenAddress {
  /** `host:port`, with IPv6 hosts in brackets. */
  readonly address: string
  readonly port: number
}

/** A gRPC server built by {@link createGrpcServer}. */
export interface GrpcServer {
  /**
   * Registers a service; every unary method needs a handler. Streaming methods of the
   * definition answer UNIMPLEMENTED. Call before {@link GrpcServer.listen}.
   */
  addUnaryService<D extends grpc.ServiceDefinition>(
    definition: D,
    handlers: UnaryHandlers<D>,
    opts?: AddServiceOptions<D>,
  ): void
  /** Binds (port 0 = a free port), then reports every added service SERVING. */
  listen(): Promise<ListenAddress>
  /**
   * Health NOT_SERVING, stop accepting calls, wait for in-flight calls up to
   * `shutdownGraceMs`, then cancel the rest. Idempotent.
   */
  shutdown(): Promise<void>
  /** Sets the health status of one service (`''` = the whole server). */
  setServing(service: string, serving: boolean): void
  /** Calls currently being handled. */
  readonly inFlight: number
}

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost', 'ip6-loopback'])

/** True for addresses only reachable from this host. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (LOOPBACK_NAMES.has(h)) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h)
  return false
}

function formatHostPort(host: string, port: number): string {
  const h = host.replace(/^\[|\]$/g, '')
  return isIP(h) === 6 ? `[${h}]:${port}` : `${h}:${port}`
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/

function pickRequestId(metadata: grpc.Metadata): string {
  const v = metadata.get('x-request-id')[0]
  return typeof v === 'string' && REQUEST_ID_RE.test(v) ? v : randomUUID()
}

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (carrier) => Object.keys(carrier.getMap()),
  get: (carrier, key) => {
    const values = carrier.get(key).filter((v): v is string => typeof v === 'string')
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values
  },
}

function splitPath(path: string): { service: string; method: string } {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path)
  return { service: m?.[1] ?? 'unknown', method: m?.[2] ?? path }
}

// Client errors are logged at info; these statuses mean something is wrong on our side.
const SERVER_FAULTS = new Set([
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
  grpc.status.DATA_LOSS,
  grpc.status.UNIMPLEMENTED,
])

/**
 * Creates a gRPC server. Plaintext is refused on a non-loopback host unless
 * `config.allowInsecure` is true (`ERR_CONFIG_INVALID`).
 *
 * @example
 * ```ts
 * const server = createGrpcServer(config.grpc, { log, authenticator, reflection: [{ descriptorSetPath }] })
 * server.addUnaryService(KmsServiceService, createKmsGrpcService(ops))
 * const { address } = await server.listen()
 * onShutdown(server)
 * ```
 */
export function createGrpcServer(config: GrpcServerConfig, deps: GrpcServerDeps): GrpcServer {
  if (config.tls === undefined && !isLoopbackHost(config.host) && config.allowInsecure !== true) {
    throw new M2msecError(
      'ERR_CONFIG_INVALID',
      `refusing plaintext gRPC on non-loopback host ${config.host}: configure grpc.tls, or set grpc.allowInsecure when a mesh provides mTLS`,
      { host: config.host },
    )
  }
  const log = deps.log
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_send_message_length': config.maxMessageBytes,
  })
  const health = new HealthImplementation({ '': 'NOT_SERVING' })
  health.addToServer(server)
  // What each service should report once listening; shutdown overrides it to NOT_SERVING.
  const desired = new Map<string, boolean>([['', true]])
  let listening = false
  let shuttingDown = false
  let stopping: Promise<void> | undefined

  const tracer = getTracer('@m2msec/runtime')
  const meter = getMeter('@m2msec/runtime')
  const duration = meter.createHistogram('m2msec.rpc.server.duration', {
    description: 'duration of gRPC calls handled, including authentication',
    unit: 's',
  })
  const active = meter.createUpDownCounter('m2msec.rpc.server.active_calls', {
    description: 'gRPC calls in progress',
  })

  const inFlight = new Set<AbortController>()

  function applyHealth(service: string): void {
    const serving = listening && !shuttingDown && desired.get(service) === true
    health.setStatus(service, serving ? 'SERVING' : 'NOT_SERVING')
  }

  function wrapUnary(
    path: string,
    handler: UnaryHandler<unknown, unknown>,
    isPublic: boolean,
  ): grpc.handleUnaryCall<unknown, unknown> {
    const { service, method } = splitPath(path)
    const attributes = { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method }
    return (call, callback) => {
      const started = performance.now()
      const requestId = pickRequestId(call.metadata)
      const controller = new AbortController()
      inFlight.add(controller)
      // No SDK running: no span, no metrics, no context (the no-op span keeps the code uniform
      // but its attribute objects would still be built per call).
      const traced = telemetryRunning()
      if (traced) active.add(1, attributes)
      const onCancel = (): void => controller.abort(new M2msecError('ERR_UNAVAILABLE', 'call cancelled'))
      call.on('cancelled', onCancel)
      const rawDeadline = call.getDeadline()
      const deadlineMs = rawDeadline instanceof Date ? rawDeadline.getTime() : rawDeadline
      const deadline = Number.isFinite(deadlineMs) ? new Date(deadlineMs) : undefined
      const deadlineTimer =
        deadline === undefined
          ? undefined
          : setTimeout(
              () => controller.abort(new M2msecError('ERR_UNAVAILABLE', 'deadline exceeded')),
              Math.max(0, deadline.getTime() - Date.now()),
            )

      // With the ESM hook, grpc instrumentation already made a SERVER span current: nest under
      // it. Without it, this is the server span and the parent comes from the metadata.
      const instrumented = traced && trace.getActiveSpan() !== undefined
      const parent = !traced
        ? undefined
        : instrumented
          ? otelContext.active()
          : propagation.extract(otelContext.active(), call.metadata, metadataGetter)
      const span =
        parent === undefined
          ? UNTRACED_SPAN
          : tracer.startSpan(
              instrumented ? `m2msec ${service}/${method}` : `${service}/${method}`,
              {
                kind: instrumented ? SpanKind.INTERNAL : SpanKind.SERVER,
                attributes: { ...attributes, 'm2msec.request_id': requestId },
              },
              parent,
            )
      const spanContext = span.spanContext()
      // The child logger is built only when something is logged (7 µs per call otherwise).
      let childLog: Logger | undefined
      const callLog = (): Logger =>
        (childLog ??= log.child(
          isSpanContextValid(spanContext)
            ? { requestId, rpc: path, traceId: spanContext.traceId }
            : { requestId, rpc: path },
        ))

      const finish = (code: grpc.status): void => {
        if (deadlineTimer !== undefined) clearTimeout(deadlineTimer)
        call.removeListener('cancelled', onCancel)
        inFlight.delete(controller)
        if (!traced) return
        active.add(-1, attributes)
        const seconds = (performance.now() - started) / 1000
        duration.record(seconds, { ...attributes, 'rpc.grpc.status_code': code })
        span.setAttribute('rpc.grpc.status_code', code)
        if (code !== grpc.status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: grpc.status[code] })
        span.end()
      }

      const handle = async (): Promise<
        { response: unknown; trailer: grpc.Metadata } | { error: grpc.ServiceError }
      > => {
        try {
          let principal: Principal
          const peerCertificate = call.getAuthContext().sslPeerCertificate
          if (isPublic) {
            principal = ANONYMOUS_PRINCIPAL
          } else {
            const req: AuthRequest =
              peerCertificate === undefined ? { metadata: call.metadata } : { metadata: call.metadata, peerCertificate }
            principal = await deps.authenticator.authenticate(req)
          }
          if (traced) {
            span.setAttributes({
              'm2msec.tenant': principal.tenant,
              'm2msec.principal': principal.id,
              'm2msec.auth': principal.via,
            })
          }
          const ctx: CallContext = {
            principal,
            requestId,
            peer: call.getPeer(),
            method: path,
            ...(deadline === undefined ? {} : { deadline }),
            signal: controller.signal,
            get log() {
              return callLog()
            },
            metadata: call.metadata,
            ...(peerCertificate === undefined ? {} : { peerCertificateDer: peerCertificate.raw }),
          }
          if (call.request instanceof MalformedRequest) {
            throw new M2msecError('ERR_INVALID_ARGUMENT', 'request is not a valid protobuf message of this method')
          }
          const response = await handler(call.request, ctx)
          const trailer = new grpc.Metadata()
          trailer.set(REQUEST_ID_METADATA, requestId)
          finish(grpc.status.OK)
          if (log.isLevelEnabled('debug')) {
            callLog().debug({ durationMs: Math.round(performance.now() - started) }, 'rpc ok')
          }
          return { response, trailer }
        } catch (err) {
          const grpcErr = toGrpcError(err, requestId)
          finish(grpcErr.code)
          const durationMs = Math.round(performance.now() - started)
          if (SERVER_FAULTS.has(grpcErr.code) || !isM2msecError(err)) {
            span.recordException(err instanceof Error ? err : new Error(String(err)))
            callLog().error({ err, durationMs }, 'rpc failed')
          } else {
            callLog().info(
              {
                code: err.code,
                status: grpc.status[grpcErr.code],
                reason: err.message,
                durationMs,
              },
              'rpc rejected',
            )
          }
          return { error: grpcErr }
        }
      }
      void (parent === undefined ? handle() : otelContext.with(trace.setSpan(parent, span), handle))
        .then((outcome) => {
          // Outside the try: a throw from callback (e.g. serialisation) must not answer twice.
          if ('error' in outcome) callback(outcome.error)
          else callback(null, outcome.response, outcome.trailer)
        })
        .catch((err: unknown) => callLog().error({ err }, 'rpc answer failed'))
    }
  }

  return {
    addUnaryService(definition, handlers, opts) {
      if (listening) throw new M2msecError('ERR_FAILED_PRECONDITION', 'addUnaryService must be called before listen')
      const implementation: grpc.UntypedServiceImplementation = {}
      const tolerant: Record<string, grpc.MethodDefinition<unknown, unknown>> = {}
      const publicMethods = new Set<string>(opts?.unauthenticated ?? [])
      let serviceName: string | undefined
      for (const [name, method] of Object.entries(definition)) {
        serviceName ??= splitPath(method.path).service
        if (method.requestStream || method.responseStream) continue
        const handler = (handlers as Readonly<Record<string, UnaryHandler<unknown, unknown> | undefined>>)[name]
        if (typeof handler !== 'function') {
          throw new M2msecError('ERR_INVALID_ARGUMENT', `no handler for ${method.path}`, {
            method: method.path,
          })
        }
        implementation[name] = wrapUnary(method.path, handler, publicMethods.has(name))
        tolerant[name] = { ...method, requestDeserialize: tolerantDeserializer(method.requestDeserialize) }
      }
      for (const [name, method] of Object.entries(definition)) tolerant[name] ??= method
      server.addService(tolerant, implementation)
      if (serviceName !== undefined) {
        desired.set(serviceName, true)
        applyHealth(serviceName)
      }
    },

    async listen() {
      if (config.reflection) {
        new ReflectionService(loadReflectionDefinition(deps.reflection ?? [])).addToServer(server)
      }
      const credentials = await buildCredentials(config)
      const port = await new Promise<number>((resolve, reject) => {
        server.bindAsync(formatHostPort(config.host, config.port), credentials, (err, boundPort) =>
          err === null ? resolve(boundPort) : reject(err),
        )
      }).catch((err: unknown) => {
        throw new M2msecError(
          'ERR_UNAVAILABLE',
          `cannot listen on ${formatHostPort(config.host, config.port)}`,
          {},
          { cause: err },
        )
      })
      listening = true
      for (const service of desired.keys()) applyHealth(service)
      const address = formatHostPort(config.host, port)
      log.info(
        { address, tls: config.tls !== undefined, mtls: config.tls?.requireClientCert === true },
        'grpc listening',
      )
      return { address, port }
    },

    shutdown() {
      shuttingDown = true
      stopping ??= (async () => {
        for (const service of desired.keys()) applyHealth(service)
        log.info({ inFlight: inFlight.size, graceMs: config.shutdownGraceMs }, 'grpc shutting down')
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            log.warn({ inFlight: inFlight.size }, 'grpc shutdown grace period over, cancelling calls')
            for (const c of inFlight) c.abort(new M2msecError('ERR_UNAVAILABLE', 'server shutting down'))
            server.forceShutdown()
            resolve()
          }, config.shutdownGraceMs)
          server.tryShutdown(() => {
            clearTimeout(timer)
            resolve()
          })
        })
        log.info('grpc stopped')
      })()
      return stopping
    },

    setServing(service, serving) {
      desired.set(service, serving)
      applyHealth(service)
    },

    get inFlight() {
      return inFlight.size
    },
  }
}

async function buildCredentials(config: GrpcServerConfig): Promise<grpc.ServerCredentials> {
  const tls = config.tls
  if (tls === undefined) return grpc.ServerCredentials.createInsecure()
  const read = async (file: string): Promise<Buffer> => {
    try {
      return await readFile(file)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
      throw new M2msecError('ERR_CONFIG_INVALID', `cannot read TLS file ${file}: ${code}`, {
        path: file,
      })
    }
  }
  const [certificate, privateKey, caCertificate] = await Promise.all([
    read(tls.certFile),
    read(tls.keyFile),
    tls.caFile === undefined ? null : read(tls.caFile),
  ])
  return new TlsServerCredentials(certificate, privateKey, caCertificate, tls.requireClientCert)
}

/** Stands in for a request whose bytes did not decode, so the handler wrapper can answer it. */
class MalformedRequest {}

/**
 * grpc-js answers a request that fails to decode with INTERNAL; a malformed request is the
 * caller's fault, so it is decoded here and turned into INVALID_ARGUMENT after authentication.
 */
function tolerantDeserializer(decode: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  return (bytes) => {
    try {
      return decode(bytes)
    } catch {
      return new MalformedRequest()
    }
  }
}

/**
 * TLS server credentials. With a CA, client certificates are requested; with
 * `requireClientCert: false` callers without one still connect (they may present a token).
 * grpc-js shows a client certificate to handlers only when it verified against the CA
 * (`getAuthContext` checks `socket.authorized`), so an unverified certificate is never trusted.
 * (`ServerCredentials.createSsl` cannot request a certificate without requiring it.)
 */
class TlsServerCredentials extends grpc.ServerCredentials {
  constructor(certificate: Buffer, privateKey: Buffer, ca: Buffer | null, requireClientCert: boolean) {
    super(
      { requestCert: ca !== null, rejectUnauthorized: ca !== null && requireClientCert },
      { cert: [certificate], key: [privateKey], ...(ca === null ? {} : { ca }) },
    )
  }
  _equals(other: grpc.ServerCredentials): boolean {
    return this === other
  }
}
