/**
 * The service side of bench/groups.ts: a real nats-server and a KMS child process (software
 * SE), member credentials as KMS HMAC keys, a group tree built through the GroupKeys gRPC API,
 * and warm membership changes measured per leave and per join: envelopes, wall time at the
 * client, and the KMS process's CPU time (all its threads, from /proc/<pid>/stat).
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import * as grpc from '@grpc/grpc-js'
import { CompactEncrypt, importJWK, type JWK } from 'jose'
import { createMemberKeyRing, deriveMemberWrapKey } from '@m2msec/groupkeys'
import * as pb from '@m2msec/proto/kms/v1'
import { promiseClient, type PromiseClient } from '@m2msec/runtime'
import { freePort, startNats, tmpDir } from '@m2msec/testkit'
import { startKmsProcess } from './kms-process.ts'
import { cpuProbe, type CpuProbe } from './measure.ts'

/** At most this many joins and leaves per ApplyMembershipChange (GROUP_LIMITS.changeItems). */
export const MAX_CHANGE_ITEMS = 2000

/** Parallel calls when creating credentials (the KMS serializes changes of one group anyway). */
const PARALLEL = 64

/** A KMS process with its clients. */
export interface GroupsKms {
  readonly pid: number
  readonly kms: PromiseClient<typeof pb.KeyManagementService>
  readonly groups: PromiseClient<typeof pb.GroupKeysService>
  /** Call options with the development admin token. */
  call(): { metadata: grpc.Metadata }
  /** CPU seconds of the KMS process so far. */
  readonly serverCpu: CpuProbe
  /** Resident memory of the KMS process in MB (VmRSS), NaN when unreadable. */
  serverRssMb(): number
  /** Stops the KMS (writing its CPU profile when asked for one), nats and removes the temp dir. */
  stop(): Promise<void>
}

/**
 * Starts nats-server (JetStream, temp store) and the KMS (`services/kms/src/main.ts`) with one
 * software SE. `cpuProfDir`: the KMS writes a V8 CPU profile there when it stops.
 */
export async function startGroupsKms(opts: { cpuProfDir?: string } = {}): Promise<GroupsKms> {
  const cleanups: (() => Promise<unknown>)[] = []
  const stop = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined)
  }
  try {
    const dir = await tmpDir('m2msec-bench-groups')
    cleanups.push(() => dir.cleanup())
    const nats = await startNats()
    cleanups.push(() => nats.stop())
    const masterKeyFile = join(dir.path, 'master.key')
    await writeFile(masterKeyFile, randomBytes(32).toString('base64'), { mode: 0o600 })
    const token = randomBytes(24).toString('base64url')
    const tokenFile = join(dir.path, 'admin.token')
    await writeFile(tokenFile, token, { mode: 0o600 })
    const server = await startKmsProcess({
      port: await freePort(),
      natsUrl: nats.url,
      secureEnvironments: [{ name: 'software', type: 'software', options: { masterKeyFile } }],
      devAdminTokenFile: tokenFile,
      // The destruction sweeper re-lists every key per page of 500 (quadratic in the key count):
      // with 100k credential keys one sweep outlasts its 60 s interval and keeps the KMS busy.
      env: { M2MSEC_KMS_DESTROY_SWEEP_MS: String(24 * 3600 * 1000) },
      ...(opts.cpuProfDir === undefined ? {} : { cpuProfDir: opts.cpuProfDir }),
    })
    cleanups.push(() => server.stop())
    const channelOptions = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 }
    const kmsClient = new pb.KeyManagementClient(server.target, grpc.credentials.createInsecure(), channelOptions)
    const groupsClient = new pb.GroupKeysClient(server.target, grpc.credentials.createInsecure(), channelOptions)
    cleanups.push(async () => {
      kmsClient.close()
      groupsClient.close()
    })
    return {
      pid: server.pid,
      kms: promiseClient(pb.KeyManagementService, kmsClient),
      groups: promiseClient(pb.GroupKeysService, groupsClient),
      call: () => {
        const metadata = new grpc.Metadata()
        metadata.set('authorization', `Bearer ${token}`)
        return { metadata }
      },
      serverCpu: cpuProbe(server.pid),
      serverRssMb: () => {
        try {
          const line = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))
          return line === null ? NaN : Number(line[1]) / 1024
        } catch {
          return NaN
        }
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** A member and the KMS key of its credential. */
export interface BenchMember {
  readonly memberId: string
  readonly credentialKeyId: string
}

const keyIdOf = (memberId: string): string => `cred-${createHash('sha256').update(memberId).digest('hex').slice(0, 24)}`

/** Runs `fn` over `items`, `PARALLEL` at a time, calling `progress(done)` after each slice. */
async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>, progress?: (done: number) => void) {
  for (let i = 0; i < items.length; i += PARALLEL) {
    await Promise.all(items.slice(i, i + PARALLEL).map(fn))
    progress?.(Math.min(items.length, i + PARALLEL))
  }
}

/** Creates one KMS HMAC_SHA256 credential key per member (random, non-exportable), as authn would. */
export async function createCredentials(
  k: GroupsKms,
  memberIds: readonly string[],
  progress?: (done: number) => void,
): Promise<BenchMember[]> {
  await inParallel(
    memberIds,
    async (memberId) => {
      await k.kms.createKey(
        pb.CreateKeyRequest.fromPartial({
          keySpec: {
            keyId: keyIdOf(memberId),
            algorithm: pb.KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256,
            purpose: 'bench credential',
          },
          secureEnvironment: 'software',
        }),
        k.call(),
      )
    },
    progress,
  )
  return memberIds.map((memberId) => ({ memberId, credentialKeyId: keyIdOf(memberId) }))
}

/**
 * Imports known credential bytes (wrapped to a KMS ECDH key), so the bench can open the
 * service's envelopes with the library's `deriveMemberWrapKey`.
 */
export async function importCredentials(
  k: GroupsKms,
  memberIds: readonly string[],
): Promise<{ members: BenchMember[]; bytes: Map<string, Uint8Array> }> {
  const res = await k.kms.createKey(
    pb.CreateKeyRequest.fromPartial({ keySpec: { algorithm: pb.KeyAlgorithm.KEY_ALGORITHM_EC_P256_ECDH } }),
    k.call(),
  )
  const kek = res.key!
  const wrapWith = await importJWK(JSON.parse(kek.versions[0]!.publicJwk) as JWK, 'ECDH-ES+A256KW')
  const bytes = new Map<string, Uint8Array>()
  await inParallel(memberIds, async (memberId) => {
    const credential = new Uint8Array(randomBytes(32))
    const wrappedKey = await new CompactEncrypt(credential)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(wrapWith)
    await k.kms.importKey(
      pb.ImportKeyRequest.fromPartial({
        wrappedKey,
        unwrappingKeyId: kek.id,
        keySpec: { keyId: keyIdOf(memberId), algorithm: pb.KeyAlgorithm.KEY_ALGORITHM_HMAC_SHA256 },
      }),
      k.call(),
    )
    bytes.set(memberId, credential)
  })
  return { members: memberIds.map((memberId) => ({ memberId, credentialKeyId: keyIdOf(memberId) })), bytes }
}

/** Creates the tree and adds `members` in changes of at most {@link MAX_CHANGE_ITEMS} joins. */
export async function buildTree(
  k: GroupsKms,
  groupId: string,
  members: readonly BenchMember[],
  progress?: (done: number, envelopes: number) => void,
): Promise<{ epoch: number; envelopes: string[] }> {
  await k.groups.createGroupTree(pb.CreateGroupTreeRequest.fromPartial({ groupId, arity: 2 }), k.call())
  let epoch = 0
  let envelopes: string[] = []
  for (let i = 0; i < members.length; i += MAX_CHANGE_ITEMS) {
    const res = await k.groups.applyMembershipChange(
      pb.ApplyMembershipChangeRequest.fromPartial({
        groupId,
        expectedEpoch: epoch,
        joins: members.slice(i, i + MAX_CHANGE_ITEMS),
      }),
      k.call(),
    )
    epoch = res.tree!.epoch
    envelopes = res.envelopes.map((e) => e.jwe)
    progress?.(Math.min(members.length, i + MAX_CHANGE_ITEMS), res.envelopes.length)
  }
  return { epoch, envelopes }
}

/** What one kind of change (leave or join) cost, over every measured change. */
export interface ChangeCost {
  readonly changes: number
  readonly envelopesP50: number
  readonly envelopesMax: number
  /** Wall time at the client per call (gRPC + KMS + KV). */
  readonly wallP50Ms: number
  readonly wallP95Ms: number
  /** KMS process CPU per change: total CPU of the measured blocks / changes (10 ms ticks, summed). */
  readonly serverCpuMs: number
}

/** Options of {@link measureChanges}. */
export interface ChangeOptions {
  readonly groupId: string
  readonly epoch: number
  /** The current members (changed in place: leavers removed, joiners added). */
  readonly members: BenchMember[]
  /** Fresh members with credentials, one per join (warm-up included). */
  readonly joiners: BenchMember[]
  readonly changes: number
  /** Leaves (then as many joins) per block whose CPU is read as a whole. */
  readonly block: number
  readonly warmupChanges: number
}

const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * q) - 1))] ?? NaN
}

/**
 * Alternates blocks of single-member leaves and single-member joins (the group size stays
 * within `block` of n), one ApplyMembershipChange each, and returns their costs. The KMS CPU
 * is read around each block: /proc ticks are 10 ms, so a single change cannot be timed alone.
 */
export async function measureChanges(
  k: GroupsKms,
  o: ChangeOptions,
): Promise<{ leave: ChangeCost; join: ChangeCost; epoch: number }> {
  let epoch = o.epoch
  let pick = 0x9e3779b9
  const samples = { leave: [] as { env: number; wall: number }[], join: [] as { env: number; wall: number }[] }
  const cpu = { leave: 0, join: 0 }
  const apply = async (change: {
    joins?: BenchMember[]
    leaves?: string[]
  }): Promise<{ env: number; wall: number }> => {
    const t0 = performance.now()
    const res = await k.groups.applyMembershipChange(
      pb.ApplyMembershipChangeRequest.fromPartial({ groupId: o.groupId, expectedEpoch: epoch, ...change }),
      k.call(),
    )
    const wall = performance.now() - t0
    epoch = res.tree!.epoch
    return { env: res.envelopes.length, wall }
  }
  const total = o.warmupChanges + o.changes
  for (let done = 0; done < total;) {
    const size = Math.min(o.block, Math.floor(o.members.length / 2), total - done)
    const record = done >= o.warmupChanges
    const leavers: BenchMember[] = []
    for (let i = 0; i < size; i++) {
      pick = (Math.imul(pick, 1_103_515_245) + 12_345) >>> 0
      leavers.push(...o.members.splice(pick % o.members.length, 1))
    }
    let c0 = k.serverCpu()
    for (const m of leavers) {
      const s = await apply({ leaves: [m.memberId] })
      if (record) samples.leave.push(s)
    }
    if (record) cpu.leave += k.serverCpu() - c0
    const joiners = o.joiners.splice(0, size)
    if (joiners.length < size) throw new Error('not enough joiners with credentials')
    c0 = k.serverCpu()
    for (const m of joiners) {
      const s = await apply({ joins: [m] })
      if (record) samples.join.push(s)
    }
    if (record) cpu.join += k.serverCpu() - c0
    o.members.push(...joiners)
    done += size
  }
  const cost = (s: { env: number; wall: number }[], cpuSeconds: number): ChangeCost => ({
    changes: s.length,
    envelopesP50: quantile(
      s.map((x) => x.env),
      0.5,
    ),
    envelopesMax: Math.max(...s.map((x) => x.env)),
    wallP50Ms: quantile(
      s.map((x) => x.wall),
      0.5,
    ),
    wallP95Ms: quantile(
      s.map((x) => x.wall),
      0.95,
    ),
    serverCpuMs: (cpuSeconds * 1000) / s.length,
  })
  return { leave: cost(samples.leave, cpu.leave), join: cost(samples.join, cpu.join), epoch }
}

/**
 * Checks that every member opens the current group key from the service's envelopes of a full
 * resync with the library's `deriveMemberWrapKey` over its own credential bytes (service and
 * library compute the same wrap key). Returns the number of members checked.
 */
export async function checkMembersOpen(
  k: GroupsKms,
  groupId: string,
  credentials: ReadonlyMap<string, Uint8Array>,
): Promise<number> {
  const tree = (await k.groups.getGroupTree(pb.GetGroupTreeRequest.fromPartial({ groupId }), k.call())).tree!
  for (const [memberId, credential] of credentials) {
    const res = await k.groups.getMemberEnvelopes(
      pb.GetMemberEnvelopesRequest.fromPartial({ groupId, memberId }),
      k.call(),
    )
    const ring = createMemberKeyRing({
      groupId,
      memberId,
      wrapKeyFor: (e) => deriveMemberWrapKey(credential, groupId, e),
    })
    await ring.accept(res.envelopes.map((e) => e.jwe))
    if (ring.groupKey()?.kid !== tree.groupKeyKid) {
      throw new Error(`member ${memberId} did not open the group key ${tree.groupKeyKid}`)
    }
  }
  return credentials.size
}
