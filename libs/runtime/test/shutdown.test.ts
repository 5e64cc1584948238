import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { runUntilSignal, systemClock, systemRandom } from '../src/index.ts'
import { captureLogger } from './helpers.ts'

function fakeProcess(): { source: EventEmitter; exits: number[]; exit: (code: number) => void } {
  const exits: number[] = []
  return { source: new EventEmitter(), exits, exit: (code) => void exits.push(code) }
}

test('on SIGTERM the hooks run in reverse order, a slow or failing hook does not block, exit 0', async () => {
  const { log, lines } = captureLogger()
  const { source, exits, exit } = fakeProcess()
  const order: string[] = []
  let ready!: () => void
  const isReady = new Promise<void>((r) => (ready = r))
  const running = runUntilSignal(
    log,
    async (onShutdown) => {
      onShutdown(() => void order.push('telemetry'), 'telemetry')
      onShutdown(() => new Promise(() => order.push('stuck')), 'stuck')
      onShutdown(() => {
        order.push('failing')
        throw new Error('close failed')
      }, 'failing')
      onShutdown({ shutdown: async () => void order.push('server') }, 'server')
      ready()
    },
    { hookTimeoutMs: 50, signalSource: source, exit },
  )
  await isReady
  assert.deepEqual(order, [])
  source.emit('SIGTERM', 'SIGTERM')
  assert.equal(await running, 0)
  assert.deepEqual(order, ['server', 'failing', 'stuck', 'telemetry'])
  assert.deepEqual(exits, [0])
  const msgs = lines().map((l) => `${String(l['msg'])}${l['hook'] === undefined ? '' : `:${String(l['hook'])}`}`)
  assert.ok(msgs.includes('shutdown step failed:failing'), msgs.join(','))
  assert.ok(msgs.includes('shutdown step timed out:stuck'), msgs.join(','))
  assert.equal(source.listenerCount('SIGTERM'), 0)
})

test('a setup failure is logged, the hooks registered so far run, exit 1', async () => {
  const { log, lines, text } = captureLogger()
  const { source, exits, exit } = fakeProcess()
  const order: string[] = []
  const code = await runUntilSignal(
    log,
    async (onShutdown) => {
      onShutdown(() => void order.push('nats'), 'nats')
      throw Object.assign(new Error('listen failed'), { token: 'tok-SECRET' })
    },
    { signalSource: source, exit },
  )
  assert.equal(code, 1)
  assert.deepEqual(exits, [1])
  assert.deepEqual(order, ['nats'])
  assert.ok(lines().some((l) => l['msg'] === 'startup failed'))
  assert.ok(!text().includes('tok-SECRET'))
})

test('a second signal during shutdown exits 1 at once', async () => {
  const { log } = captureLogger()
  const { source, exits, exit } = fakeProcess()
  let release!: () => void
  const running = runUntilSignal(
    log,
    async (onShutdown) => {
      onShutdown(() => new Promise<void>((r) => (release = r)))
    },
    { signalSource: source, exit },
  )
  await new Promise((r) => setImmediate(r))
  source.emit('SIGINT', 'SIGINT')
  while (release === undefined) await new Promise((r) => setImmediate(r))
  source.emit('SIGINT', 'SIGINT')
  assert.deepEqual(exits, [1])
  release()
  await running
})

function runFixture(mode: 'ok' | 'fail'): Promise<{ code: number | null; out: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'shutdown-app.ts'), mode],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  let signalled = false
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString()
    if (!signalled && out.includes('"msg":"ready"')) {
      signalled = true
      child.kill('SIGTERM')
    }
  })
  child.stderr.on('data', (c: Buffer) => (out += c.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

test('a real process exits 0 after SIGTERM with hooks in reverse order, and 1 on setup failure', async () => {
  const ok = await runFixture('ok')
  assert.equal(ok.code, 0, ok.out)
  assert.ok(ok.out.indexOf('hook server') < ok.out.indexOf('hook telemetry'), ok.out)
  assert.ok(ok.out.indexOf('hook server') > 0)
  const failed = await runFixture('fail')
  assert.equal(failed.code, 1, failed.out)
  assert.match(failed.out, /startup failed/)
  assert.match(failed.out, /hook server/)
  assert.ok(!failed.out.includes('hunter2-SECRET'))
})

test('systemClock and systemRandom', () => {
  assert.ok(Math.abs(systemClock.now().getTime() - Date.now()) < 1_000)
  const a = systemRandom.bytes(32)
  assert.ok(a instanceof Uint8Array)
  assert.equal(a.length, 32)
  assert.notDeepEqual(a, systemRandom.bytes(32))
})
