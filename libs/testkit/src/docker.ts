let cached: Promise<boolean> | undefined

/**
 * True when testcontainers finds a working container runtime (Docker or Podman engine).
 * The answer is computed once per process. testcontainers is imported lazily, so callers that
 * never need a container do not pay for loading it (about 0.5 s).
 *
 * @example
 * ```ts
 * if (!(await dockerAvailable())) t.skip('no container runtime: Vault test needs Docker')
 * ```
 */
export function dockerAvailable(): Promise<boolean> {
  cached ??= (async () => {
    try {
      const { getContainerRuntimeClient } = await import('testcontainers')
      await getContainerRuntimeClient()
      return true
    } catch {
      return false
    }
  })()
  return cached
}
