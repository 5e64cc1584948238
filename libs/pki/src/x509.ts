/**
 * The one place that loads @peculiar/x509: it resolves its services through tsyringe, which
 * needs the Reflect polyfill first (TOOLCHAIN pitfall 12), and it needs a WebCrypto provider
 * for parsing, hashing and verifying (signing goes through {@link CaSigner} instead).
 */
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

x509.cryptoProvider.set(webcrypto)

export { x509 }
