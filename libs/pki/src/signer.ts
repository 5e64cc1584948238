/**
 * The signer port of the CA: private keys stay in the KMS, so every certificate, CRL and OCSP
 * response is signed by an async call that returns an ECDSA P-256/SHA-256 signature in the
 * KMS's format (r‖s, 64 bytes, IEEE P1363). This module adapts it to what @peculiar/x509 and
 * the ASN.1 structures need.
 */
import { webcrypto } from 'node:crypto'
import { M2msecError } from '@m2msec/errors'
import { tlv, unsignedIntegerContent } from './der.ts'

type Crypto = webcrypto.Crypto
type CryptoKey = webcrypto.CryptoKey
type BufferSource = webcrypto.BufferSource

/**
 * Signs with one CA key. Contract: `sign(data)` hashes `data` with SHA-256 and returns the
 * ECDSA P-256 signature as r‖s (64 bytes); it rejects with an M2msecError (e.g.
 * ERR_KEY_DISABLED, ERR_UNAVAILABLE) when it cannot sign.
 *
 * @example
 * ```ts
 * const signer: CaSigner = { sign: (data) => kms.sign(tenant, 'pki-acme-issuing', data) }
 * ```
 */
export interface CaSigner {
  sign(data: Uint8Array): Promise<Uint8Array>
}

/** OID of ecdsa-with-SHA256, the only signature algorithm this CA uses or accepts. */
export const ECDSA_WITH_SHA256_OID = '1.2.840.10045.4.3.2'

/** What @peculiar/x509 reads from a signing key to pick ecdsa-with-SHA256 and the point size. */
const EC_P256_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const

/**
 * A key stand-in and a WebCrypto object whose `subtle.sign` calls `signer`; every other
 * operation is node's WebCrypto. Pass both to the x509 generators.
 */
export function signerCrypto(signer: CaSigner): { crypto: Crypto; signingKey: CryptoKey } {
  const subtle = new Proxy(webcrypto.subtle, {
    get(target, prop) {
      if (prop === 'sign') {
        return async (_alg: unknown, _key: unknown, data: BufferSource) =>
          checkedP1363(await signer.sign(toBytes(data))).slice().buffer
      }
      const value = Reflect.get(target, prop) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
  const crypto = {
    subtle,
    getRandomValues: <T extends ArrayBufferView | null>(array: T) => webcrypto.getRandomValues(array as never) as T,
    randomUUID: () => webcrypto.randomUUID(),
  } as unknown as Crypto
  const signingKey = { algorithm: EC_P256_ALGORITHM, type: 'private', extractable: false, usages: ['sign'] }
  return { crypto, signingKey: signingKey as unknown as CryptoKey }
}

function toBytes(data: BufferSource): Uint8Array {
  if (data instanceof Uint8Array) return data
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return new Uint8Array(data)
}

function checkedP1363(sig: Uint8Array): Uint8Array {
  if (sig.length !== 64) {
    throw new M2msecError('ERR_INTERNAL', 'the CA signer returned a signature that is not P-256 r||s', {
      bytes: sig.length,
    })
  }
  return sig
}

/**
 * Converts an r‖s signature (64 bytes) to the DER `ECDSA-Sig-Value` that X.509, CRLs and
 * OCSP carry.
 *
 * @example
 * ```ts
 * const der = p1363ToDer(await signer.sign(tbs))
 * ```
 */
export function p1363ToDer(sig: Uint8Array): Uint8Array {
  const s = checkedP1363(sig)
  return tlv(
    0x30,
    tlv(0x02, unsignedIntegerContent(s.subarray(0, 32))),
    tlv(0x02, unsignedIntegerContent(s.subarray(32))),
  )
}

/**
 * A CaSigner over a local WebCrypto P-256 private key: for tests, benchmarks and the SDK's
 * self-checks. The platform's CA keys live in the KMS and never use this.
 */
export function localSigner(privateKey: CryptoKey): CaSigner {
  return {
    async sign(data) {
      const sig = await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, data)
      return new Uint8Array(sig)
    },
  }
}
