/**
 * The platform of the end-to-end protection tests (issue 5): a real nats-server (JetStream),
 * the real KMS as a child process and authn in this process (it reaches the KMS as the
 * platform service `m2msec://_platform/authn`), plus a gateway relay: a small HTTP server
 * that forwards request bodies to the entities' HTTP endpoints and records every byte it
 * forwards, in both directions. The relay can also act as a hostile gateway: rewrite what it
 * forwards, or send recorded bytes again.
 *
 * Entities (AEs, CSEs, devices) are registered in authn with a PSK generated in the KMS and
 * delivered wrapped; each gets an access token, registers as a MAF client, and holds a P-256
 * key pair to which authn wraps MAF keys.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { compactDecrypt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { authnConfigSchema, startAuthn, type AuthnApp } from '@m2msec/authn'
import { isM2msecError } from '@m2msec/errors'
import {
  AddCredentialRequest,
  AuthenticationClient,
  AuthenticationService,
  CreateTenantRequest,
  type EntityKind,
  IssueTokenRequest,
  RegisterEntityRequest,
  RegisterMafClientRequest,
  RegisterMafKeyRequest,
  RetrieveMafKeyRequest,
  type RegisterMafKeyResponse,
  type RetrieveMafKeyResponse,
} from '@m2msec/proto/authn/v1'
import { createLogger, fromGrpcError, promiseClient, type PromiseClient } from '@m2msec/runtime'
import { createDevPki, startKmsProcess, startNats, tmpDir } from '@m2msec/testkit'

export const TENANT = 'acme'
/** `maf.fqdn` of authn's default configuration: the suffix of every MAF key identifier. */
export const MAF_FQDN = 'maf.m2msec.local'
/** The token endpoint id (`aud` of client assertions) of authn's default configuration. */
const TOKEN_ENDPOINT = 'm2msec-authn-token'
/** `iss` of authn's access tokens (default configuration). */
export const TOKEN_ISSUER = 'm2msec-authn'

type Authn = PromiseClient<typeof AuthenticationService>

/** Bearer metadata for a gRPC call. */
export function bearer(token: string): { metadata: grpc.Metadata } {
  const metadata = new grpc.Metadata()
  metadata.set('authorization', `Bearer ${token}`)
  return { metadata }
}

/** The m2msec error code of a failed gRPC call; fails the test when the call succeeds. */
export async function grpcRefusal(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return fromGrpcError(err as grpc.ServiceError).code
  }
  assert.fail('expected the call to fail')
}

/** The error code of a failed SDK call; fails the test when the call succeeds. */
export async function refusal(p: Promise<unknown>): Promise<{ code: string; rsc: unknown }> {
  try {
    await p
  } catch (err) {
    if (isM2msecError(err)) return { code: err.code, rsc: err.details['rsc'] }
    throw err
  }
  assert.fail('expected the call to fail')
}

/** An entity registered in authn, with a token and a MAF client registration. */
export interface Party {
  readonly id: string
  /** Its access token for the platform audience. */
  readonly token: string
  /** The private key authn wraps MAF keys to. */
  readonly mafPrivateKey: CryptoKey
  /** RegisterMafKey as this party (the MAF source). */
  registerMafKey(suid: number, targetIds: readonly string[], lifetimeMs?: number): Promise<RegisterMafKeyResponse>
  /** RetrieveMafKey as this party (a target). */
  retrieveMafKey(keyIdentifier: string): Promise<RetrieveMafKeyResponse>
  /**
   * An access token for `audience` whose `cnf.jkt` binds `popJwk` (RFC 7800): authn issues it
   * after checking the party's PSK assertion, which names the same thumbprint.
   */
  boundToken(audience: string, popJwk: JWK, jkt: string): Promise<string>
}

/** A message the relay forwarded. */
export interface RelayRecord {
  readonly to: string
  readonly request: Buffer
  readonly status: number
  readonly response: Buffer
}

/** The gateway: forwards `POST /<to>` to the endpoint registered for `<to>`, and records it. */
export interface Relay {
  readonly url: string
  readonly records: RelayRecord[]
  route(to: string, upstream: string): void
  /** Every byte forwarded so far, both directions. */
  bytes(): Buffer
  /** While set, the hostile gateway rewrites each request body before it forwards it. */
  rewrite: ((to: string, body: Buffer) => Buffer) | undefined
  /** The hostile gateway sends bytes of its own (a replay or a forgery) to `to`. */
  inject(to: string, body: Buffer): Promise<HttpReply>
}

/** An HTTP answer: status and parsed JSON body. */
export interface HttpReply {
  readonly status: number
  readonly body: Record<string, unknown>
}

/** POSTs JSON bytes and parses the JSON answer. */
export async function postJson(url: string, body: Buffer | Record<string, unknown>): Promise<HttpReply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.isBuffer(body) ? body : JSON.stringify(body),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

/** A started platform. */
export interface E2ePlatform {
  readonly authn: AuthnApp
  readonly relay: Relay
  /** authn's JWKS of the tenant (for relying parties outside the platform). */
  readonly jwksUrl: string
  /** Registers an entity with a PSK, gets it a token and registers it as a MAF client. */
  enrol(id: string, kind: EntityKind): Promise<Party>
  /**
   * An entity's HTTP endpoint: `handle` gets the parsed JSON body; an M2msecError it throws
   * becomes a 400 answer `{ code, rsc, reason? }` (from the error and its details; rsc 4000 when
   * the error has none).
   * Returns its URL.
   */
  endpoint(handle: (body: Record<string, unknown>) => Promise<Record<string, unknown>>): Promise<string>
  stop(): Promise<void>
}

/** Starts the platform; call `stop()` from `after` (it also runs when the start fails). */
export async function startE2ePlatform(name: string): Promise<E2ePlatform> {
  const cleanups: (() => unknown)[] = []
  const stop = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn()
      } catch {
        // Best effort: the rest must still stop.
      }
    }
  }
  try {
    return await start(name, (fn) => cleanups.push(fn), stop)
  } catch (err) {
    await stop()
    throw err
  }
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function start(
  name: string,
  after: (fn: () => unknown) => void,
  stop: () => Promise<void>,
): Promise<E2ePlatform> {
  const dir = await tmpDir(name)
  after(() => dir.cleanup())
  const nats = await startNats()
  after(() => nats.stop())
  const pki = await createDevPki(join(dir.path, 'pki'))
  const kms = await startKmsProcess({ natsUrl: nats.url, pki })
  after(() => kms.stop())

  const svc = await pki.issueClientCert({ tenant: '_platform', principal: 'authn', roles: ['service'] })
  const certFile = join(dir.path, 'authn-kms.pem')
  const keyFile = join(dir.path, 'authn-kms.key')
  const tokenFile = join(dir.path, 'operator.token')
  const operatorToken = `operator-${randomBytes(16).toString('hex')}`
  await writeFile(certFile, svc.certPem)
  await writeFile(keyFile, svc.keyPem, { mode: 0o600 })
  await writeFile(tokenFile, operatorToken, { mode: 0o600 })
  const authn = await startAuthn(
    authnConfigSchema.parse({
      instanceId: `authn-${randomBytes(3).toString('hex')}`,
      grpc: {
        port: 0,
        tls: {
          certFile: pki.paths.serverCert,
          keyFile: pki.paths.serverKey,
          caFile: pki.paths.caCert,
          requireClientCert: false,
        },
      },
      http: { port: 0 },
      nats: { servers: [nats.url] },
      kms: { target: kms.target, tls: { caFile: pki.paths.caCert, certFile, keyFile } },
      auth: { mtls: true, devTokenFile: tokenFile },
    }),
    createLogger({ level: 'warn', service: 'authn' }, { write: () => undefined }),
  )
  after(() => authn.shutdown())

  const target = `localhost:${authn.address.port}`
  const channels: grpc.Client[] = []
  after(() => channels.forEach((c) => c.close()))
  const anonClient = new AuthenticationClient(target, grpc.credentials.createSsl(Buffer.from(pki.caCertPem)))
  const adminCert = await pki.issueClientCert({ tenant: TENANT, principal: 'admin-1', roles: ['admin'] })
  const adminClient = new AuthenticationClient(
    target,
    grpc.credentials.createSsl(
      Buffer.from(pki.caCertPem),
      Buffer.from(adminCert.keyPem),
      Buffer.from(adminCert.certPem),
    ),
  )
  channels.push(anonClient, adminClient)
  const anon: Authn = promiseClient(AuthenticationService, anonClient)
  const admin: Authn = promiseClient(AuthenticationService, adminClient)
  await anon.createTenant(CreateTenantRequest.fromPartial({ tenantId: TENANT }), bearer(operatorToken))

  const servers: Server[] = []
  after(() =>
    Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => undefined),
  )
  const serve = async (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<string> => {
    const server = createServer((req, res) => {
      handler(req, res).catch(() => reply(res, 500, { code: 'ERR_INTERNAL' }))
    })
    server.keepAliveTimeout = 100
    servers.push(server)
    return listen(server)
  }

  const relay = await startRelay(serve)

  return {
    authn,
    relay,
    jwksUrl: `${authn.jwksUrl}/tenants/${TENANT}/jwks.json`,
    stop,
    endpoint: (handle) =>
      serve(async (req, res) => {
        const body = JSON.parse((await readBody(req)).toString('utf8')) as Record<string, unknown>
        try {
          reply(res, 200, await handle(body))
        } catch (err) {
          if (!isM2msecError(err)) throw err
          const reason = err.details['reason']
          reply(res, 400, {
            code: err.code,
            rsc: err.details['rsc'] ?? 4000,
            ...(reason === undefined ? {} : { reason }),
          })
        }
      }),
    async enrol(id, kind) {
      await admin.registerEntity(RegisterEntityRequest.fromPartial({ entityId: id, kind, roles: [] }))
      const delivery = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
      const added = await admin.addCredential(
        AddCredentialRequest.fromPartial({
          entityId: id,
          credential: {
            $case: 'symmetric',
            value: {
              source: {
                $case: 'generate',
                value: { deliverToPublicJwk: JSON.stringify(await exportJWK(delivery.publicKey)) },
              },
            },
          },
        }),
      )
      const psk = (await compactDecrypt(added.wrappedKey, delivery.privateKey)).plaintext
      const kid = added.credential?.id ?? ''
      const assertion = (claims: Record<string, unknown>) =>
        new SignJWT({ jti: randomBytes(16).toString('base64url'), ...claims })
          .setProtectedHeader({ alg: 'HS256', kid })
          .setIssuer(id)
          .setSubject(id)
          .setAudience(TOKEN_ENDPOINT)
          .setIssuedAt()
          .setExpirationTime('60s')
          .sign(psk)
      const token = (
        await anon.issueToken(IssueTokenRequest.fromPartial({ tenant: TENANT, assertion: await assertion({}) }))
      ).accessToken
      const expiration = new Date(Date.now() + 3600_000)
      await anon.registerMafClient(
        RegisterMafClientRequest.fromPartial({ expirationTime: expiration, adminFqdn: 'admin.acme.example' }),
        bearer(token),
      )
      const maf = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' })
      const mafJwk = JSON.stringify(await exportJWK(maf.publicKey))
      return {
        id,
        token,
        mafPrivateKey: maf.privateKey,
        registerMafKey: (suid, targetIds, lifetimeMs = 600_000) =>
          anon.registerMafKey(
            RegisterMafKeyRequest.fromPartial({
              suid,
              targetIds: [...targetIds],
              expirationTime: new Date(Date.now() + lifetimeMs),
              recipientPublicJwk: mafJwk,
            }),
            bearer(token),
          ),
        retrieveMafKey: (keyIdentifier) =>
          anon.retrieveMafKey(
            RetrieveMafKeyRequest.fromPartial({ keyIdentifier, recipientPublicJwk: mafJwk }),
            bearer(token),
          ),
        async boundToken(audience, popJwk, jkt) {
          const res = await anon.issueToken(
            IssueTokenRequest.fromPartial({
              tenant: TENANT,
              assertion: await assertion({ cnf: { jkt } }),
              audience,
              popPublicJwk: JSON.stringify(popJwk),
            }),
          )
          return res.accessToken
        },
      }
    },
  }
}

async function startRelay(
  serve: (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>) => Promise<string>,
): Promise<Relay> {
  const routes = new Map<string, string>()
  const records: RelayRecord[] = []
  const forward = async (to: string, body: Buffer): Promise<{ status: number; response: Buffer }> => {
    const upstream = routes.get(to)
    if (upstream === undefined) return { status: 404, response: Buffer.from('{"code":"ERR_NOT_FOUND"}') }
    const res = await fetch(upstream, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    const response = Buffer.from(await res.arrayBuffer())
    records.push({ to, request: body, status: res.status, response })
    return { status: res.status, response }
  }
  const relay: Relay = {
    url: '',
    records,
    rewrite: undefined,
    route: (to, upstream) => void routes.set(to, upstream),
    bytes: () => Buffer.concat(records.flatMap((r) => [r.request, r.response])),
    async inject(to, body) {
      const { status, response } = await forward(to, body)
      return { status, body: JSON.parse(response.toString('utf8')) as Record<string, unknown> }
    },
  }
  const url = await serve(async (req, res) => {
    const to = decodeURIComponent((req.url ?? '/').slice(1))
    const received = await readBody(req)
    const body = relay.rewrite === undefined ? received : relay.rewrite(to, received)
    const { status, response } = await forward(to, body)
    res.writeHead(status, { 'content-type': 'application/json' }).end(response)
  })
  return Object.assign(relay, { url })
}

/** The URL at which the relay forwards to `to`. */
export function via(relay: Relay, to: string): string {
  return `${relay.url}/${encodeURIComponent(to)}`
}

/**
 * Asserts that none of `secrets` occurs in `haystack`, neither as raw bytes nor as base64url,
 * base64 or hex text (strings are checked as their UTF-8 bytes and as text).
 */
export function assertAbsent(haystack: Buffer, secrets: Readonly<Record<string, Uint8Array | string>>): void {
  const text = haystack.toString('latin1')
  for (const [what, secret] of Object.entries(secrets)) {
    const bytes = Buffer.from(secret)
    assert.ok(bytes.length >= 8, `${what}: too short to search for`)
    const forms = [bytes.toString('latin1'), bytes.toString('base64url'), bytes.toString('hex')]
    // base64 without its padding: the same bytes may sit at another offset of a longer base64 text.
    forms.push(bytes.toString('base64').replace(/=+$/, ''))
    for (const form of forms) assert.ok(!text.includes(form), `the relay saw ${what}`)
  }
}
