/**
 * The vault SE against real transit engines: HashiCorp Vault and OpenBao dev servers started
 * with testcontainers, each running the full conformance suite.
 *
 * Without a container engine the test is registered as skipped with the reason, so the run
 * says what was not checked (no silent pass).
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, test } from 'node:test'
import type { StartedTestContainer } from 'testcontainers'
import type { TmpDir } from '@m2msec/testkit'
import { dockerAvailable, tmpDir } from '@m2msec/testkit'
import type { SecureEnvironment } from '../../src/se/api.ts'
import { create } from '../../src/se/vault/index.ts'
import { runSecureEnvironmentSuite } from './conformance.ts'

const ROOT_TOKEN = 'm2msec-dev-root'
const SERVERS = [
  { name: 'HashiCorp Vault', image: 'hashicorp/vault:1.17.6' },
  { name: 'OpenBao', image: 'openbao/openbao:2.1.0' },
] as const

interface Running {
  readonly address: string
  readonly tokenFile: string
}

/** Starts a dev server, mounts transit the way the operator notes in transit-se.ts ask for. */
async function startTransit(image: string, dir: TmpDir, started: StartedTestContainer[]): Promise<Running> {
  const { GenericContainer, Wait } = await import('testcontainers')
  const container = await new GenericContainer(image)
    .withCommand(['server', '-dev', `-dev-root-token-id=${ROOT_TOKEN}`, '-dev-listen-address=0.0.0.0:8200'])
    .withEnvironment({ SKIP_SETCAP: 'true' })
    .withExposedPorts(8200)
    .withWaitStrategy(Wait.forHttp('/v1/sys/health', 8200).forStatusCode(200))
    .start()
  started.push(container)
  const address = `http://${container.getHost()}:${container.getMappedPort(8200)}`
  const admin = async (path: string, body: unknown): Promise<void> => {
    const res = await fetch(`${address}/v1/${path}`, {
      method: 'POST',
      headers: { 'X-Vault-Token': ROOT_TOKEN, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    })
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`)
  }
  await admin('sys/mounts/transit', { type: 'transit' })
  // A destroyed key's ref must not resurrect it through /encrypt (see transit-se.ts).
  await admin('transit/config/keys', { disable_upsert: true })
  const tokenFile = join(dir.path, `${image.replace(/\W/g, '_')}.token`)
  await writeFile(tokenFile, ROOT_TOKEN)
  return { address, tokenFile }
}

if (!(await dockerAvailable())) {
  test(
    'vault SE: conformance against Vault and OpenBao dev servers',
    {
      skip: 'Docker engine not reachable: Vault Transit integration not run on this machine',
    },
    () => undefined,
  )
} else {
  const started: StartedTestContainer[] = []
  let dir: TmpDir | undefined
  after(async () => {
    await Promise.all(started.map((c) => c.stop()))
    await dir?.cleanup()
  })
  for (const server of SERVERS) {
    let running: Promise<Running> | undefined
    const makeSe = async (): Promise<SecureEnvironment> => {
      running ??= (async () => startTransit(server.image, (dir ??= await tmpDir('vault-it')), started))()
      const { address, tokenFile } = await running
      return create(`vault-${server.name}`, { address, tokenFile })
    }
    runSecureEnvironmentSuite(`vault (${server.name} ${server.image}, dev mode)`, makeSe, { timeout: 180_000 })
  }
}
