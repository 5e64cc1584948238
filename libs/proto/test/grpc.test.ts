/**
 * The generated code against a real grpc-js server on 127.0.0.1: unary calls, oneofs,
 * Timestamps, a rich error in `grpc-status-details-bin`, per-item batch errors, and server
 * reflection served from the committed FileDescriptorSet (no .proto files at run time).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import {
  Metadata,
  Server,
  ServerCredentials,
  credentials,
  loadPackageDefinition,
  status,
  type ServiceError,
} from '@grpc/grpc-js'
import { loadFileDescriptorSetFromBuffer, loadSync } from '@grpc/proto-loader'
import { ReflectionService } from '@grpc/reflection'
import { descriptorSetPath } from '@m2msec/proto'
import { ERROR_DOMAIN, ERROR_INFO_TYPE_URL, STATUS_DETAILS_METADATA_KEY } from '@m2msec/proto/common/v1'
import { Any } from '@m2msec/proto/google/protobuf'
import { ErrorInfo, Status } from '@m2msec/proto/google/rpc'
import {
  BatchSignRequest,
  type BatchSignResponse,
  EncryptRequest,
  type EncryptResponse,
  GetKeyRequest,
  type GetKeyResponse,
  Key,
  KeyAlgorithm,
  KeyManagementClient,
  KeyManagementService,
  type KeyManagementServer,
  KeyOperation,
  KeyState,
  RotateKeyRequest,
  SignRequest,
} from '@m2msec/proto/kms/v1'

const CREATED = new Date('2026-01-02T03:04:05.678Z')

/** A google.rpc.Status carrying one m2msec ErrorInfo, as the runtime will build it. */
function richStatus(code: status, message: string, reason: string, metadata: Record<string, string>): Status {
  const info = ErrorInfo.fromPartial({ reason, domain: ERROR_DOMAIN, metadata })
  return Status.fromPartial({
    code,
    message,
    details: [
      Any.fromPartial({
        typeUrl: ERROR_INFO_TYPE_URL,
        value: Buffer.from(ErrorInfo.encode(info).finish()),
      }),
    ],
  })
}

const handlers: Pick<KeyManagementServer, 'encrypt' | 'getKey' | 'batchSign'> = {
  encrypt(call, callback) {
    const req = call.request
    if (req.keyId === 'missing') {
      const trailer = new Metadata()
      const detail = richStatus(status.NOT_FOUND, 'key not found', 'ERR_KEY_NOT_FOUND', {
        keyId: req.keyId,
      })
      trailer.set(STATUS_DETAILS_METADATA_KEY, Buffer.from(Status.encode(detail).finish()))
      callback({ code: status.NOT_FOUND, details: 'key not found', metadata: trailer })
      return
    }
    callback(null, {
      ciphertext: Buffer.concat([Buffer.from(req.associatedData), Buffer.from(req.plaintext).reverse()]),
      keyId: req.keyId,
      keyVersion: 3,
    })
  },
  getKey(call, callback) {
    callback(null, {
      key: Key.fromPartial({
        id: call.request.keyId,
        tenant: 't1',
        algorithm: KeyAlgorithm.KEY_ALGORITHM_EC_P256_SIGN,
        state: KeyState.KEY_STATE_DESTRUCTION_SCHEDULED,
        destroyAfter: CREATED,
        primaryVersion: 1,
        versions: [{ version: 1, createdAt: CREATED, publicKeySpki: Buffer.from([0x30, 0x59]) }],
        usagePolicy: [{ principals: ['role:bsf', '*'], operations: [KeyOperation.KEY_OPERATION_SIGN] }],
        labels: { env: 'test' },
        createdAt: CREATED,
        updatedAt: CREATED,
      }),
    })
  },
  batchSign(call, callback) {
    const results = call.request.items.map((item) =>
      item.keyId === 'a'
        ? {
            outcome: {
              $case: 'result' as const,
              value: { signature: item.message, keyId: item.keyId, keyVersion: 1 },
            },
          }
        : {
            outcome: {
              $case: 'error' as const,
              value: richStatus(status.INVALID_ARGUMENT, 'digest required', 'ERR_INVALID_ARGUMENT', {
                field: 'digest',
              }),
            },
          },
    )
    callback(null, { results })
  },
}

let server: Server
let client: KeyManagementClient
let address: string

before(async () => {
  server = new Server()
  server.addService(KeyManagementService, handlers)
  new ReflectionService(loadFileDescriptorSetFromBuffer(readFileSync(descriptorSetPath))).addToServer(server)
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  )
  address = `127.0.0.1:${port}`
  client = new KeyManagementClient(address, credentials.createInsecure())
})

after(async () => {
  client?.close()
  await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()))
})

function encrypt(req: EncryptRequest): Promise<EncryptResponse> {
  return new Promise((resolve, reject) => client.encrypt(req, (err, res) => (err ? reject(err) : resolve(res))))
}

test('Encrypt round-trips bytes fields as Buffers', async () => {
  const res = await encrypt(
    EncryptRequest.fromPartial({
      keyId: 'orders',
      plaintext: Buffer.from('abc'),
      associatedData: Buffer.from('X'),
    }),
  )
  assert.ok(Buffer.isBuffer(res.ciphertext))
  assert.equal(res.ciphertext.toString(), 'Xcba')
  assert.equal(res.keyId, 'orders')
  assert.equal(res.keyVersion, 3)
})

test('an error carries google.rpc.Status with an m2msec ErrorInfo in grpc-status-details-bin', async () => {
  const err = await encrypt(EncryptRequest.fromPartial({ keyId: 'missing' })).then(
    () => assert.fail('expected NOT_FOUND'),
    (e: unknown) => e as ServiceError,
  )
  assert.equal(err.code, status.NOT_FOUND)
  const raw = err.metadata.get(STATUS_DETAILS_METADATA_KEY)[0]
  assert.ok(Buffer.isBuffer(raw))
  const st = Status.decode(raw)
  assert.equal(st.code, status.NOT_FOUND)
  assert.equal(st.details.length, 1)
  const detail = st.details[0]
  assert.ok(detail)
  assert.equal(detail.typeUrl, ERROR_INFO_TYPE_URL)
  const info = ErrorInfo.decode(detail.value)
  assert.equal(info.reason, 'ERR_KEY_NOT_FOUND')
  assert.equal(info.domain, 'm2msec.io')
  assert.deepEqual(info.metadata, { keyId: 'missing' })
})

test('GetKey round-trips enums, maps, repeated messages and Timestamps as Dates', async () => {
  const res = await new Promise<GetKeyResponse>((resolve, reject) =>
    client.getKey(GetKeyRequest.fromPartial({ keyId: 'sig' }), (err, r) => (err ? reject(err) : resolve(r))),
  )
  const key = res.key
  assert.ok(key)
  assert.equal(key.algorithm, KeyAlgorithm.KEY_ALGORITHM_EC_P256_SIGN)
  assert.equal(key.state, KeyState.KEY_STATE_DESTRUCTION_SCHEDULED)
  assert.ok(key.destroyAfter instanceof Date)
  assert.equal(key.destroyAfter.toISOString(), CREATED.toISOString())
  assert.deepEqual(key.labels, { env: 'test' })
  assert.deepEqual(key.usagePolicy, [{ principals: ['role:bsf', '*'], operations: [KeyOperation.KEY_OPERATION_SIGN] }])
  assert.deepEqual([...(key.versions[0]?.publicKeySpki ?? [])], [0x30, 0x59])
})

test('BatchSign returns a per-item oneof of result or google.rpc.Status, in item order', async () => {
  const req = BatchSignRequest.fromPartial({
    items: [
      SignRequest.fromPartial({ keyId: 'a', message: Buffer.alloc(32, 1) }),
      SignRequest.fromPartial({ keyId: 'b', message: Buffer.from('m') }),
    ],
  })
  const res = await new Promise<BatchSignResponse>((resolve, reject) =>
    client.batchSign(req, (err, r) => (err ? reject(err) : resolve(r))),
  )
  assert.equal(res.results.length, 2)
  const [first, second] = res.results
  assert.equal(first?.outcome?.$case, 'result')
  assert.equal(second?.outcome?.$case, 'error')
  if (first?.outcome?.$case === 'result') assert.equal(first.outcome.value.keyId, 'a')
  if (second?.outcome?.$case === 'error') {
    assert.equal(second.outcome.value.code, status.INVALID_ARGUMENT)
    const detail = second.outcome.value.details[0]
    assert.ok(detail)
    assert.equal(ErrorInfo.decode(detail.value).reason, 'ERR_INVALID_ARGUMENT')
  }
})

test('an RPC without a handler fails with UNIMPLEMENTED', async () => {
  const err = await new Promise<ServiceError>((resolve) =>
    client.rotateKey(RotateKeyRequest.fromPartial({ keyId: 'x' }), (e) => resolve(e as ServiceError)),
  )
  assert.equal(err.code, status.UNIMPLEMENTED)
})

/** Minimal gRPC reflection v1 client: one request on the bidi stream, one response. */
async function reflect(request: Record<string, string>): Promise<Record<string, unknown>> {
  const reflectionDir = dirname(createRequire(import.meta.url).resolve('@grpc/reflection'))
  const def = loadSync('grpc/reflection/v1/reflection.proto', {
    includeDirs: [join(reflectionDir, '..', 'proto')],
    keepCase: true,
  })
  const pkg = loadPackageDefinition(def) as unknown as {
    grpc: {
      reflection: {
        v1: {
          ServerReflection: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => any
        }
      }
    }
  }
  const rc = new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure())
  try {
    return await new Promise((resolve, reject) => {
      const stream = rc.ServerReflectionInfo()
      stream.on('data', (msg: Record<string, unknown>) => {
        resolve(msg)
        // Cancel rather than half-close: the reflection service keeps its side of the stream open,
        // and a call left open makes the server's graceful shutdown wait for ever.
        stream.cancel()
      })
      stream.on('error', (err: { code?: number }) => {
        if (err.code !== status.CANCELLED) reject(err as Error)
      })
      stream.write(request)
    })
  } finally {
    rc.close()
  }
}

test('server reflection from descriptorSetPath lists the KMS service and resolves its file', async () => {
  const listed = (await reflect({ list_services: '' })) as {
    list_services_response?: { service: { name: string }[] }
  }
  const names = listed.list_services_response?.service.map((s) => s.name) ?? []
  assert.ok(names.includes('m2msec.kms.v1.KeyManagement'), names.join(','))

  const file = (await reflect({ file_containing_symbol: 'm2msec.kms.v1.KeyManagement' })) as {
    file_descriptor_response?: { file_descriptor_proto: Buffer[] }
  }
  const protos = file.file_descriptor_response?.file_descriptor_proto ?? []
  assert.ok(protos.length >= 1, 'no file descriptors')
  // The first descriptor is the file that declares the symbol. @grpc/reflection merges the files
  // of one package (kms.proto and group_keys.proto) into one descriptor named after one of
  // them, so check what it declares rather than its name.
  const first = protos[0] ?? Buffer.alloc(0)
  assert.ok(first.includes('m2msec.kms.v1') && first.includes('KeyManagement') && first.includes('GroupKeys'))
})

test('the descriptor set and the generated service definition agree on every method', () => {
  const def = loadFileDescriptorSetFromBuffer(readFileSync(descriptorSetPath))
  const service = def['m2msec.kms.v1.KeyManagement'] as Record<string, { path: string }> | undefined
  assert.ok(service, 'service missing from descriptors.binpb')
  const fromDescriptors = Object.values(service)
    .map((m) => m.path)
    .sort()
  const fromGenerated = Object.values(KeyManagementService)
    .map((m) => m.path)
    .sort()
  assert.deepEqual(fromDescriptors, fromGenerated)
  assert.ok(def['m2msec.events.v1.KeyRotated'], 'events missing from descriptors.binpb')
  assert.ok(def['google.rpc.ErrorInfo'], 'google.rpc.ErrorInfo missing from descriptors.binpb')
})
