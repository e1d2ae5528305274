/**
 * @hearth/sdk/react: React bindings of the Hearth SDK (a provider and hooks). React is an
 * optional peer dependency: only this entry imports it, so `@hearth/sdk` stays React-free.
 * See sdk/README.md, "React".
 */
export {
  type HearthContextValue,
  HearthProvider,
  type HearthProviderProps,
  type PresenceSource,
  useHearth,
} from "./context.ts";
export { type Mutation, type MutationError, type MutationOptions, useMutation } from "./use-mutation.ts";
export { type PresenceOptions, usePresence } from "./use-presence.ts";
export { type QueryState, type RestSelect, type UseQueryOptions, useQuery } from "./use-query.ts";
export { type UserState, useUser } from "./use-user.ts";
