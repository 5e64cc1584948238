/**
 * Authn service entry point. `--help` lists every setting, `--print-config` shows the
 * effective (redacted) configuration, `--check-config` validates it and exits.
 */
import { createLogger, runConfigCli, runUntilSignal, startTelemetry } from '@m2msec/runtime'
import { authnConfigSchema } from './config.ts'
import { startAuthn } from './app.ts'

const config = runConfigCli(
  authnConfigSchema,
  { envPrefix: 'M2MSEC_AUTHN_' },
  {
    name: 'm2msec-authn',
    description: 'm2msec authentication service (m2msec.authn.v1.Authentication) and JWKS endpoint',
  },
)
const log = createLogger({ level: config.log.level, service: 'authn' })

await runUntilSignal(log, async (onShutdown) => {
  onShutdown(startTelemetry({ serviceName: 'm2msec-authn', ...config.telemetry }), 'telemetry')
  const app = await startAuthn(config, log)
  onShutdown(app, 'authn')
  log.info({ grpc: app.address.address, jwks: `${app.jwksUrl}/.well-known/jwks.json` }, 'authn ready')
})
