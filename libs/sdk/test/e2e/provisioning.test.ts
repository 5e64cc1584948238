/** Remote provisioning of a provider's credential, sealed end to end (SER-020/021). */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { compactDecrypt, decodeProtectedHeader } from 'jose'
import {
  CREDENTIAL_JWS_TYPE,
  decryptEsData,
  encryptEsData,
  openCredential,
  sealCredential,
  signThenEncryptEsData,
  type OpenCredentialOptions,
  type SealCredentialOptions,
} from '../../src/e2e/index.ts'
import { fixedBytes, seededRandom } from './helpers.ts'

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0)
const ec = () => generateKeyPairSync('ec', { namedCurve: 'P-256' })
const provider = ec()
const meter17 = ec()
const meter18 = ec()
const gateway = ec()
const SECRET = fixedBytes('sp-own-saef-key')
const CRED = {
  credentialId: '12-sp-saef@sp.example.com',
  suid: 12,
  key: SECRET,
  notAfter: NOW + 365 * 86_400_000,
  labels: ['saef'],
}

function seal(over: Partial<SealCredentialOptions> = {}): Promise<string> {
  return sealCredential({
    credential: CRED,
    providerId: 'sp.example.com',
    signingKey: { key: provider.privateKey, kid: 'sp-sig-1' },
    deviceId: 'urn:dev:ops:meter-17',
    deviceKey: { key: meter17.publicKey, kid: 'meter-17' },
    now: () => NOW,
    random: seededRandom('jti'),
    ...over,
  })
}

function deviceOptions(over: Partial<OpenCredentialOptions> = {}): OpenCredentialOptions {
  const used = new Set<string>()
  return {
    deviceId: 'urn:dev:ops:meter-17',
    deviceKey: { key: meter17.privateKey, kid: 'meter-17' },
    trustedProviders: [{ providerId: 'sp.example.com', kid: 'sp-sig-1', key: provider.publicKey }],
    now: () => NOW,
    markUsed: (jti) => (used.has(jti) ? false : (used.add(jti), true)),
    ...over,
  }
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    const e = err as { code?: string; details?: { reason?: string } }
    return e.details?.reason === undefined ? String(e.code) : `${e.code}/${e.details.reason}`
  }
}

/** The platform and the gateway only store and forward the sealed string. */
function relayThroughPlatform(sealed: string): string {
  const queue = [JSON.stringify({ to: 'urn:dev:ops:meter-17', op: 'provision', pc: { sealed } })]
  return (JSON.parse(queue.shift()!) as { pc: { sealed: string } }).pc.sealed
}

describe('sealed credential provisioning', () => {
  test('the device opens what the provider sealed; the envelope is JWE ECDH-ES+A256KW around an ES256 JWS', async () => {
    const sealed = await seal()
    assert.deepEqual(decodeProtectedHeader(sealed), {
      cty: 'JOSE',
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      kid: 'meter-17',
      epk: decodeProtectedHeader(sealed).epk,
    })
    const opened = await openCredential(relayThroughPlatform(sealed), deviceOptions())
    assert.equal(opened.providerId, 'sp.example.com')
    assert.equal(opened.issuedAt, NOW)
    assert.deepEqual(opened.credential, CRED)
  })

  test('a gateway or another device cannot open it', async () => {
    const sealed = await seal()
    await assert.rejects(compactDecrypt(sealed, gateway.privateKey))
    await assert.rejects(compactDecrypt(sealed, meter18.privateKey))
    const as = (kid: string, key = gateway.privateKey) => deviceOptions({ deviceKey: { key, kid } })
    assert.equal(await outcome(openCredential(sealed, as('gateway-1'))), 'ERR_KEY_NOT_FOUND')
    assert.equal(await outcome(openCredential(sealed, as('meter-17'))), 'ERR_CIPHERTEXT_INVALID')
    assert.equal(
      await outcome(
        openCredential(
          sealed,
          deviceOptions({ deviceId: 'urn:dev:ops:meter-18', deviceKey: { key: meter18.privateKey, kid: 'meter-18' } }),
        ),
      ),
      'ERR_KEY_NOT_FOUND',
    )
  })

  test('a gateway cannot change it or slip in a credential of its own', async () => {
    const sealed = await seal()
    const parts = sealed.split('.')
    for (const i of [0, 1, 2, 3, 4]) {
      const p = [...parts]
      const b = Buffer.from(p[i]!, 'base64url')
      b[b.length - 1]! ^= 1
      p[i] = b.toString('base64url')
      const r = await outcome(openCredential(p.join('.'), deviceOptions()))
      assert.ok(['ERR_CIPHERTEXT_INVALID', 'ERR_INVALID_ARGUMENT/malformed'].includes(r), `part ${i}: ${r}`)
    }
    // Encrypting to the device's public key is easy; signing as the provider is not.
    const ownKid = await seal({ signingKey: { key: gateway.privateKey, kid: 'gw-sig' }, providerId: 'gw' })
    assert.equal(await outcome(openCredential(ownKid, deviceOptions())), 'ERR_KEY_NOT_FOUND')
    const claimedKid = await seal({ signingKey: { key: gateway.privateKey, kid: 'sp-sig-1' } })
    assert.equal(await outcome(openCredential(claimedKid, deviceOptions())), 'ERR_SIGNATURE_INVALID')
  })

  test('another device cannot re-address its own credential, and the issuer must match the signing key', async () => {
    const forMeter18 = await seal({
      deviceId: 'urn:dev:ops:meter-18',
      deviceKey: { key: meter18.publicKey, kid: 'meter-18' },
    })
    const inner = await decryptEsData(forMeter18, { keys: [{ kid: 'meter-18', key: meter18.privateKey }] })
    const readdressed = await encryptEsData(inner.plaintext, {
      recipients: [{ alg: 'ECDH-ES+A256KW', key: meter17.publicKey, kid: 'meter-17' }],
      header: { cty: 'JOSE' },
    })
    assert.equal(await outcome(openCredential(readdressed, deviceOptions())), 'ERR_PERMISSION_DENIED/audience')
    // A trusted provider key, but the claims say another provider.
    assert.equal(
      await outcome(openCredential(await seal({ providerId: 'other-sp.example.com' }), deviceOptions())),
      'ERR_UNAUTHENTICATED',
    )
    // Some other nested ESData the provider signed is not a credential.
    const other = await signThenEncryptEsData(new TextEncoder().encode('{}'), {
      signer: { alg: 'ES256', key: provider.privateKey, kid: 'sp-sig-1' },
      recipients: [{ alg: 'ECDH-ES+A256KW', key: meter17.publicKey, kid: 'meter-17' }],
    })
    assert.equal(await outcome(openCredential(other, deviceOptions())), 'ERR_INVALID_ARGUMENT/wrong-type')
    const typed = await signThenEncryptEsData(
      new TextEncoder().encode('{"iss":"sp.example.com","aud":"urn:dev:ops:meter-17"}'),
      {
        signer: { alg: 'ES256', key: provider.privateKey, kid: 'sp-sig-1' },
        innerHeader: { typ: CREDENTIAL_JWS_TYPE },
        recipients: [{ alg: 'ECDH-ES+A256KW', key: meter17.publicKey, kid: 'meter-17' }],
      },
    )
    assert.equal(await outcome(openCredential(typed, deviceOptions())), 'ERR_INVALID_ARGUMENT/malformed')
  })

  test('single use and a delivery window', async () => {
    const sealed = await seal({ validityMs: 3_600_000 })
    const options = deviceOptions()
    await openCredential(sealed, options)
    assert.equal(await outcome(openCredential(sealed, options)), 'ERR_REPLAY/replay')
    assert.equal(
      await outcome(openCredential(sealed, deviceOptions({ now: () => NOW + 3_600_000 + 61_000 }))),
      'ERR_TOKEN_EXPIRED',
    )
    assert.equal(
      await outcome(openCredential(sealed, deviceOptions({ now: () => NOW - 120_000 }))),
      'ERR_TOKEN_EXPIRED',
    )
    assert.equal(
      (await openCredential(sealed, deviceOptions({ now: () => NOW + 3_600_000 + 30_000 }))).providerId,
      'sp.example.com',
    )
  })

  test('bad inputs are refused before sealing', async () => {
    assert.equal(await outcome(seal({ credential: { ...CRED, suid: 99 } })), 'ERR_INVALID_ARGUMENT')
    assert.equal(await outcome(seal({ credential: { ...CRED, key: new Uint8Array(8) } })), 'ERR_INVALID_ARGUMENT')
    assert.equal(await outcome(seal({ deviceId: '' })), 'ERR_INVALID_ARGUMENT')
    assert.equal(await outcome(seal({ validityMs: 10 })), 'ERR_INVALID_ARGUMENT')
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    assert.equal(await outcome(seal({ deviceKey: { key: rsa.publicKey, kid: 'x' } })), 'ERR_KEY_TYPE_MISMATCH')
  })
})
