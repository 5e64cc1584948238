/**
 * @m2msec/testkit: helpers for tests and local development. Never imported by service `src/`.
 *
 * Starts real processes (nats-server, SoftHSM2 tokens) on 127.0.0.1 free ports in temp dirs,
 * and provides a fixed clock, a seeded RNG, a JSON vector loader and a DEVELOPMENT ONLY PKI.
 */
export type { Clock, Random } from './ports.ts'
export { freePort } from './net.ts'
export { tmpDir, type TmpDir } from './tmp-dir.ts'
export { startNats, type NatsServer, type StartNatsOptions } from './nats.ts'
export { startSoftHsm, SOFTHSM_MODULE_PATH, type SoftHsmToken, type StartSoftHsmOptions } from './softhsm.ts'
export { dockerAvailable } from './docker.ts'
export { fixedClock, type FixedClock } from './clock.ts'
export { seededRandom } from './random.ts'
export { loadJson } from './json.ts'
export { createDevPki, type DevPki, type DevPkiOptions, type CertAndKey, type ClientIdentity } from './dev-pki.ts'
export { grpcHealthCheck, grpcListServices } from './grpc-probes.ts'
export { startKmsProcess, type KmsProcess, type StartKmsProcessOptions } from './kms-process.ts'
