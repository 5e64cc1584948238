/**
 * The aws-kms SE against LocalStack's KMS (testcontainers), running the full conformance suite.
 * LocalStack accepts any credentials; they still go through SigV4 and the credentials file.
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
import { create } from '../../src/se/aws-kms/index.ts'
import { runSecureEnvironmentSuite } from './conformance.ts'

const IMAGE = 'localstack/localstack:3.8.1'

if (!(await dockerAvailable())) {
  test(
    'aws-kms SE: conformance against LocalStack KMS',
    {
      skip: 'Docker engine not reachable: AWS KMS (LocalStack) integration not run on this machine',
    },
    () => undefined,
  )
} else {
  let container: StartedTestContainer | undefined
  let dir: TmpDir | undefined
  let running: Promise<{ endpoint: string; credentialsFile: string }> | undefined
  after(async () => {
    await container?.stop()
    await dir?.cleanup()
  })
  const start = async (): Promise<{ endpoint: string; credentialsFile: string }> => {
    const { GenericContainer, Wait } = await import('testcontainers')
    container = await new GenericContainer(IMAGE)
      .withEnvironment({ SERVICES: 'kms' })
      .withExposedPorts(4566)
      .withWaitStrategy(Wait.forLogMessage('Ready.'))
      .start()
    dir = await tmpDir('aws-kms-it')
    const credentialsFile = join(dir.path, 'credentials')
    await writeFile(credentialsFile, '[default]\naws_access_key_id = test\naws_secret_access_key = test\n')
    return { endpoint: `http://${container.getHost()}:${container.getMappedPort(4566)}`, credentialsFile }
  }
  const makeSe = async (): Promise<SecureEnvironment> => {
    running ??= start()
    const { endpoint, credentialsFile } = await running
    return create('aws-kms-it', { region: 'us-east-1', endpoint, credentialsFile })
  }
  runSecureEnvironmentSuite(`aws-kms (LocalStack ${IMAGE})`, makeSe, { timeout: 180_000 })
}
