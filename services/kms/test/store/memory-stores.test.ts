import { createMemoryKeyStore, createMemorySecretStore } from './memory-stores.ts'
import { runKeyStoreContract, runSecretStoreContract } from './store-contract.ts'

runKeyStoreContract('memory', async () => createMemoryKeyStore())
runSecretStoreContract('memory', async () => createMemorySecretStore())
