import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { EARTH_RADIUS_M, haversineMetres, inCircle, isValidCoordinate } from '../src/index.ts'

describe('haversine', () => {
  test('one degree along the equator and along a meridian is R·π/180', () => {
    const oneDegree = (EARTH_RADIUS_M * Math.PI) / 180
    assert.ok(Math.abs(haversineMetres(0, 0, 0, 1) - oneDegree) < 1e-6)
    assert.ok(Math.abs(haversineMetres(10, 20, 11, 20) - oneDegree) < 1e-6)
  })
  test('Paris–London is about 343.5 km (independent published great-circle figure ±1 km)', () => {
    const d = haversineMetres(48.8566, 2.3522, 51.5074, -0.1278)
    assert.ok(Math.abs(d - 343_500) < 1_000, String(d))
  })
  test('antipodal points are half the circumference; the same point is 0', () => {
    assert.ok(Math.abs(haversineMetres(0, 0, 0, 180) - Math.PI * EARTH_RADIUS_M) < 1e-3)
    assert.equal(haversineMetres(45, 45, 45, 45), 0)
  })
  test('across the antimeridian', () => {
    const d = haversineMetres(0, 179.5, 0, -179.5)
    assert.ok(Math.abs(d - (EARTH_RADIUS_M * Math.PI) / 180) < 1e-6)
  })
  test('the circle boundary counts as inside', () => {
    const r = haversineMetres(0, 0, 0, 1)
    assert.equal(inCircle(0, 1, [0, 0, r]), true)
    assert.equal(inCircle(0, 1, [0, 0, r - 0.01]), false)
  })
  test('coordinate validity', () => {
    assert.equal(isValidCoordinate(90, 180), true)
    assert.equal(isValidCoordinate(-90, -180), true)
    assert.equal(isValidCoordinate(90.0001, 0), false)
    assert.equal(isValidCoordinate(0, -180.0001), false)
    assert.equal(isValidCoordinate(Number.NaN, 0), false)
  })
})
