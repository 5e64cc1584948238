import { createMemoryPolicyStore } from './memory-store.ts'
import { runPolicyStoreContract } from './store-contract.ts'

runPolicyStoreContract('memory', async () => createMemoryPolicyStore())
