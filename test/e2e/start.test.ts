/**
 * The main job, as a new user runs it: `npm start` (scripts/start.ts) brings up nats-server and
 * every service; the KMS answers health and reflection without credentials; the README's plain
 * gRPC client example works against it; Ctrl-C stops everything cleanly.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createConnection } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import { grpcHealthCheck, grpcListServices, tmpDir } from '@m2msec/testkit'

const root = join(import.meta.dirname, '..', '..')
let platform: ChildProcess | undefined

after(() => {
  if (platform?.exitCode === null) platform.kill('SIGKILL')
})

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

test('npm start serves the KMS, the README example works, Ctrl-C stops cleanly', { timeout: 120_000 }, async () => {
  const data = await tmpDir('m2msec-start')
  platform = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts', '--data-dir', data.path], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  platform.stdout?.on('data', (c: Buffer) => (output += c.toString()))
  platform.stderr?.on('data', (c: Buffer) => (output += c.toString()))
  const deadline = Date.now() + 90_000
  while (!output.includes('m2msec is running')) {
    assert.ok(platform.exitCode === null, `npm start exited early:\n${output}`)
    assert.ok(Date.now() < deadline, `npm start did not come up:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  const kmsPort = Number(/kms\s+grpc:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1])
  const natsPort = Number(/nats:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1])
  assert.ok(kmsPort > 0 && natsPort > 0, output)
  const target = `127.0.0.1:${kmsPort}`
  const insecure = grpc.credentials.createInsecure()

  assert.equal(await grpcHealthCheck(target, insecure, 'm2msec.kms.v1.KeyManagement'), 'SERVING')
  assert.equal(await grpcHealthCheck(target, insecure), 'SERVING')
  assert.ok((await grpcListServices(target, insecure)).includes('m2msec.kms.v1.KeyManagement'))
  const authzPort = Number(/authz\s+grpc:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1])
  assert.ok(authzPort > 0, output)
  assert.equal(await grpcHealthCheck(`127.0.0.1:${authzPort}`, insecure, 'm2msec.authz.v1.Authorization'), 'SERVING')
  assert.ok((await grpcListServices(`127.0.0.1:${authzPort}`, insecure)).includes('m2msec.authz.v1.Authorization'))
  const authnPort = Number(/authn\s+grpc:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1])
  assert.ok(authnPort > 0, output)
  assert.equal(await grpcHealthCheck(`127.0.0.1:${authnPort}`, insecure, 'm2msec.authn.v1.Authentication'), 'SERVING')
  // The JWKS that the KMS and authz are configured to verify authn's tokens with.
  const jwksUrl = /authn JWKS\s+(http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json)/.exec(output)?.[1]
  assert.ok(jwksUrl !== undefined, output)
  const jwks = await fetch(jwksUrl)
  assert.equal(jwks.status, 200)
  assert.ok(Array.isArray(((await jwks.json()) as { keys?: unknown }).keys))
  for (const [name, api] of [
    ['bootstrap', 'm2msec.bootstrap.v1.GbaZn'],
    ['bootstrap', 'm2msec.bootstrap.v1.Pki'],
    ['groups', 'm2msec.groups.v1.Groups'],
  ] as const) {
    const port = Number(new RegExp(`${name}\\s+grpc://127\\.0\\.0\\.1:(\\d+)`).exec(output)?.[1])
    assert.ok(port > 0, output)
    assert.equal(await grpcHealthCheck(`127.0.0.1:${port}`, insecure, api), 'SERVING', name)
    assert.ok((await grpcListServices(`127.0.0.1:${port}`, insecure)).includes(api), name)
  }
  // GBA Ub answers a request without credentials with a Digest challenge or a typed refusal.
  const ub = /GBA Ub \(BSF\)\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(output)?.[1]
  assert.ok(ub !== undefined, output)
  assert.equal((await fetch(ub)).status, 400)

  const example = spawn(
    process.execPath,
    ['--import', 'tsx', 'examples/kms-client.ts', target, join(data.path, 'dev-admin.token')],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let exampleOut = ''
  example.stdout?.on('data', (c: Buffer) => (exampleOut += c.toString()))
  example.stderr?.on('data', (c: Buffer) => (exampleOut += c.toString()))
  const [code] = (await once(example, 'exit')) as [number]
  assert.equal(code, 0, exampleOut)
  assert.match(exampleOut, /decrypted hello from a meter/)
  assert.match(exampleOut, /GetKey unknown id -> NOT_FOUND ERR_KEY_NOT_FOUND/)
  // The token never shows up in what npm start prints.
  const { readFile } = await import('node:fs/promises')
  const token = (await readFile(join(data.path, 'dev-admin.token'), 'utf8')).trim()
  assert.ok(!output.includes(token), 'npm start printed the admin token')

  platform.kill('SIGINT')
  const [exitCode] = (await once(platform, 'exit')) as [number]
  assert.equal(exitCode, 0, output)
  assert.equal(await portOpen(kmsPort), false, 'the KMS still listens after Ctrl-C')
  assert.equal(await portOpen(natsPort), false, 'nats-server still listens after Ctrl-C')
  assert.match(output, /grpc stopped/)
  await data.cleanup()
})
