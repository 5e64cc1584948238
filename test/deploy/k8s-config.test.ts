/**
 * The Kubernetes manifests configure each service only through environment variables: load
 * those (Deployment env + the shared ConfigMap literals) into the services' real config schemas,
 * so a renamed setting or an invalid production combination fails here, not in a cluster.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments, parse } from 'yaml'
import type { z } from 'zod'
import { loadConfig } from '@m2msec/runtime'
import { kmsConfigSchema } from '@m2msec/kms'
import { authzConfigSchema } from '@m2msec/authz'
import { authnConfigSchema } from '@m2msec/authn'
import { bootstrapConfigSchema } from '@m2msec/bootstrap'
import { groupsConfigSchema } from '@m2msec/groups'

const base = join(import.meta.dirname, '..', '..', 'deploy', 'k8s', 'base')

interface EnvVar {
  name: string
  value?: string
  valueFrom?: unknown
}

function configMapLiterals(): Record<string, string> {
  const k = parse(readFileSync(join(base, 'kustomization.yaml'), 'utf8')) as {
    configMapGenerator: Array<{ literals: string[] }>
  }
  return Object.fromEntries(
    k.configMapGenerator.flatMap((g) =>
      g.literals.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    ),
  )
}

function deploymentEnv(file: string): Record<string, string> {
  const docs = parseAllDocuments(readFileSync(join(base, file), 'utf8')).map((d) => d.toJS() as Record<string, any>)
  const deployment = docs.find((d) => d.kind === 'Deployment')
  assert.ok(deployment, `${file} has a Deployment`)
  const env = deployment.spec.template.spec.containers[0].env as EnvVar[]
  // fieldRef values (pod name) are filled by Kubernetes; any non-empty string stands in.
  return Object.fromEntries(env.map((e) => [e.name, e.value ?? 'from-kubernetes']))
}

const services: Array<[string, string, z.ZodType]> = [
  ['kms.yaml', 'M2MSEC_KMS_', kmsConfigSchema],
  ['authz.yaml', 'M2MSEC_AUTHZ_', authzConfigSchema],
  ['authn.yaml', 'M2MSEC_AUTHN_', authnConfigSchema],
  ['bootstrap.yaml', 'M2MSEC_BOOTSTRAP_', bootstrapConfigSchema],
  ['groups.yaml', 'M2MSEC_GROUPS_', groupsConfigSchema],
]

for (const [file, prefix, schema] of services) {
  test(`deploy/k8s/base/${file} is a valid production configuration`, () => {
    const all = { ...configMapLiterals(), ...deploymentEnv(file) }
    const env = Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith(prefix) && k !== 'SERVICE'))
    const config = loadConfig(schema, { envPrefix: prefix, env, argv: [] }) as {
      profile: string
      grpc: { tls?: unknown }
    }
    assert.equal(config.profile, 'production')
    assert.ok(config.grpc.tls, 'TLS configured')
  })
}
