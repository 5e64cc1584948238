/**
 * Great-circle distance for circRegion checks. TS-0003 / TS-0004 do not name an earth model,
 * so this uses a sphere with the IUGG mean earth radius; the error against WGS-84 is below
 * 0.5 %, far under the accuracy of network-based location (TS-0003 Annex F).
 */

/** IUGG mean earth radius R1, in metres. */
export const EARTH_RADIUS_M = 6_371_008.8

const RAD = Math.PI / 180

/** True for a finite latitude in [-90, 90] and longitude in [-180, 180]. */
export function isValidCoordinate(lat: number, lon: number): boolean {
  return (
    typeof lat === 'number' &&
    typeof lon === 'number' &&
    Number.isFinite(lat) &&
    Number.isFinite(lon) &&
    lat >= -90 &&
    lat <= 90 &&
    lon >= -180 &&
    lon <= 180
  )
}

/**
 * Haversine distance in metres between two points given in degrees.
 *
 * @example
 * ```ts
 * haversineMetres(0, 0, 0, 1) // ≈ 111195 (one degree of the equator)
 * ```
 */
export function haversineMetres(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = (lat2 - lat1) * RAD
  const dLon = (lon2 - lon1) * RAD
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2
  // min() guards against a > 1 from rounding for antipodal points.
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)))
}

/** True when the point lies in the circle; the boundary counts as inside. */
export function inCircle(lat: number, lon: number, circle: readonly [number, number, number]): boolean {
  return haversineMetres(circle[0], circle[1], lat, lon) <= circle[2]
}
