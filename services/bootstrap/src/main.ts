/**
 * Bootstrap service entry point. `--help` lists every setting, `--print-config` shows the
 * effective (redacted) configuration, `--check-config` validates it and exits.
 */
import { createLogger, runConfigCli, runUntilSignal, startTelemetry } from '@m2msec/runtime'
import { bootstrapConfigSchema } from './config.ts'
import { startBootstrap } from './app.ts'

const config = runConfigCli(
  bootstrapConfigSchema,
  { envPrefix: 'M2MSEC_BOOTSTRAP_' },
  {
    name: 'm2msec-bootstrap',
    description: 'm2msec bootstrap service: GBA BSF (Ub over HTTP, Zn and subscriber provisioning over gRPC)',
  },
)
const log = createLogger({ level: config.log.level, service: 'bootstrap' })

await runUntilSignal(log, async (onShutdown) => {
  onShutdown(startTelemetry({ serviceName: 'm2msec-bootstrap', ...config.telemetry }), 'telemetry')
  const app = await startBootstrap(config, log)
  onShutdown(app, 'bootstrap')
  log.info({ grpc: app.address.address, ub: app.ubUrl }, 'bootstrap ready')
})
