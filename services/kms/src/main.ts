/**
 * KMS service entry point. `--help` lists every setting, `--print-config` shows the effective
 * (redacted) configuration, `--check-config` validates it and exits.
 */
import { createLogger, runConfigCli, runUntilSignal, startTelemetry } from '@m2msec/runtime'
import { kmsConfigSchema } from './config.ts'
import { startKms } from './app.ts'

const config = runConfigCli(
  kmsConfigSchema,
  { envPrefix: 'M2MSEC_KMS_' },
  {
    name: 'm2msec-kms',
    description: 'm2msec key-management service (m2msec.kms.v1.KeyManagement)',
  },
)
const log = createLogger({ level: config.log.level, service: 'kms' })

await runUntilSignal(log, async (onShutdown) => {
  onShutdown(startTelemetry({ serviceName: 'm2msec-kms', ...config.telemetry }), 'telemetry')
  const app = await startKms(config, log)
  onShutdown(app, 'kms')
  log.info({ grpc: app.address.address, profile: config.profile }, 'kms ready')
})
