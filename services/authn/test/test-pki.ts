/**
 * A tiny test PKI for certificate credentials: CAs and entity certificates whose URI SAN (or
 * CN) names a oneM2M entity id, which the development PKI of @m2msec/testkit cannot do.
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { randomBytes, webcrypto } from 'node:crypto'

x509.cryptoProvider.set(webcrypto)

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const
const SIG = { name: 'ECDSA', hash: 'SHA-256' } as const
const DAY = 86_400_000

export interface TestCa {
  readonly cert: x509.X509Certificate
  readonly key: webcrypto.CryptoKey
  readonly pem: string
}

export interface TestLeaf {
  readonly cert: x509.X509Certificate
  readonly pem: string
  /** PKCS#8 private key, for signing assertions. */
  readonly privateKey: webcrypto.CryptoKey
  /** base64 DER (an x5c entry). */
  readonly x5c: string
}

function serial(): string {
  const b = randomBytes(16)
  b[0] = (b[0] ?? 0) & 0x7f
  return b.toString('hex')
}

async function keys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair
}

export async function createTestCa(name: string, issuer?: TestCa): Promise<TestCa> {
  const k = await keys()
  const now = Date.now()
  const extensions = [
    new x509.BasicConstraintsExtension(true, issuer === undefined ? 1 : 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ]
  const cert =
    issuer === undefined
      ? await x509.X509CertificateGenerator.createSelfSigned({
          serialNumber: serial(),
          name: `CN=${name}`,
          notBefore: new Date(now - 3_600_000),
          notAfter: new Date(now + 365 * DAY),
          keys: k,
          signingAlgorithm: SIG,
          extensions,
        })
      : await x509.X509CertificateGenerator.create({
          serialNumber: serial(),
          subject: `CN=${name}`,
          issuer: issuer.cert.subject,
          notBefore: new Date(now - 3_600_000),
          notAfter: new Date(now + 365 * DAY),
          publicKey: k.publicKey,
          signingKey: issuer.key,
          signingAlgorithm: SIG,
          extensions,
        })
  return { cert, key: k.privateKey, pem: cert.toString('pem') }
}

export async function issueEntityCert(
  ca: TestCa,
  o: { uri?: string; cn: string; notBefore?: Date; notAfter?: Date },
): Promise<TestLeaf> {
  const k = await keys()
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${o.cn}`,
    issuer: ca.cert.subject,
    notBefore: o.notBefore ?? new Date(now - 3_600_000),
    notAfter: o.notAfter ?? new Date(now + 30 * DAY),
    publicKey: k.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      ...(o.uri === undefined ? [] : [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: o.uri }])]),
    ],
  })
  return {
    cert,
    pem: cert.toString('pem'),
    privateKey: k.privateKey,
    x5c: Buffer.from(cert.rawData).toString('base64'),
  }
}
