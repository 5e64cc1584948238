/**
 * Registers the OpenTelemetry ESM loader hook (import-in-the-middle) so that auto-instrumentation
 * can patch ESM-imported packages such as @grpc/grpc-js (TOOLCHAIN pitfall 21: without it an
 * ESM app gets no gRPC spans and nothing warns). It must run before the app is loaded:
 *
 *   node --import @m2msec/runtime/otel-hook --import tsx services/kms/src/main.ts
 *
 * It only installs the hook; the SDK itself starts in main.ts through `startTelemetry()`.
 * Plain JavaScript on purpose: it is loaded before tsx.
 */
import { register } from 'node:module'

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url)
