/**
 * Registry entry of the `vault` secure environment (HashiCorp Vault >= 1.13 or OpenBao Transit).
 * See transit-se.ts for the mapping of each SE operation onto the transit API.
 */
import { z } from 'zod'
import { M2msecError } from '@m2msec/errors'
import type { SecureEnvironment } from '../api.ts'
import { createVaultClient } from './client.ts'
import { createVaultTransitSe } from './transit-se.ts'

/** Configuration of one vault SE instance. */
export const optionsSchema = z
  .object({
    address: z
      .url({ protocol: /^https?$/ })
      .describe(
        'Vault / OpenBao address, e.g. https://vault.example:8200 (VAULT_ADDR). For a private CA set NODE_EXTRA_CA_CERTS.',
      ),
    tokenFile: z
      .string()
      .min(1)
      .describe('File holding the Vault token (e.g. a Vault Agent sink). Re-read when Vault refuses the token.'),
    namespace: z.string().min(1).optional().describe('Vault Enterprise / OpenBao namespace (X-Vault-Namespace).'),
    mount: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/)
      .default('transit')
      .describe('Mount path of the transit secrets engine.'),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
      .default('m2msec.')
      .describe('Start of every transit key name this SE creates; keeps m2msec keys apart from others on the mount.'),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000).describe('Timeout of one Vault request in ms.'),
    protectionLevel: z
      .union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)])
      .default(2)
      .describe(
        'TS-0003 protection level published for this SE: 2 for software Vault, 3 with an HSM-backed seal and managed keys.',
      ),
  })
  .strict()

/** Input accepted by {@link create} (defaults applied by the schema). */
export type VaultSeOptions = z.input<typeof optionsSchema>

/**
 * Validates `options`, reads the token file (ERR_CONFIG_INVALID when unreadable) and builds
 * the SE. Vault itself is not contacted here: an unreachable Vault shows up per call as
 * ERR_SE_UNAVAILABLE.
 *
 * @example
 * ```ts
 * const se = await create('vault', { address: 'http://127.0.0.1:8200', tokenFile: '/run/secrets/vault-token' })
 * ```
 */
export async function create(name: string, options: unknown): Promise<SecureEnvironment> {
  const parsed = optionsSchema.safeParse(options ?? {})
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`)
    throw new M2msecError('ERR_CONFIG_INVALID', `vault SE ${name}: ${fields.join('; ')}`, { secureEnvironment: name })
  }
  const o = parsed.data
  const client = await createVaultClient({
    address: new URL(o.address),
    tokenFile: o.tokenFile,
    namespace: o.namespace,
    timeoutMs: o.timeoutMs,
  })
  return createVaultTransitSe({
    name,
    client,
    mount: o.mount,
    keyPrefix: o.keyPrefix,
    protectionLevel: o.protectionLevel,
  })
}
