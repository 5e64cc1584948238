/** Configuration of a gRPC server: schema (with defaults and descriptions) and type. */
import { z } from 'zod'

/** TLS files of a gRPC server (PEM). */
export const grpcTlsConfigSchema = z
  .object({
    certFile: z.string().min(1).describe('server certificate chain (PEM)'),
    keyFile: z.string().min(1).describe('server private key (PEM)'),
    caFile: z.string().min(1).optional().describe('CA bundle (PEM) that client certificates must chain to'),
    requireClientCert: z
      .boolean()
      .default(true)
      .describe('require and verify a client certificate (mTLS); false = server-side TLS only'),
  })
  .refine((t) => !t.requireClientCert || t.caFile !== undefined, {
    message: 'caFile is required when requireClientCert is true',
    path: ['caFile'],
  })

/**
 * The `grpc` config section. Build it with the service's default port.
 *
 * @example
 * ```ts
 * const kmsConfigSchema = z.object({ grpc: grpcServerConfigSchema({ port: 7001 }).prefault({}) })
 * ```
 */
export function grpcServerConfigSchema(defaults: { port: number }) {
  return z.object({
    host: z.string().min(1).default('127.0.0.1').describe('listen address (0.0.0.0 or :: for all interfaces)'),
    port: z.number().int().min(0).max(65535).default(defaults.port).describe('listen port (0 = any free port)'),
    tls: grpcTlsConfigSchema
      .optional()
      .describe('TLS settings; unset = plaintext (loopback only unless allowInsecure)'),
    allowInsecure: z
      .boolean()
      .default(false)
      .describe('allow plaintext on a non-loopback address (only behind a mesh that terminates mTLS)'),
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(4 * 1024 * 1024)
      .describe('largest request or response message in bytes'),
    shutdownGraceMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('how long shutdown waits for in-flight calls before cancelling them'),
    reflection: z.boolean().default(true).describe('serve gRPC server reflection (grpcurl, Postman)'),
  })
}

/** TLS settings of a gRPC server. */
export type GrpcTlsConfig = z.output<typeof grpcTlsConfigSchema>

/** Settings of a gRPC server (see {@link grpcServerConfigSchema}). */
export interface GrpcServerConfig {
  readonly host: string
  readonly port: number
  readonly tls?: GrpcTlsConfig | undefined
  readonly allowInsecure?: boolean | undefined
  readonly maxMessageBytes: number
  readonly shutdownGraceMs: number
  readonly reflection: boolean
}
