/**
 * Calling the KMS with a plain gRPC client: @grpc/grpc-js + @grpc/proto-loader reading the
 * .proto files (no m2msec code), as any gRPC stack would.
 *
 *   node --import tsx examples/kms-client.ts [host:port] [token-file]
 *
 * Defaults: 127.0.0.1:7001 and .data/dev-admin.token (what `npm start` creates).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

const root = join(import.meta.dirname, '..')
const target = process.argv[2] ?? '127.0.0.1:7001'
const token = readFileSync(process.argv[3] ?? join(root, '.data', 'dev-admin.token'), 'utf8').trim()

const definition = protoLoader.loadSync('m2msec/kms/v1/kms.proto', {
  includeDirs: [join(root, 'proto')],
  keepCase: false,
  enums: String,
  longs: Number,
  defaults: true,
})
const { KeyManagement } = (grpc.loadPackageDefinition(definition) as any).m2msec.kms.v1
const client = new KeyManagement(target, grpc.credentials.createInsecure())

function call<T>(method: string, request: object): Promise<T> {
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${token}`)
  return new Promise((resolve, reject) =>
    client[method](request, metadata, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
  )
}

const suffix = Date.now().toString(36)
const { key } = await call<{ key: { id: string; versions: { publicJwk: string }[] } }>('CreateKey', {
  keySpec: { keyId: `example-aes-${suffix}`, algorithm: 'KEY_ALGORITHM_AES_256_GCM', purpose: 'README example' },
})
console.log('created key', key.id)

const enc = await call<{ ciphertext: Buffer; keyVersion: number }>('Encrypt', {
  keyId: key.id,
  plaintext: Buffer.from('hello from a meter'),
  associatedData: Buffer.from('meter-42'),
})
console.log('ciphertext', enc.ciphertext.toString('base64'), 'version', enc.keyVersion)

const dec = await call<{ plaintext: Buffer }>('Decrypt', {
  ciphertext: enc.ciphertext,
  associatedData: Buffer.from('meter-42'),
})
console.log('decrypted', dec.plaintext.toString())

const signer = await call<{ key: { id: string; versions: { publicJwk: string }[] } }>('CreateKey', {
  keySpec: { keyId: `example-es256-${suffix}`, algorithm: 'KEY_ALGORITHM_EC_P256_SIGN' },
})
const sig = await call<{ signature: Buffer }>('Sign', {
  keyId: signer.key.id,
  message: Buffer.from('command: open valve'),
})
console.log('ES256 signature', sig.signature.toString('base64url'), 'public JWK', signer.key.versions[0]?.publicJwk)

const ses = await call<{ secureEnvironments: unknown[] }>('ListSecureEnvironments', {})
console.log('secure environments', JSON.stringify(ses.secureEnvironments))

try {
  await call('GetKey', { keyId: 'does-not-exist' })
} catch (err) {
  const e = err as grpc.ServiceError
  console.log('GetKey unknown id ->', grpc.status[e.code], e.metadata.get('m2msec-error-code')[0])
}
client.close()
