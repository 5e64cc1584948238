/**
 * Authz service entry point. `--help` lists every setting, `--print-config` shows the effective
 * (redacted) configuration, `--check-config` validates it and exits.
 */
import { createLogger, runConfigCli, runUntilSignal, startTelemetry } from '@m2msec/runtime'
import { authzConfigSchema } from './config.ts'
import { startAuthz } from './app.ts'

const config = runConfigCli(
  authzConfigSchema,
  { envPrefix: 'M2MSEC_AUTHZ_' },
  {
    name: 'm2msec-authz',
    description: 'm2msec authorization service, the oneM2M PDP (m2msec.authz.v1.Authorization)',
  },
)
const log = createLogger({ level: config.log.level, service: 'authz' })

await runUntilSignal(log, async (onShutdown) => {
  onShutdown(startTelemetry({ serviceName: 'm2msec-authz', ...config.telemetry }), 'telemetry')
  const app = await startAuthz(config, log)
  onShutdown(app, 'authz')
  log.info({ grpc: app.address.address, profile: config.profile }, 'authz ready')
})
