/**
 * Creates secure environments from configuration. Backends are loaded on demand with dynamic
 * import, so the native PKCS#11 module is loaded only when a pkcs11 SE is configured (as
 * smallstep builds without cgo stubs).
 *
 * @example
 * ```ts
 * const se = await createSecureEnvironment({ name: 'software', type: 'software', options: { masterKeyFile: '/run/secrets/kms-master-key' } })
 * ```
 */
import { M2msecError } from '@m2msec/errors'
import type { SecureEnvironment } from './api.ts'
import type { SeConfig, SeConfigInput } from './config.ts'
import { SE_TYPES, seConfigSchema } from './config.ts'

type Loader<T extends SeConfig['type']> = (config: Extract<SeConfig, { type: T }>) => Promise<SecureEnvironment>

const LOADERS: { readonly [T in SeConfig['type']]: Loader<T> } = {
  software: async ({ name, options }) => {
    const { create, loadMasterKeyFile } = await import('./software/index.ts')
    const masterKey = await loadMasterKeyFile(options.masterKeyFile)
    try {
      return await create(name, { masterKey, cacheSize: options.cacheSize })
    } finally {
      masterKey.fill(0)
    }
  },
  pkcs11: async ({ name, options }) => (await import('./pkcs11/index.ts')).create(name, options),
  vault: async ({ name, options }) => (await import('./vault/index.ts')).create(name, options),
  'aws-kms': async ({ name, options }) => (await import('./aws-kms/index.ts')).create(name, options),
}

/**
 * Validates one SE configuration and creates the SE. Throws ERR_CONFIG_INVALID naming every
 * bad field, or listing the valid types for an unknown `type`.
 */
export async function createSecureEnvironment(config: SeConfigInput | SeConfig): Promise<SecureEnvironment> {
  const valid = parseSeConfig(config)
  const load = LOADERS[valid.type] as Loader<typeof valid.type>
  return load(valid)
}

/**
 * Creates every configured SE (names must be unique). If one fails, the ones already created
 * are closed again and the error is thrown.
 */
export async function createSecureEnvironments(
  configs: readonly (SeConfigInput | SeConfig)[],
): Promise<SecureEnvironment[]> {
  const valid = configs.map(parseSeConfig)
  const names = new Set<string>()
  for (const c of valid) {
    if (names.has(c.name)) {
      throw new M2msecError('ERR_CONFIG_INVALID', `secure environment name ${c.name} is used twice`, { field: 'name' })
    }
    names.add(c.name)
  }
  const created: SecureEnvironment[] = []
  try {
    for (const c of valid) created.push(await createSecureEnvironment(c))
    return created
  } catch (err) {
    await Promise.allSettled(created.map((se) => se.close()))
    throw err
  }
}

/** Validates a config entry (ERR_CONFIG_INVALID with every bad field named). */
export function parseSeConfig(config: unknown): SeConfig {
  const type = (config as { type?: unknown } | null)?.type
  if (typeof type !== 'string' || !(SE_TYPES as readonly string[]).includes(type)) {
    throw new M2msecError(
      'ERR_CONFIG_INVALID',
      `unknown secure environment type ${JSON.stringify(type ?? null)}; valid types: ${SE_TYPES.join(', ')}`,
      { field: 'type' },
    )
  }
  const parsed = seConfigSchema.safeParse(config)
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(entry)'}: ${i.message}`)
    throw new M2msecError('ERR_CONFIG_INVALID', `secure environment config is invalid: ${fields.join('; ')}`, {
      field: parsed.error.issues[0]?.path.join('.') ?? '',
    })
  }
  return parsed.data
}
