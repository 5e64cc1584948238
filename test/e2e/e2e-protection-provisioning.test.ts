/**
 * Issue 5, remote provisioning of a service provider's own credential into a device, sealed
 * end to end (TS-0002 SER-020, SER-021), on real processes (nats-server, the KMS as a child
 * process, authn) and through a gateway that records every byte it forwards.
 *
 * The device's key-agreement key comes to the provider through the platform: the device
 * authenticates to authn (PSK assertion naming the key's thumbprint) and receives an access
 * token for the provider's audience whose `cnf.jkt` binds that P-256 key (RFC 7800). The
 * provider checks the token against authn's JWKS, `sub` against the device it provisions and
 * the thumbprint against the key, then seals its credential (sign-then-encrypt) to that key and
 * pushes it through the gateway. The device opens and verifies it; the gateway and another
 * device cannot; a replay, a substituted key or token, and a credential the gateway made itself
 * are refused.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import {
  calculateJwkThumbprint,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
} from 'jose'
import { M2msecError } from '@m2msec/errors'
import { EntityKind } from '@m2msec/proto/authn/v1'
import { openCredential, sealCredential, type ProvisionedCredential } from '@m2msec/sdk/e2e'
import {
  assertAbsent,
  postJson,
  refusal,
  startE2ePlatform,
  TENANT,
  TOKEN_ISSUER,
  via,
  type E2ePlatform,
  type Party,
} from './e2e-protection-platform.ts'

const SP = 'sp.example.com' // the service provider: outside the platform
const SP_KID = 'sp-sig-1'
const DEVICE = 'Cmeter17'
const OTHER = 'Cmeter18'
const GATEWAY = '/mn-gw01'

type Json = Record<string, unknown>

/** A key-agreement key pair of an entity, named by its RFC 7638 thumbprint. */
interface AgreementKey {
  readonly publicJwk: JWK
  readonly privateKey: CryptoKey
  readonly kid: string
}

async function agreementKey(): Promise<AgreementKey> {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true })
  const publicJwk = await exportJWK(publicKey)
  return { publicJwk, privateKey, kid: await calculateJwkThumbprint(publicJwk) }
}

describe('sealed provisioning of a provider credential through the gateway (SER-020/021)', { timeout: 120_000 }, () => {
  let platform: E2ePlatform
  let device: Party
  let gateway: Party
  let deviceKey: AgreementKey
  let gatewayKey: AgreementKey
  let otherKey: AgreementKey
  const provider = { privateKey: undefined as CryptoKey | undefined, publicKey: undefined as CryptoKey | undefined }
  /** Device keys the provider accepted, by device id. */
  const deviceKeys = new Map<string, { kid: string; key: CryptoKey }>()
  /** Credentials the device installed. */
  const installed: ProvisionedCredential[] = []

  before(async () => {
    platform = await startE2ePlatform('e2e-protection-provisioning')
    device = await platform.enrol(DEVICE, EntityKind.ENTITY_KIND_AE)
    await platform.enrol(OTHER, EntityKind.ENTITY_KIND_AE)
    gateway = await platform.enrol(GATEWAY, EntityKind.ENTITY_KIND_CSE)
    ;[deviceKey, gatewayKey, otherKey] = await Promise.all([agreementKey(), agreementKey(), agreementKey()])
    const sp = await generateKeyPair('ES256')
    provider.privateKey = sp.privateKey
    provider.publicKey = sp.publicKey

    // The provider's endpoint for key announcements: it trusts a key only as the platform binds it.
    const jwks = createRemoteJWKSet(new URL(platform.jwksUrl))
    platform.relay.route(
      SP,
      await platform.endpoint(async (outer) => {
        const { token, jwk } = outer.pc as { token: string; jwk: JWK }
        let claims: Json
        try {
          claims = (await jwtVerify(token, jwks, { issuer: TOKEN_ISSUER, audience: SP, algorithms: ['ES256'] })).payload
        } catch (cause) {
          throw new M2msecError(
            'ERR_UNAUTHENTICATED',
            'not a platform token for this provider',
            { reason: 'token' },
            { cause },
          )
        }
        const jkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt
        const sub = claims.sub
        if (typeof sub !== 'string' || sub !== outer.fr || claims.tenant !== TENANT) {
          throw new M2msecError('ERR_UNAUTHENTICATED', "the token is not the announcing device's", {
            reason: 'subject',
          })
        }
        if (jkt !== (await calculateJwkThumbprint(jwk))) {
          throw new M2msecError('ERR_UNAUTHENTICATED', 'the platform does not bind this key to this device', {
            reason: 'key-binding',
          })
        }
        deviceKeys.set(sub, { kid: jkt, key: (await importJWK(jwk, 'ECDH-ES+A256KW')) as CryptoKey })
        return { rsc: 2001, rqi: outer.rqi }
      }),
    )

    // The device's endpoint: it installs credentials sealed by the providers it trusts.
    const used = new Map<string, number>()
    platform.relay.route(
      DEVICE,
      await platform.endpoint(async (outer) => {
        const { sealed } = outer.pc as { sealed: string }
        const opened = await openCredential(sealed, {
          deviceId: DEVICE,
          deviceKey: { key: deviceKey.privateKey, kid: deviceKey.kid },
          trustedProviders: [{ providerId: SP, kid: SP_KID, key: provider.publicKey! }],
          now: Date.now,
          markUsed: (jti, expiresAt) => {
            if (used.has(jti)) return false
            used.set(jti, expiresAt)
            return true
          },
        })
        installed.push(opened.credential)
        return { rsc: 2001, rqi: outer.rqi }
      }),
    )
  })

  after(async () => {
    await platform?.stop()
  })

  /** The device announces its key to the provider through the gateway, with a platform token. */
  async function announce(party: Party, key: AgreementKey) {
    const token = await party.boundToken(SP, key.publicJwk, key.kid)
    return postJson(via(platform.relay, SP), {
      op: 1,
      to: SP,
      fr: party.id,
      rqi: `k-${randomBytes(4).toString('hex')}`,
      pc: { token, jwk: key.publicJwk },
    })
  }

  test('the provider seals its credential to the platform-bound device key; only the device opens it', async (t) => {
    const started = performance.now()
    const announced = await announce(device, deviceKey)
    assert.equal(announced.status, 200, JSON.stringify(announced.body))
    const bound = deviceKeys.get(DEVICE)
    assert.equal(bound?.kid, deviceKey.kid)

    const credential: ProvisionedCredential = {
      credentialId: `12-sp-saef@${SP}`,
      suid: 12,
      key: new Uint8Array(randomBytes(32)),
      labels: ['saef', 'tls-psk'],
    }
    const sealed = await sealCredential({
      credential,
      providerId: SP,
      signingKey: { key: provider.privateKey!, kid: SP_KID },
      deviceId: DEVICE,
      deviceKey: { key: bound!.key, kid: bound!.kid },
      now: Date.now,
      random: randomBytes,
    })
    const pushed = await postJson(via(platform.relay, DEVICE), { op: 1, to: DEVICE, fr: SP, rqi: 'p1', pc: { sealed } })
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body))
    assert.equal(installed.length, 1)
    assert.deepEqual(installed[0], credential)
    t.diagnostic(`announce + seal + push + open: ${(performance.now() - started).toFixed(0)} ms`)

    // The gateway forwarded the sealed object but none of its secrets.
    assert.ok(platform.relay.bytes().includes(sealed))
    const d = (await exportJWK(deviceKey.privateKey)).d ?? ''
    assertAbsent(platform.relay.bytes(), {
      'the credential key': credential.key,
      "the device's private key": Buffer.from(d, 'base64url'),
    })

    // Neither the gateway nor another device opens it, with its own key or under the device's kid.
    for (const [id, key] of [
      [GATEWAY, gatewayKey],
      [OTHER, otherKey],
    ] as const) {
      const trustedProviders = [{ providerId: SP, kid: SP_KID, key: provider.publicKey! }]
      const options = { deviceId: id, trustedProviders, now: Date.now, markUsed: () => true }
      const own = await refusal(
        openCredential(sealed, { ...options, deviceKey: { key: key.privateKey, kid: key.kid } }),
      )
      assert.equal(own.code, 'ERR_KEY_NOT_FOUND', id)
      const posing = await refusal(
        openCredential(sealed, { ...options, deviceKey: { key: key.privateKey, kid: deviceKey.kid } }),
      )
      assert.equal(posing.code, 'ERR_CIPHERTEXT_INVALID', id)
    }

    // The gateway replays the provisioning message it forwarded.
    const forwarded = platform.relay.records.find((r) => r.to === DEVICE && r.status === 200)
    assert.ok(forwarded !== undefined)
    const replayed = await platform.relay.inject(DEVICE, forwarded.request)
    assert.equal(replayed.status, 400)
    assert.equal(replayed.body.code, 'ERR_REPLAY')
    assert.equal(installed.length, 1)

    // The gateway seals a credential of its own to the device's key (it saw the public key).
    const forged = await sealCredential({
      credential: { ...credential, key: new Uint8Array(randomBytes(32)) },
      providerId: SP,
      signingKey: { key: (await generateKeyPair('ES256')).privateKey, kid: 'gw-sig' },
      deviceId: DEVICE,
      deviceKey: { key: bound!.key, kid: bound!.kid },
      now: Date.now,
      random: randomBytes,
    })
    const injected = await platform.relay.inject(
      DEVICE,
      Buffer.from(JSON.stringify({ fr: SP, pc: { sealed: forged } })),
    )
    assert.equal(injected.body.code, 'ERR_KEY_NOT_FOUND')
    assert.equal(installed.length, 1)
  })

  test('the gateway cannot make the provider seal to its key: substituted key or token are refused', async () => {
    deviceKeys.clear()
    // Its own key in place of the device's (the device's token names the device key's thumbprint).
    platform.relay.rewrite = (_to, body) => {
      const outer = JSON.parse(body.toString('utf8')) as Json
      ;(outer.pc as Json).jwk = gatewayKey.publicJwk
      return Buffer.from(JSON.stringify(outer))
    }
    const swappedKey = await announce(device, deviceKey)
    // Its own platform token (for its own key, for this provider) in place of the device's.
    const gatewayToken = await gateway.boundToken(SP, gatewayKey.publicJwk, gatewayKey.kid)
    platform.relay.rewrite = (_to, body) => {
      const outer = JSON.parse(body.toString('utf8')) as Json
      outer.pc = { token: gatewayToken, jwk: gatewayKey.publicJwk }
      return Buffer.from(JSON.stringify(outer))
    }
    const swappedToken = await announce(device, deviceKey)
    platform.relay.rewrite = undefined
    // The device's platform-audience token is not a token for the provider.
    const wrongAudience = await postJson(via(platform.relay, SP), {
      op: 1,
      to: SP,
      fr: DEVICE,
      rqi: 'k-aud',
      pc: { token: device.token, jwk: deviceKey.publicJwk },
    })
    for (const [r, reason] of [
      [swappedKey, 'key-binding'],
      [swappedToken, 'subject'],
      [wrongAudience, 'token'],
    ] as const) {
      assert.equal(r.status, 400)
      assert.deepEqual(r.body, { code: 'ERR_UNAUTHENTICATED', rsc: 4000, reason })
    }
    assert.equal(deviceKeys.size, 0)
    // Unmodified, the announcement still goes through.
    assert.equal((await announce(device, deviceKey)).status, 200)
    assert.equal(deviceKeys.get(DEVICE)?.kid, deviceKey.kid)
  })
})
