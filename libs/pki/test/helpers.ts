/** Test helpers: a throwaway CA with local keys, openssl in a temp dir. */
import { spawnSync } from 'node:child_process'
import { randomBytes, webcrypto } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  certificatePem,
  issueRootCaCertificate,
  issueSubCaCertificate,
  localSigner,
  newSerialHex,
  type CaSigner,
} from '../src/index.ts'

export const DOMAIN = 'acme.m2m.example'
export const DAY = 86_400_000
export const random = (n: number) => new Uint8Array(randomBytes(n))

export interface TestCa {
  root: Uint8Array
  issuing: Uint8Array
  rootSigner: CaSigner
  issuingSigner: CaSigner
}

async function keyPair(): Promise<{ signer: CaSigner; spki: Uint8Array }> {
  const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
  return {
    signer: localSigner(pair.privateKey),
    spki: new Uint8Array(await webcrypto.subtle.exportKey('spki', pair.publicKey)),
  }
}

export async function createTestCa(now = new Date()): Promise<TestCa> {
  const r = await keyPair()
  const i = await keyPair()
  const validity = { notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + 365 * DAY) }
  const root = await issueRootCaCertificate(
    {
      serialHex: newSerialHex(random),
      commonName: 'acme Root CA',
      organization: 'acme',
      publicKeySpki: r.spki,
      domain: DOMAIN,
      pathLength: 1,
      ...validity,
    },
    r.signer,
  )
  const issuing = await issueSubCaCertificate(
    {
      serialHex: newSerialHex(random),
      commonName: 'acme Issuing CA',
      organization: 'acme',
      publicKeySpki: i.spki,
      domain: DOMAIN,
      pathLength: 0,
      ...validity,
    },
    { certificate: root, signer: r.signer },
  )
  return { root, issuing, rootSigner: r.signer, issuingSigner: i.signer }
}

/** A temp dir for openssl files, removed by `cleanup()`. */
export function scratch(): {
  path: string
  file(name: string, data?: string | Uint8Array): string
  read(name: string): Buffer
  cleanup(): void
} {
  const path = mkdtempSync(join(tmpdir(), 'm2msec-pki-test-'))
  return {
    path,
    file(name, data) {
      const p = join(path, name)
      if (data !== undefined) writeFileSync(p, data)
      return p
    },
    read: (name) => readFileSync(join(path, name)),
    cleanup: () => rmSync(path, { recursive: true, force: true }),
  }
}

/** Runs openssl; returns stdout+stderr and the exit status (never throws on a non-zero exit). */
export function openssl(args: string[], cwd?: string): { out: string; status: number } {
  const r = spawnSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  return { out: `${r.stdout ?? ''}${r.stderr ?? ''}`, status: r.status ?? 1 }
}

/** A CSR made by `openssl req` (DER) with the given key algorithm options and SAN. */
export function opensslCsr(
  dir: string,
  name: string,
  san: string | undefined,
  keyOpts: string[] = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
): Uint8Array {
  const args = [
    'req',
    '-new',
    ...keyOpts,
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-outform',
    'DER',
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${name}`,
  ]
  if (san !== undefined) args.push('-addext', `subjectAltName=${san}`)
  const r = openssl(args, dir)
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.out}`)
  return new Uint8Array(readFileSync(join(dir, `${name}.csr`)))
}

export { certificatePem }
