import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { startSoftHsm, type SoftHsmToken } from '../src/index.ts'

const run = promisify(execFile)
const tokens: SoftHsmToken[] = []
after(async () => {
  for (const t of tokens) await t.stop()
})

async function listTokenLabels(token: SoftHsmToken): Promise<string[]> {
  const { stdout } = await run('pkcs11-tool', ['--module', token.modulePath, '--list-token-slots'], {
    env: { ...process.env, SOFTHSM2_CONF: token.confPath },
  })
  return [...stdout.matchAll(/token label\s*:\s*(.+)$/gm)].map((m) => (m[1] ?? '').trim())
}

test('startSoftHsm: each call adds a token with a unique label in one per-process conf', async () => {
  const a = await startSoftHsm()
  tokens.push(a)
  const b = await startSoftHsm({ label: 'second', pin: '987654' })
  tokens.push(b)
  assert.equal(process.env['SOFTHSM2_CONF'], a.confPath)
  assert.equal(a.confPath, b.confPath)
  assert.notEqual(a.tokenLabel, b.tokenLabel)
  assert.equal(b.tokenLabel, 'second')
  assert.equal(await readFile(b.pinFile, 'utf8'), '987654')
  assert.equal(await readFile(a.pinFile, 'utf8'), a.pin)

  const labels = await listTokenLabels(a)
  assert.ok(labels.includes(a.tokenLabel), `labels: ${labels.join(', ')}`)
  assert.ok(labels.includes('second'))

  // The user PIN works: pkcs11-tool logs in and lists (no) objects.
  await run(
    'pkcs11-tool',
    ['--module', b.modulePath, '--token-label', 'second', '--login', '--pin', b.pin, '--list-objects'],
    {
      env: { ...process.env, SOFTHSM2_CONF: b.confPath },
    },
  )

  await b.stop()
  assert.ok(!(await listTokenLabels(a)).includes('second'))
})

test('startSoftHsm rejects a label that is already in use', async () => {
  const a = await startSoftHsm({ label: 'dup' })
  tokens.push(a)
  await assert.rejects(startSoftHsm({ label: 'dup' }), { code: 'ERR_ALREADY_EXISTS' })
  await assert.rejects(startSoftHsm({ label: 'x'.repeat(33) }), { code: 'ERR_INVALID_ARGUMENT' })
  await assert.rejects(startSoftHsm({ pin: '12' }), { code: 'ERR_INVALID_ARGUMENT' })
})
