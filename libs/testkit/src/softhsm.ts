import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { M2msecError } from '@m2msec/errors'

const run = promisify(execFile)

/** Path of the SoftHSM2 PKCS#11 module installed by Debian's `softhsm2` package. */
export const SOFTHSM_MODULE_PATH = '/usr/lib/softhsm/libsofthsm2.so'

/** A fresh SoftHSM2 token in this process's private token directory. */
export interface SoftHsmToken {
  /** The PKCS#11 module to load (`C_Initialize` reads `SOFTHSM2_CONF` at that moment). */
  readonly modulePath: string
  /** The token label, unique in this process. Find the slot by label: slot ids are random. */
  readonly tokenLabel: string
  /** The user PIN. A secret: never log it. */
  readonly pin: string
  /** A file (mode 0600) that contains only the user PIN, for code that reads PINs from files. */
  readonly pinFile: string
  /** The per-process `softhsm2.conf` (also in `process.env.SOFTHSM2_CONF`). */
  readonly confPath: string
  /** Deletes the token. Close your PKCS#11 sessions on it first. Idempotent. */
  stop(): Promise<void>
}

/** Options of {@link startSoftHsm}. */
export interface StartSoftHsmOptions {
  /** Token label (at most 32 characters, unique in this process). Default `m2msec-<n>`. */
  label?: string
  /** User PIN (4..255 characters). Default: random. */
  pin?: string
  /** Security officer PIN (4..255 characters). Default: random. */
  soPin?: string
}

interface HsmHome {
  dir: string
  confPath: string
}

let home: HsmHome | undefined
let counter = 0
const labels = new Set<string>()

/**
 * The PKCS#11 library reads `SOFTHSM2_CONF` once, when it is initialised, so the whole process
 * shares one configuration: a temp dir with its own token directory. The global
 * `/etc/softhsm2.conf` and `/var/lib/softhsm/tokens` are never touched.
 */
function ensureHome(): HsmHome {
  if (home !== undefined) return home
  const dir = mkdtempSync(join(tmpdir(), 'm2msec-softhsm-'))
  mkdirSync(join(dir, 'tokens'), { mode: 0o700 })
  const confPath = join(dir, 'softhsm2.conf')
  writeFileSync(
    confPath,
    [
      `directories.tokendir = ${join(dir, 'tokens')}`,
      'objectstore.backend = file',
      'log.level = ERROR',
      'slots.removable = false',
      'slots.mechanisms = ALL',
      'library.reset_on_fork = false',
      '',
    ].join('\n'),
  )
  process.env['SOFTHSM2_CONF'] = confPath
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  home = { dir, confPath }
  return home
}

/**
 * Creates a new SoftHSM2 token (`softhsm2-util --init-token --free`) in a per-process temp
 * configuration and returns what a PKCS#11 client needs to use it. The first call sets
 * `process.env.SOFTHSM2_CONF`; load the PKCS#11 module only after that call, because SoftHSM
 * reads the variable once, in `C_Initialize`. Every call adds one more token with a unique
 * label; tokens created earlier stay usable.
 *
 * DEVELOPMENT AND TEST ONLY. PINs are passed to softhsm2-util as arguments (visible to local
 * `ps`), which is fine for throw-away tokens only.
 *
 * @example
 * ```ts
 * const token = await startSoftHsm()
 * after(() => token.stop())
 * const p11 = new pkcs11js.PKCS11(); p11.load(token.modulePath); p11.C_Initialize()
 * // find the slot whose token label is token.tokenLabel, then C_Login(session, CKU_USER, token.pin)
 * ```
 */
export async function startSoftHsm(opts: StartSoftHsmOptions = {}): Promise<SoftHsmToken> {
  const { dir, confPath } = ensureHome()
  counter += 1
  const tokenLabel = opts.label ?? `m2msec-${counter}`
  if (tokenLabel.length === 0 || tokenLabel.length > 32) {
    throw new M2msecError('ERR_INVALID_ARGUMENT', 'token label must have 1..32 characters', {
      label: tokenLabel,
    })
  }
  if (labels.has(tokenLabel)) {
    throw new M2msecError('ERR_ALREADY_EXISTS', 'a token with this label exists in this process', {
      label: tokenLabel,
    })
  }
  const pin = opts.pin ?? randomBytes(8).toString('hex')
  const soPin = opts.soPin ?? randomBytes(8).toString('hex')
  for (const [name, value] of [
    ['pin', pin],
    ['soPin', soPin],
  ] as const) {
    if (value.length < 4 || value.length > 255) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', `${name} must have 4..255 characters`)
    }
  }
  labels.add(tokenLabel)
  try {
    await util(confPath, ['--init-token', '--free', '--label', tokenLabel, '--so-pin', soPin, '--pin', pin])
  } catch (err) {
    labels.delete(tokenLabel)
    throw err
  }
  const pinFile = join(dir, `${counter}.pin`)
  writeFileSync(pinFile, pin, { mode: 0o600 })

  let stopped = false
  return {
    modulePath: SOFTHSM_MODULE_PATH,
    tokenLabel,
    pin,
    pinFile,
    confPath,
    async stop() {
      if (stopped) return
      stopped = true
      rmSync(pinFile, { force: true })
      await util(confPath, ['--delete-token', '--token', tokenLabel])
      labels.delete(tokenLabel)
    },
  }
}

/** Runs softhsm2-util. Errors carry its stderr but never the arguments (they hold PINs). */
async function util(confPath: string, args: string[]): Promise<void> {
  try {
    await run('softhsm2-util', args, { env: { ...process.env, SOFTHSM2_CONF: confPath }, timeout: 30_000 })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') {
      throw new M2msecError(
        'ERR_UNAVAILABLE',
        'softhsm2-util is not installed; install it: apt-get install softhsm2 opensc',
      )
    }
    const stderr = typeof e.stderr === 'string' ? e.stderr.trim() : ''
    throw new M2msecError('ERR_UNAVAILABLE', `softhsm2-util ${args[0] ?? ''} failed: ${stderr}`)
  }
}
