/**
 * @m2msec/acp: the oneM2M access-control decision engine (TS-0003 §7.1, §7.3), pure and
 * embeddable: no I/O, time injected. The authz service and a CSE use the same code.
 *
 * - model.ts: TS-0004 types (AccessControlPolicy, AccessControlRule, ...)
 * - parse.ts: validation of policies from untrusted JSON (long or short names)
 * - engine.ts: compilePolicies → PolicyIndex; decide(index, request) → permit / deny + reasons
 * - tokens.ts: oneM2M JWT claim checks and token permissions as extra grants
 * - crontab.ts, cidr.ts, geo.ts, originator.ts: the matchers the rules need
 */
export * from './model.ts'
export { parsePolicy, parsePolicies, parseRule, parseSetOfAcrs, MAX_LIST_LENGTH, MAX_STRING_LENGTH } from './parse.ts'
export * from './engine.ts'
export * from './tokens.ts'
export * from './crontab.ts'
export * from './cidr.ts'
export * from './geo.ts'
export {
  compileOriginators,
  matchOriginator,
  matchesIdPattern,
  originatorForms,
  isSpDomainEntry,
  type HostIds,
  type OriginatorForms,
  type OriginatorMatcher,
} from './originator.ts'
