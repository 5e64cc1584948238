/** Test helpers: the Echo fixture service, a promise-based unary client, log capture, a tiny PKI. */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { webcrypto } from 'node:crypto'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { createLogger, type Logger } from '../src/index.ts'

export const FIXTURES = join(import.meta.dirname, 'fixtures')
export const ECHO_PROTO = 'm2msec/test/v1/echo.proto'
export const ECHO_SERVICE = 'm2msec.test.v1.EchoService'

export interface EchoRequest {
  text: string
  delayMs: number
  fail: string
}
export interface EchoResponse {
  text: string
  tenant: string
  principal: string
  roles: string[]
  via: string
  requestId: string
  aborted: boolean
}

type Method<Req, Res, RS extends boolean, SS extends boolean> = grpc.MethodDefinition<Req, Res> & {
  requestStream: RS
  responseStream: SS
}

/** Shaped like a ts-proto `…Service` const: literal stream flags, typed (de)serialisers. */
export type EchoServiceDefinition = {
  Echo: Method<EchoRequest, EchoResponse, false, false>
  Ping: Method<EchoRequest, EchoResponse, false, false>
  Tail: Method<EchoRequest, EchoResponse, false, true>
}

export function loadEchoDefinition(): EchoServiceDefinition {
  const pkg = protoLoader.loadSync(ECHO_PROTO, { includeDirs: [FIXTURES], defaults: true })
  return pkg[ECHO_SERVICE] as unknown as EchoServiceDefinition
}

export function echoRequest(partial: Partial<EchoRequest> = {}): EchoRequest {
  return { text: 'hello', delayMs: 0, fail: '', ...partial }
}

export function echoClient(
  address: string,
  credentials = grpc.credentials.createInsecure(),
  options: grpc.ClientOptions = {},
): grpc.Client {
  const Ctor = grpc.makeGenericClientConstructor(
    loadEchoDefinition() as unknown as grpc.ServiceDefinition,
    'EchoService',
  )
  return new Ctor(address, credentials, options)
}

export interface UnaryResult<Res> {
  readonly response: Res
  readonly trailers: grpc.Metadata
}

/** One unary call; `call` is exposed for cancellation, `result` settles after the status arrives. */
export function unary<Req, Res>(
  client: grpc.Client,
  method: grpc.MethodDefinition<Req, Res>,
  request: Req,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): { call: grpc.ClientUnaryCall; result: Promise<UnaryResult<Res>> } {
  let call!: grpc.ClientUnaryCall
  const result = new Promise<UnaryResult<Res>>((resolve, reject) => {
    let error: grpc.ServiceError | null = null
    let response: Res | undefined
    call = client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      metadata,
      options,
      (err, res) => {
        error = err
        response = res
      },
    )
    // grpc-js runs the callback before 'status'; waiting for 'status' gives the trailers too.
    call.on('status', (status: grpc.StatusObject) => {
      if (error !== null) reject(error)
      else resolve({ response: response as Res, trailers: status.metadata })
    })
  })
  return { call, result }
}

export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata()
  md.set('authorization', `Bearer ${token}`)
  return md
}

/** A logger writing JSON lines into memory. */
export function captureLogger(level: 'debug' | 'info' = 'debug'): {
  log: Logger
  lines: () => Record<string, unknown>[]
  text: () => string
} {
  const chunks: string[] = []
  const log = createLogger({ level, service: 'test' }, { write: (s: string) => void chunks.push(s) })
  return {
    log,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  }
}

x509.cryptoProvider.set(webcrypto)
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const

export interface Pem {
  readonly cert: string
  readonly key: string
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key)
  return x509.PemConverter.encode(der, 'PRIVATE KEY')
}

/** A CA that issues a localhost server certificate and client certificates. */
export async function createTestCa(name = 'm2msec test CA'): Promise<{
  ca: Pem
  issueServer(): Promise<Pem>
  issueClient(subject: string, uris: readonly string[]): Promise<Pem>
}> {
  const caKeys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair
  const now = Date.now()
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    keys: caKeys,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  })
  const issue = async (subject: string, sans: x509.JsonGeneralName[], eku: string): Promise<Pem> => {
    const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair
    const cert = await x509.X509CertificateGenerator.create({
      subject,
      issuer: caCert.subject,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
      signingAlgorithm: SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([eku]),
        new x509.SubjectAlternativeNameExtension(sans),
      ],
    })
    return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) }
  }
  return {
    ca: { cert: caCert.toString('pem'), key: await keyPem(caKeys.privateKey) },
    issueServer: () =>
      issue(
        'CN=localhost',
        [
          { type: 'dns', value: 'localhost' },
          { type: 'ip', value: '127.0.0.1' },
        ],
        x509.ExtendedKeyUsage.serverAuth,
      ),
    issueClient: (subject, uris) =>
      issue(
        subject,
        uris.map((value) => ({ type: 'url', value })),
        x509.ExtendedKeyUsage.clientAuth,
      ),
  }
}
