/**
 * Configuration schemas of the secure environments: one entry per SE instance,
 * `{ name, type, options }`, discriminated on `type`. Secret values (master key, PIN, tokens)
 * are never inline: options name the files that hold them.
 *
 * @example
 * ```yaml
 * secureEnvironments:
 *   - name: software
 *     type: software
 *     options: { masterKeyFile: /run/secrets/kms-master-key }
 *   - name: hsm-eu1
 *     type: pkcs11
 *     options: { modulePath: /usr/lib/softhsm/libsofthsm2.so, tokenLabel: kms, pinFile: /run/secrets/hsm-pin, protectionLevel: 1 }
 * ```
 */
import { z } from 'zod'
import { optionsSchema as awsKmsOptionsSchema } from './aws-kms/index.ts'
import { optionsSchema as vaultOptionsSchema } from './vault/index.ts'

export { awsKmsOptionsSchema, vaultOptionsSchema }

const protectionLevel = z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)])

/** Options of the `software` SE. */
export const softwareOptionsSchema = z
  .object({
    masterKeyFile: z
      .string()
      .min(1)
      .describe(
        'File holding the 32-byte master key that seals every key ref (raw, 64 hex digits or base64; e.g. `openssl rand -base64 32`).',
      ),
    cacheSize: z
      .number()
      .int()
      .min(0)
      .max(10_000_000)
      .default(10_000)
      .describe('Unsealed keys kept in memory (LRU); 0 disables the cache.'),
  })
  .strict()

/** Options of the `pkcs11` SE. */
export const pkcs11OptionsSchema = z
  .object({
    modulePath: z.string().min(1).describe('Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.'),
    tokenLabel: z.string().min(1).max(32).describe('Label of the token; the slot is found by label (slot ids change).'),
    pinFile: z.string().min(1).describe('File holding the user PIN (a trailing newline is ignored).'),
    protectionLevel: protectionLevel
      .default(3)
      .describe(
        'TS-0003 protection level published for this SE: 3 for a certified hardware HSM, 1 for SoftHSM (software in the KMS process).',
      ),
    workers: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe('Worker threads, each with one logged-in PKCS#11 session.'),
  })
  .strict()

/** Instance names: lowercase, digits and dashes (`software`, `hsm-eu1`). */
export const seNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/)
  .describe('Name of this SE instance, unique per KMS (lowercase letters, digits, dashes).')

/** The SE types the registry knows, in the order they are documented. */
export const SE_TYPES = ['software', 'pkcs11', 'vault', 'aws-kms'] as const

/** One SE instance. */
export const seConfigSchema = z.discriminatedUnion('type', [
  z.object({ name: seNameSchema, type: z.literal('software'), options: softwareOptionsSchema }).strict(),
  z.object({ name: seNameSchema, type: z.literal('pkcs11'), options: pkcs11OptionsSchema }).strict(),
  z.object({ name: seNameSchema, type: z.literal('vault'), options: vaultOptionsSchema }).strict(),
  z.object({ name: seNameSchema, type: z.literal('aws-kms'), options: awsKmsOptionsSchema }).strict(),
])

/** One SE instance as written in configuration (defaults not yet applied). */
export type SeConfigInput = z.input<typeof seConfigSchema>
/** One SE instance after validation (defaults applied). */
export type SeConfig = z.output<typeof seConfigSchema>
