/**
 * Groups service entry point. `--help` lists every setting, `--print-config` shows the effective
 * (redacted) configuration, `--check-config` validates it and exits.
 */
import { createLogger, runConfigCli, runUntilSignal, startTelemetry } from '@m2msec/runtime'
import { groupsConfigSchema } from './config.ts'
import { startGroups } from './app.ts'

const config = runConfigCli(
  groupsConfigSchema,
  { envPrefix: 'M2MSEC_GROUPS_' },
  { name: 'm2msec-groups', description: 'm2msec groups service (m2msec.groups.v1.Groups)' },
)
const log = createLogger({ level: config.log.level, service: 'groups' })

await runUntilSignal(log, async (onShutdown) => {
  onShutdown(startTelemetry({ serviceName: 'm2msec-groups', ...config.telemetry }), 'telemetry')
  const app = await startGroups(config, log)
  onShutdown(app, 'groups')
  log.info({ grpc: app.address.address, profile: config.profile }, 'groups ready')
})
