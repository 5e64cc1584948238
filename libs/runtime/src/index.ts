/**
 * `@m2msec/runtime`: what every service's main.ts needs — configuration, logging, telemetry,
 * the gRPC server (health, reflection, authentication, error mapping) and graceful shutdown.
 *
 * @example
 * ```ts
 * const config = runConfigCli(kmsConfigSchema, { envPrefix: 'M2MSEC_KMS_' }, { name: 'm2msec-kms', description: 'KMS' })
 * const log = createLogger({ level: config.log.level, service: 'kms' })
 * await runUntilSignal(log, async (onShutdown) => {
 *   onShutdown(startTelemetry({ serviceName: 'kms', ...config.telemetry }), 'telemetry')
 *   const server = createGrpcServer(config.grpc, { log, authenticator })
 *   server.addUnaryService(KmsServiceService, handlers)
 *   onShutdown(server, 'grpc')
 *   await server.listen()
 * })
 * ```
 */
export {
  loadConfig,
  secret,
  isSecretSchema,
  envName,
  describeConfig,
  redactConfig,
  readSecretFile,
  REDACTED,
  type LoadConfigOptions,
  type ConfigField,
} from './config.ts'
export { runConfigCli, formatConfigHelp, type ConfigCliInfo, type ConfigCliIo } from './config-cli.ts'
export {
  createLogger,
  sanitizeForLog,
  isSecretFieldName,
  logConfigSchema,
  LOG_LEVELS,
  LOG_REDACTED,
  SECRET_NAME_SUFFIXES,
  type Logger,
  type LogLevel,
  type LoggerOptions,
} from './logger.ts'
export {
  startTelemetry,
  getTracer,
  getMeter,
  telemetryConfigSchema,
  type TelemetryOptions,
  type TelemetryShutdown,
} from './telemetry.ts'
export {
  runUntilSignal,
  type ShutdownHook,
  type OnShutdown,
  type RunUntilSignalOptions,
  type SignalSource,
} from './shutdown.ts'
export { systemClock, systemRandom, type Clock, type Random } from './clock.ts'
export { createTenantCaller, type TenantCaller, type TenantCallerOptions } from './grpc/tenant-call.ts'
export {
  toGrpcError,
  fromGrpcError,
  toRpcStatus,
  fromRpcStatus,
  grpcStatusOf,
  ERROR_DOMAIN,
  ERROR_CODE_METADATA,
  REQUEST_ID_METADATA,
  STATUS_DETAILS_METADATA,
  RETRY_PUSHBACK_METADATA,
  RETRY_AFTER_DETAIL,
  type GrpcErrorLike,
} from './grpc/errors.ts'
export {
  encodeRpcStatus,
  decodeRpcStatus,
  encodeErrorInfo,
  decodeErrorInfo,
  encodeRetryInfo,
  decodeRetryInfo,
  ERROR_INFO_TYPE_URL,
  RETRY_INFO_TYPE_URL,
  type RpcStatus,
  type ErrorInfo,
  type RetryInfo,
  type AnyMessage,
} from './grpc/status-details.ts'
export {
  chainAuthenticators,
  devStaticTokenAuthenticator,
  devMtlsAuthenticator,
  readBearerToken,
  subjectAltUris,
  ANONYMOUS_PRINCIPAL,
  type Principal,
  type Authenticator,
  type AuthRequest,
  type DevStaticTokenOptions,
} from './grpc/auth.ts'
export {
  tokenAuthenticator,
  platformServiceAuthenticator,
  PLATFORM_TENANT,
  SERVICE_ROLE,
  TENANT_METADATA,
  ACCESS_TOKEN_TYP,
  AUTHN_SIGNING_KEY_PREFIX,
  authnSigningKeyTenant,
  type TokenAuthenticatorOptions,
  type TokenKeySource,
  type VerifiedToken,
  type PlatformServiceOptions,
} from './grpc/token-auth.ts'
export {
  grpcServerConfigSchema,
  grpcTlsConfigSchema,
  type GrpcServerConfig,
  type GrpcTlsConfig,
} from './grpc/config.ts'
export { loadReflectionDefinition, type ReflectionSource } from './grpc/reflection.ts'
export {
  createGrpcServer,
  isLoopbackHost,
  type GrpcServer,
  type GrpcServerDeps,
  type CallContext,
  type UnaryHandler,
  type UnaryHandlers,
  type UnaryMethodNames,
  type RequestOf,
  type ResponseOf,
  type AddServiceOptions,
  type ListenAddress,
} from './grpc/server.ts'
export { promiseClient, type PromiseClient } from './grpc/client.ts'
export { serviceAuthConfigSchema, createServiceAuthenticator, type ServiceAuthConfig } from './grpc/service-auth.ts'
