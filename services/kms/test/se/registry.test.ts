/**
 * The SE registry: configuration validation, lazy loading of backends (the native PKCS#11
 * module is loaded only when a pkcs11 SE is configured) and cleanup on partial failure.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { SoftHsmToken, TmpDir } from '@m2msec/testkit'
import { startSoftHsm, tmpDir } from '@m2msec/testkit'
import { createSecureEnvironment, createSecureEnvironments, parseSeConfig } from '../../src/se/registry.ts'

const require = createRequire(import.meta.url)
const pkcs11Loaded = (): boolean => Object.keys(require.cache).some((path) => path.includes('pkcs11js'))

describe('SE registry', () => {
  let dir: TmpDir
  let masterKeyFile: string
  before(async () => {
    dir = await tmpDir('m2msec-se-registry')
    masterKeyFile = join(dir.path, 'master.key')
    writeFileSync(masterKeyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 })
  })
  after(() => dir.cleanup())

  it('creates a software SE from a master key file, without loading the PKCS#11 module', async () => {
    const se = await createSecureEnvironment({ name: 'software', type: 'software', options: { masterKeyFile } })
    try {
      assert.equal(se.type, 'software')
      assert.equal(se.name, 'software')
      const { ref } = await se.generateKey({ algorithm: 'HMAC_SHA256', label: 'x' })
      assert.equal((await se.mac({ ref, algorithm: 'HMAC_SHA256' }, new Uint8Array(1))).length, 32)
    } finally {
      await se.close()
    }
    assert.equal(pkcs11Loaded(), false, 'pkcs11js must load only when a pkcs11 SE is configured')
  })

  it('an unknown type is ERR_CONFIG_INVALID listing the valid types', async () => {
    await assert.rejects(
      createSecureEnvironment({ name: 'x', type: 'tpm', options: {} } as never),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_CONFIG_INVALID')
        assert.match(
          err.message,
          /unknown secure environment type "tpm"; valid types: software, pkcs11, vault, aws-kms/,
        )
        return true
      },
    )
    assert.throws(() => parseSeConfig(undefined), { code: 'ERR_CONFIG_INVALID' })
  })

  it('bad options are ERR_CONFIG_INVALID naming every bad field', () => {
    assert.throws(
      () =>
        parseSeConfig({
          name: 'Bad Name',
          type: 'pkcs11',
          options: { modulePath: '', tokenLabel: 'x', workers: 0, pin: '1234' },
        }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_CONFIG_INVALID')
        for (const field of ['name', 'options.modulePath', 'options.pinFile', 'options.workers', 'options']) {
          assert.ok(err.message.includes(`${field}:`), `message names ${field}: ${err.message}`)
        }
        assert.ok(!err.message.includes('1234'), 'values are not echoed')
        return true
      },
    )
  })

  it('applies defaults', () => {
    const c = parseSeConfig({
      name: 'hsm',
      type: 'pkcs11',
      options: { modulePath: '/m.so', tokenLabel: 't', pinFile: '/p' },
    })
    assert.deepEqual(c.options, { modulePath: '/m.so', tokenLabel: 't', pinFile: '/p', protectionLevel: 3, workers: 1 })
    const s = parseSeConfig({ name: 'software', type: 'software', options: { masterKeyFile: '/k' } })
    assert.deepEqual(s.options, { masterKeyFile: '/k', cacheSize: 10_000 })
  })

  it('createSecureEnvironments rejects duplicate names and closes what it created when one fails', async () => {
    await assert.rejects(
      createSecureEnvironments([
        { name: 'a', type: 'software', options: { masterKeyFile } },
        { name: 'a', type: 'software', options: { masterKeyFile } },
      ]),
      { code: 'ERR_CONFIG_INVALID' },
    )
    await assert.rejects(
      createSecureEnvironments([
        { name: 'a', type: 'software', options: { masterKeyFile } },
        { name: 'b', type: 'software', options: { masterKeyFile: join(dir.path, 'missing') } },
      ]),
      { code: 'ERR_CONFIG_INVALID' },
    )
  })

  describe('pkcs11 through the registry', () => {
    let token: SoftHsmToken
    before(async () => {
      token = await startSoftHsm({ label: 'm2msec-se-registry' })
    })
    after(() => token?.stop())

    it('loads the PKCS#11 module on demand and reads the PIN from its file', async () => {
      const se = await createSecureEnvironment({
        name: 'hsm-1',
        type: 'pkcs11',
        options: {
          modulePath: token.modulePath,
          tokenLabel: token.tokenLabel,
          pinFile: token.pinFile,
          protectionLevel: 1,
        },
      })
      try {
        assert.equal(pkcs11Loaded(), true)
        assert.equal(se.protectionLevel, 1)
        const { ref } = await se.generateKey({ algorithm: 'AES_256_GCM', label: 'x' })
        assert.match(ref, /^p11\.[0-9a-f]{32}$/)
      } finally {
        await se.close()
      }
    })
  })
})
