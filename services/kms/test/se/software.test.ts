/**
 * The software SE against the conformance suite, plus what is specific to its sealed refs:
 * a ref opens only under its master key and cannot be re-typed or re-labelled exportable.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { TmpDir } from '@m2msec/testkit'
import { tmpDir } from '@m2msec/testkit'
import { create, loadMasterKeyFile } from '../../src/se/software/index.ts'
import { runSecureEnvironmentSuite } from './conformance.ts'

const masterKey = new Uint8Array(randomBytes(32))

runSecureEnvironmentSuite('software', () => create('software', { masterKey }), { refCarriesMaterial: true })

describe('software SE: sealed refs', () => {
  it('has protection level 1 and the sw1 ref format', async () => {
    const se = await create('sw', { masterKey })
    assert.equal(se.protectionLevel, 1)
    assert.equal(se.type, 'software')
    const { ref } = await se.generateKey({ algorithm: 'AES_256_GCM', label: 'x' })
    assert.match(ref, /^sw1\.[A-Za-z0-9_-]+$/)
    await se.close()
  })

  it('a ref does not open under another master key', async () => {
    const a = await create('a', { masterKey })
    const b = await create('b', { masterKey: new Uint8Array(randomBytes(32)) })
    const { ref } = await a.importKey({ algorithm: 'HMAC_SHA256', label: 'x', material: new Uint8Array(32) })
    await assert.rejects(b.mac({ ref, algorithm: 'HMAC_SHA256' }, new Uint8Array(1)), { code: 'ERR_INVALID_ARGUMENT' })
    await Promise.all([a.close(), b.close()])
  })

  it('editing the clear header (algorithm or exportable flag) breaks the ref', async () => {
    const se = await create('sw', { masterKey, cacheSize: 0 })
    const { ref } = await se.importKey({
      algorithm: 'HMAC_SHA256',
      label: 'x',
      material: new Uint8Array(randomBytes(32)),
    })
    const raw = Buffer.from(ref.slice(4), 'base64url')
    const exportable = Buffer.from(raw)
    exportable[1] = 1
    await assert.rejects(
      se.mac({ ref: `sw1.${exportable.toString('base64url')}`, algorithm: 'HMAC_SHA256' }, new Uint8Array(1)),
      {
        code: 'ERR_INVALID_ARGUMENT',
      },
    )
    const retyped = Buffer.from(raw)
    retyped[0] = 1 // AES_256_GCM
    await assert.rejects(
      se.encrypt(
        { ref: `sw1.${retyped.toString('base64url')}`, algorithm: 'AES_256_GCM' },
        new Uint8Array(1),
        new Uint8Array(0),
      ),
      { code: 'ERR_INVALID_ARGUMENT' },
    )
    await se.close()
  })

  it('rejects a master key that is not 32 bytes', async () => {
    await assert.rejects(create('sw', { masterKey: new Uint8Array(16) }), { code: 'ERR_CONFIG_INVALID' })
  })
})

describe('software SE: master key file', () => {
  let dir: TmpDir
  before(async () => {
    dir = await tmpDir('m2msec-se')
  })
  after(() => dir.cleanup())

  it('reads raw, hex and base64 master key files', async () => {
    const key = new Uint8Array(randomBytes(32))
    const forms: Array<[string, string | Uint8Array]> = [
      ['raw', key],
      ['hex', `${Buffer.from(key).toString('hex')}\n`],
      ['b64', `${Buffer.from(key).toString('base64')}\n`],
      ['b64url', Buffer.from(key).toString('base64url')],
    ]
    for (const [name, content] of forms) {
      const path = join(dir.path, name)
      writeFileSync(path, content, { mode: 0o600 })
      assert.deepEqual(await loadMasterKeyFile(path), key, name)
    }
  })

  it('rejects a missing or malformed file with ERR_CONFIG_INVALID, without echoing content', async () => {
    await assert.rejects(loadMasterKeyFile(join(dir.path, 'missing')), { code: 'ERR_CONFIG_INVALID' })
    const path = join(dir.path, 'short')
    writeFileSync(path, 'c2VjcmV0LXZhbHVl\n')
    await assert.rejects(loadMasterKeyFile(path), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_CONFIG_INVALID')
      assert.ok(!err.message.includes('c2VjcmV0'))
      return true
    })
  })
})
