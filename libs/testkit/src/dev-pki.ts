// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect polyfill
// loaded before x509 itself (TOOLCHAIN pitfall 12).
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { randomBytes, webcrypto } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { M2msecError } from '@m2msec/errors'

type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair

x509.cryptoProvider.set(webcrypto)

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const
const DAY_MS = 86_400_000
/** Certificates closer than this to expiry are re-issued instead of reused. */
const RENEW_BEFORE_MS = 7 * DAY_MS

/** A PEM certificate and its PEM (PKCS#8) private key. */
export interface CertAndKey {
  readonly certPem: string
  readonly keyPem: string
}

/** Who a development client certificate names. */
export interface ClientIdentity {
  /** Tenant id; URI-encoded into the SAN and written as-is into the O field. */
  tenant: string
  /** Principal id within the tenant (a device, application or service id). */
  principal: string
  /** Roles, one `OU=role:<name>` attribute each, in the given order (what the mTLS authenticator reads). */
  roles: readonly string[]
  /** Validity in days. Default 30. */
  validityDays?: number
}

/** The development CA and server certificate written to `dir`. DEVELOPMENT ONLY. */
export interface DevPki {
  readonly dir: string
  /** `<dir>/ca.pem`, `<dir>/ca.key`, `<dir>/server.pem`, `<dir>/server.key`. */
  readonly paths: {
    readonly caCert: string
    readonly caKey: string
    readonly serverCert: string
    readonly serverKey: string
  }
  readonly caCertPem: string
  readonly server: CertAndKey
  /**
   * Issues a client certificate (not written to disk) signed by the development CA.
   *
   * Format (parsed by the gRPC development authenticator):
   * - SAN: exactly one URI `m2msec://<tenant>/<principal>`, each part `encodeURIComponent`-encoded;
   * - subject: `CN=<principal>, O=<tenant>, OU=role:<name>` with one `OU` per role, in order;
   * - EKU clientAuth, KeyUsage digitalSignature, P-256 key, ECDSA-SHA256 signature.
   */
  issueClientCert(identity: ClientIdentity): Promise<CertAndKey>
}

/** Options of {@link createDevPki}. Only used when the files are (re)generated. */
export interface DevPkiOptions {
  /** DNS SANs of the server certificate. Default `['localhost']`. */
  serverDnsNames?: readonly string[]
  /** IP SANs of the server certificate. Default `['127.0.0.1']`. */
  serverIps?: readonly string[]
  /** CA validity in days. Default 3650. */
  caValidityDays?: number
  /** Server certificate validity in days. Default 365. */
  serverValidityDays?: number
}

/**
 * DEVELOPMENT ONLY: creates (or reuses) a P-256 development CA and a server certificate in
 * `dir`, as PEM files `ca.pem`/`ca.key` and `server.pem`/`server.key` (keys PKCS#8, mode 0600).
 * The server certificate names `localhost` and `127.0.0.1` and carries EKU serverAuth and
 * clientAuth, so services can also use it for mTLS between each other.
 *
 * Idempotent: existing files are reused when they parse, chain to the CA and are not about to
 * expire; otherwise they are regenerated (a new CA re-issues the server certificate too).
 * Delete the folder to force new keys. The CA key sits unencrypted on disk: never trust this
 * CA outside a developer machine or a test.
 *
 * @example
 * ```ts
 * const pki = await createDevPki(dir.path)
 * const client = await pki.issueClientCert({ tenant: 'acme', principal: 'dev-42', roles: ['device'] })
 * tls.connect({ ca: pki.caCertPem, cert: client.certPem, key: client.keyPem, ... })
 * ```
 */
export async function createDevPki(dir: string, opts: DevPkiOptions = {}): Promise<DevPki> {
  await mkdir(dir, { recursive: true })
  const paths = {
    caCert: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
  }

  let ca = await loadPair(paths.caCert, paths.caKey)
  let caIsNew = false
  if (ca === undefined || !isCurrent(ca.cert) || !(await ca.cert.isSelfSigned())) {
    ca = await createCa(opts.caValidityDays ?? 3650)
    await writePair(paths.caCert, paths.caKey, ca)
    caIsNew = true
  }

  let server = caIsNew ? undefined : await loadPair(paths.serverCert, paths.serverKey)
  if (
    server === undefined ||
    !isCurrent(server.cert) ||
    !(await server.cert.verify({ publicKey: ca.cert.publicKey }))
  ) {
    const keys = await generateKeys()
    const cert = await issue(ca, keys.publicKey, {
      subject: [{ CN: ['localhost'] }, { O: ['m2msec development'] }],
      validityDays: opts.serverValidityDays ?? 365,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([
          ...(opts.serverDnsNames ?? ['localhost']).map((value) => ({ type: 'dns' as const, value })),
          ...(opts.serverIps ?? ['127.0.0.1']).map((value) => ({ type: 'ip' as const, value })),
        ]),
      ],
    })
    server = { cert, key: keys.privateKey }
    await writePair(paths.serverCert, paths.serverKey, server)
  }

  const issuer = ca
  return {
    dir,
    paths,
    caCertPem: issuer.cert.toString('pem'),
    server: { certPem: server.cert.toString('pem'), keyPem: await keyToPem(server.key) },
    async issueClientCert(identity) {
      validateIdentity(identity)
      const keys = await generateKeys()
      const uri = `m2msec://${encodeURIComponent(identity.tenant)}/${encodeURIComponent(identity.principal)}`
      const cert = await issue(issuer, keys.publicKey, {
        subject: [
          { CN: [identity.principal] },
          { O: [identity.tenant] },
          ...identity.roles.map((r) => ({ OU: [`role:${r}`] })),
        ],
        validityDays: identity.validityDays ?? 30,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]),
        ],
      })
      return { certPem: cert.toString('pem'), keyPem: await keyToPem(keys.privateKey) }
    },
  }
}

interface Pair {
  cert: x509.X509Certificate
  key: CryptoKey
}

function validateIdentity(identity: ClientIdentity): void {
  const fields = { tenant: identity.tenant, principal: identity.principal }
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', `${name} must be a string of 1..64 characters`)
    }
  }
  for (const role of identity.roles) {
    if (typeof role !== 'string' || role.length === 0 || role.length > 64) {
      throw new M2msecError('ERR_INVALID_ARGUMENT', 'roles must be strings of 1..64 characters')
    }
  }
}

function generateKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']) as Promise<CryptoKeyPair>
}

/** A positive 128-bit serial (the top bit cleared so DER does not read it as negative). */
function serialNumber(): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0] ?? 0) & 0x7f
  return bytes.toString('hex')
}

async function createCa(validityDays: number): Promise<Pair> {
  const keys = await generateKeys()
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: ['m2msec development CA - DEVELOPMENT ONLY'] }, { O: ['m2msec development'] }],
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + validityDays * DAY_MS),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  return { cert, key: keys.privateKey }
}

async function issue(
  ca: Pair,
  publicKey: CryptoKey,
  o: { subject: x509.JsonName; validityDays: number; extensions: x509.Extension[] },
): Promise<x509.X509Certificate> {
  const now = Date.now()
  return x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: o.subject,
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + o.validityDays * DAY_MS),
    publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING,
    extensions: [
      ...o.extensions,
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  })
}

function isCurrent(cert: x509.X509Certificate): boolean {
  return cert.notAfter.getTime() - Date.now() > RENEW_BEFORE_MS && cert.notBefore.getTime() <= Date.now()
}

async function loadPair(certPath: string, keyPath: string): Promise<Pair | undefined> {
  let certPem: string
  let keyPem: string
  try {
    ;[certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')])
  } catch {
    return undefined
  }
  try {
    const cert = new x509.X509Certificate(certPem)
    const der = x509.PemConverter.decodeFirst(keyPem)
    const key = await webcrypto.subtle.importKey('pkcs8', der, EC_KEY, true, ['sign'])
    // The key must belong to the certificate, or TLS would fail later with a vaguer error.
    const probe = new Uint8Array([1, 2, 3])
    const signature = await webcrypto.subtle.sign(SIGNING, key, probe)
    const publicKey = await cert.publicKey.export(EC_KEY, ['verify'], webcrypto)
    if (!(await webcrypto.subtle.verify(SIGNING, publicKey, signature, probe))) return undefined
    return { cert, key }
  } catch {
    return undefined
  }
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key)
  return x509.PemConverter.encode(der, 'PRIVATE KEY')
}

/** Writes through a temp file and rename, so a concurrent reader never sees half a PEM. */
async function writePair(certPath: string, keyPath: string, pair: Pair): Promise<void> {
  const suffix = `.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(keyPath + suffix, await keyToPem(pair.key), { mode: 0o600 })
  await writeFile(certPath + suffix, pair.cert.toString('pem'), { mode: 0o644 })
  await rename(keyPath + suffix, keyPath)
  await rename(certPath + suffix, certPath)
}
