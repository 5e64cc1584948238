/**
 * AWS credentials for the aws-kms SE: a shared credentials file (the `~/.aws/credentials`
 * INI format) when configured, otherwise the standard environment variables.
 */
import { readFile } from 'node:fs/promises'
import { M2msecError } from '@m2msec/errors'
import type { AwsCredentials } from './sigv4.ts'

/** Yields the current credentials; `refresh` re-reads them (after an expired-token reply). */
export interface CredentialSource {
  get(): Promise<AwsCredentials>
  refresh(): Promise<AwsCredentials>
}

/**
 * Reads credentials from `file` (profile `profile`) or, without a file, from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. Fails with
 * ERR_CONFIG_INVALID when none are found; the message never contains a secret.
 *
 * @example
 * ```ts
 * const source = await createCredentialSource({ file: '/run/secrets/aws', profile: 'kms' })
 * const creds = await source.get()
 * ```
 */
export async function createCredentialSource(opts: {
  readonly file?: string | undefined
  readonly profile: string
  readonly env?: NodeJS.ProcessEnv
}): Promise<CredentialSource> {
  const env = opts.env ?? process.env
  const load = async (): Promise<AwsCredentials> =>
    opts.file === undefined ? fromEnv(env) : fromFile(opts.file, opts.profile)
  let current = await load()
  return {
    get: () => Promise.resolve(current),
    refresh: async () => {
      current = await load()
      return current
    },
  }
}

function fromEnv(env: NodeJS.ProcessEnv): AwsCredentials {
  const accessKeyId = env['AWS_ACCESS_KEY_ID']
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY']
  if (!accessKeyId || !secretAccessKey) {
    throw new M2msecError(
      'ERR_CONFIG_INVALID',
      'aws-kms: no credentials; set credentialsFile or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
    )
  }
  const sessionToken = env['AWS_SESSION_TOKEN']
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey }
}

async function fromFile(file: string, profile: string): Promise<AwsCredentials> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new M2msecError('ERR_CONFIG_INVALID', `aws-kms: cannot read credentials file ${file}`, {}, { cause: err })
  }
  const values = parseIniSection(text, profile)
  const accessKeyId = values.get('aws_access_key_id')
  const secretAccessKey = values.get('aws_secret_access_key')
  if (!accessKeyId || !secretAccessKey) {
    throw new M2msecError(
      'ERR_CONFIG_INVALID',
      `aws-kms: profile [${profile}] in ${file} lacks aws_access_key_id or aws_secret_access_key`,
    )
  }
  const sessionToken = values.get('aws_session_token')
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey }
}

/** The `key = value` lines of one `[section]`; `#` and `;` start comment lines. */
function parseIniSection(text: string, section: string): Map<string, string> {
  const values = new Map<string, string>()
  let inSection = false
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      inSection = header[1]?.trim() === section
      continue
    }
    const eq = line.indexOf('=')
    if (inSection && eq > 0) values.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim())
  }
  return values
}
