/**
 * Regenerates `libs/proto/src/gen` from the `.proto` files under `proto/`.
 *
 * Steps: empty the output folder (so a deleted or renamed .proto leaves nothing behind),
 * `buf generate` with proto/buf.gen.yaml (ts-proto, options in that file), then
 * `buf build` into `src/gen/descriptors.binpb`, the FileDescriptorSet the runtime serves
 * through gRPC server reflection. buf is the pinned npm build (node_modules/.bin/buf), so no
 * system protoc is needed. Output is deterministic: running it twice changes nothing.
 *
 * Usage (repository root): `npm run gen`; `npm run check:drift` also fails when the committed
 * output differs from a fresh generation.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = join(import.meta.dirname, '..', '..', '..')
const protoDir = join(root, 'proto')
const genDir = join(root, 'libs', 'proto', 'src', 'gen')
const descriptorSet = join(genDir, 'descriptors.binpb')
const buf = join(root, 'node_modules', '.bin', 'buf')

if (!existsSync(buf)) {
  console.error(`buf not found at ${relative(root, buf)}: the root devDependency @bufbuild/buf is not installed`)
  process.exit(1)
}

/** Runs buf in proto/ (buf.gen.yaml paths are relative to it); output goes to our stdio. */
function runBuf(args: readonly string[]): void {
  execFileSync(buf, args, { cwd: protoDir, stdio: 'inherit' })
}

const started = performance.now()
rmSync(genDir, { recursive: true, force: true })
runBuf(['generate', '--template', 'buf.gen.yaml'])
// Without source info (comments, spans): reflection needs the types only, and the file stays
// small. Imports (google/protobuf/*) are included so every dependency can be resolved.
runBuf(['build', '--exclude-source-info', '-o', relative(protoDir, descriptorSet)])
console.log(`generated ${relative(root, genDir)} in ${Math.round(performance.now() - started)} ms`)
