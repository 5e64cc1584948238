/**
 * Registry entry of the `aws-kms` secure environment (AWS KMS, or LocalStack via `endpoint`).
 * See kms-se.ts for the mapping of each SE operation onto the KMS API and its limits.
 */
import { z } from 'zod'
import { M2msecError } from '@m2msec/errors'
import type { SecureEnvironment } from '../api.ts'
import { createKmsClient } from './client.ts'
import { createCredentialSource } from './credentials.ts'
import { createAwsKmsSe } from './kms-se.ts'

/** Configuration of one aws-kms SE instance. */
export const optionsSchema = z
  .object({
    region: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .optional()
      .describe('AWS region (e.g. eu-west-1). Default: the AWS_REGION or AWS_DEFAULT_REGION environment variable.'),
    endpoint: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        'KMS endpoint URL. Default: https://kms.<region>.amazonaws.com. Set it for LocalStack or a VPC endpoint.',
      ),
    credentialsFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Shared credentials file (INI, as ~/.aws/credentials). Default: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.',
      ),
    profile: z.string().min(1).default('default').describe('Profile section to read from credentialsFile.'),
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000).describe('Timeout of one KMS API call in ms.'),
    pendingWindowInDays: z
      .number()
      .int()
      .min(7)
      .max(30)
      .default(7)
      .describe('Waiting period before AWS deletes a destroyed key (ScheduleKeyDeletion, 7..30 days).'),
    kmsCiphertext: z
      .boolean()
      .default(false)
      .describe(
        'Offer AES_256_GCM although KMS returns only its own ciphertext format: SealedData then carries the AWS blob with empty iv/tag, plaintexts are 1..4096 bytes and there is no interop with the key material elsewhere.',
      ),
    protectionLevel: z
      .union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)])
      .default(3)
      .describe('TS-0003 protection level published for this SE. AWS KMS keys live in FIPS 140-3 level 3 HSMs.'),
  })
  .strict()

/** Input accepted by {@link create} (defaults applied by the schema). */
export type AwsKmsSeOptions = z.input<typeof optionsSchema>

/**
 * Validates `options` and builds the SE. Reads credentials now (ERR_CONFIG_INVALID when none
 * are found) but does not call AWS: an unreachable KMS shows up as ERR_SE_UNAVAILABLE per call.
 *
 * @example
 * ```ts
 * const se = await create('aws-eu1', { region: 'eu-west-1', credentialsFile: '/run/secrets/aws' })
 * ```
 */
export async function create(name: string, options: unknown): Promise<SecureEnvironment> {
  const parsed = optionsSchema.safeParse(options ?? {})
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`)
    throw new M2msecError('ERR_CONFIG_INVALID', `aws-kms SE ${name}: ${fields.join('; ')}`, { secureEnvironment: name })
  }
  const o = parsed.data
  const region = o.region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION']
  if (!region) {
    throw new M2msecError('ERR_CONFIG_INVALID', `aws-kms SE ${name}: region is not set (option region or AWS_REGION)`, {
      secureEnvironment: name,
    })
  }
  const credentials = await createCredentialSource({
    file: o.credentialsFile,
    profile: o.profile,
  })
  const client = createKmsClient({
    endpoint: new URL(o.endpoint ?? `https://kms.${region}.amazonaws.com`),
    region,
    credentials,
    timeoutMs: o.timeoutMs,
  })
  return createAwsKmsSe({
    name,
    client,
    protectionLevel: o.protectionLevel,
    pendingWindowInDays: o.pendingWindowInDays,
    kmsCiphertext: o.kmsCiphertext,
  })
}
