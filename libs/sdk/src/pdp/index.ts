/**
 * The embedded PDP: the authz decision engine (`@m2msec/acp`) inside a CSE or application,
 * kept current from the same JetStream KV bucket the authz service writes (`authz-policies`),
 * so decisions cost no network hop and a policy change reaches it within milliseconds, exactly
 * as it reaches the authz replicas. Read-only: policies are still written through the authz
 * API, which checks `selfPrivileges`.
 *
 * The NATS credentials given to an embedding application should only allow reading the
 * `authz-policies` bucket (KV subjects `$KV.authz-policies.<tenant>.>`).
 *
 * @example
 * ```ts
 * const pdp = await createEmbeddedPdp({ nc, tenant: 'acme' })
 * const d = pdp.decide({ originator: 'C-meter-1', operation: 'retrieve', targetPolicyIds: ['acp-1'],
 *   authenticated: true, context: { time: new Date() } })
 * await pdp.close()
 * ```
 */
import {
  compilePolicies,
  decide,
  type AccessControlPolicy,
  type AccessRequest,
  type Decision,
  type DecideOptions,
} from '@m2msec/acp'
import { kvKey, KvRepository, parseKvKey, type KvChange, type NatsConnection } from '@m2msec/bus'

/** The bucket and record format of the authz service (services/authz/src/store/policy-store.ts). */
const POLICY_BUCKET = 'authz-policies'
interface StoredPolicy {
  readonly tenant: string
  readonly policy: AccessControlPolicy
}

/** Options of {@link createEmbeddedPdp}. */
export interface EmbeddedPdpOptions {
  readonly nc: NatsConnection
  /** The tenant whose policies this PDP mirrors. */
  readonly tenant: string
  /** A stored policy that does not compile is dropped (fail closed) and reported here. */
  readonly onError?: (err: unknown) => void
}

/** A running embedded PDP. */
export interface EmbeddedPdp {
  /** The TS-0003 §7.1 decision over the mirrored policies (no I/O). */
  decide(request: AccessRequest, options?: DecideOptions): Decision
  /** Policies currently mirrored. */
  readonly size: number
  /** Stops following changes. */
  close(): Promise<void>
}

/**
 * Loads every policy of the tenant, then follows changes through a KV watch. Resolves once
 * the initial load is complete, so the first decision never sees a partial set.
 */
export async function createEmbeddedPdp(opts: EmbeddedPdpOptions): Promise<EmbeddedPdp> {
  const repo = await KvRepository.open<StoredPolicy>(opts.nc, POLICY_BUCKET, {})
  const prefix = `${kvKey(opts.tenant)}.`
  const index = compilePolicies([])
  // Revision of the last change applied per key: the list and the watch overlap at start.
  const applied = new Map<string, number>()
  const onError = opts.onError ?? (() => {})

  const apply = (change: KvChange<StoredPolicy>): void => {
    if ((applied.get(change.key) ?? 0) >= change.revision) return
    applied.set(change.key, change.revision)
    const [tenant, id] = parseKvKey(change.key)
    if (tenant !== opts.tenant || id === undefined) return
    if (change.op === 'delete' || change.value === undefined) {
      index.remove(id)
      return
    }
    try {
      index.upsert(change.value.policy)
    } catch (err) {
      index.remove(id)
      onError(err)
    }
  }

  const watch = await repo.watch(prefix, apply, { onError })
  let after: string | undefined
  do {
    const page = await repo.list(prefix, { limit: 500, ...(after === undefined ? {} : { after }) })
    for (const item of page.items) apply({ key: item.key, value: item.value, revision: item.revision, op: 'put' })
    after = page.next
  } while (after !== undefined)

  return {
    decide: (request, options) => decide(index, request, options),
    get size() {
      return index.size
    },
    close: () => watch.stop(),
  }
}
