import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTokenBuckets } from '../src/index.ts'

test('token buckets: burst, then one token per 1/rate seconds; keys are independent', () => {
  const b = createTokenBuckets({ perSec: 2, burst: 2 })
  assert.equal(b.take('a', 0), 0)
  assert.equal(b.take('a', 0), 0)
  assert.equal(b.take('a', 0), 500)
  assert.equal(b.take('b', 0), 0)
  assert.equal(b.take('a', 500), 0)
  assert.equal(createTokenBuckets({ perSec: 0, burst: 1 }).take('x', 0), 0)
})

test('token buckets: at most maxKeys keys are remembered; the one least recently granted goes first', () => {
  const b = createTokenBuckets({ perSec: 1, burst: 1 }, 2)
  assert.equal(b.take('a', 0), 0)
  assert.equal(b.take('b', 0), 0)
  assert.ok(b.take('a', 0) > 0, 'a is empty (a refusal does not refresh it)')
  assert.equal(b.take('c', 0), 0) // a third key: a, granted longest ago, is forgotten
  assert.ok(b.take('b', 0) > 0, 'b is still remembered and empty')
  assert.equal(b.take('a', 0), 0, 'a was forgotten: a full bucket again')
})
