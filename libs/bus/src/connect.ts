import { M2msecError } from '@m2msec/errors'
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node'

/** TLS settings for the NATS connection (PEM strings or file paths). */
export type NatsTlsOptions = NonNullable<NodeConnectionOptions['tls']>

/** Options of {@link connectNats}. Credentials are secrets: load them from files, never log them. */
export interface ConnectNatsOptions {
  /** One or more `nats://host:port` URLs. */
  servers: string | string[]
  /** Connection name shown in server monitoring; also the default event `source`. */
  name: string
  user?: string
  pass?: string
  token?: string
  tls?: NatsTlsOptions
  /** Timeout for the initial connection, ms. Default 5000. */
  timeoutMs?: number
}

const names = new WeakMap<NatsConnection, string>()

/**
 * Connects to NATS. Once connected, the client reconnects on its own forever (services keep
 * running through a NATS restart); the first connection must succeed, or this throws
 * `ERR_UNAVAILABLE` naming the servers (never the credentials).
 *
 * @example
 * ```ts
 * const nc = await connectNats({ servers: 'nats://127.0.0.1:4222', name: 'kms-1' })
 * onShutdown(() => nc.drain())
 * ```
 */
export async function connectNats(opts: ConnectNatsOptions): Promise<NatsConnection> {
  const options: NodeConnectionOptions = {
    servers: opts.servers,
    name: opts.name,
    timeout: opts.timeoutMs ?? 5_000,
    maxReconnectAttempts: -1,
    // Without this every request builds two Errors with stack traces up front, ~40 µs of CPU
    // per KV get or JetStream publish; our errors carry their own context.
    noAsyncTraces: true,
  }
  if (opts.user !== undefined) options.user = opts.user
  if (opts.pass !== undefined) options.pass = opts.pass
  if (opts.token !== undefined) options.token = opts.token
  if (opts.tls !== undefined) options.tls = opts.tls
  try {
    const nc = await connect(options)
    names.set(nc, opts.name)
    return nc
  } catch (err) {
    // URLs may carry user:pass@ — keep only host and port in the error.
    const servers = [opts.servers]
      .flat()
      .map((s) => s.replace(/\/\/[^@/]*@/, '//'))
      .join(',')
    throw new M2msecError('ERR_UNAVAILABLE', 'cannot connect to NATS', { servers }, { cause: err })
  }
}

/** The `name` given to {@link connectNats} for this connection, if it was made there. */
export function connectionName(nc: NatsConnection): string | undefined {
  return names.get(nc)
}
