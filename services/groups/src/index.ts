/**
 * @m2msec/groups: the TR-0012 group credentials service (m2msec.groups.v1.Groups). Start it
 * with `startGroups(config, log)`; the domain is `createGroupsOperations(deps)`.
 */
export { startGroups, type GroupsApp } from './app.ts'
export { groupsConfigSchema, type GroupsConfig } from './config.ts'
export { createGroupsOperations, type GroupsOperations } from './domain/index.ts'
export type { GroupsDeps, GroupKms, GroupStore, RekeyStore, SessionStore, CredentialDirectory } from './domain/ports.ts'
