/**
 * Who is calling, as established by the gateway and handed to the project's DO. The DO
 * trusts it because only the gateway can reach the DO; the gateway strips any incoming
 * header of the same name.
 */
export const PRINCIPAL_HEADER = "x-hearth-principal";
export const PROJECT_HEADER = "x-hearth-project";
/** The token a WebSocket was opened with (the DO re-checks it while the socket lives). */
export const TOKEN_HEADER = "x-hearth-token";

export type MemberRole = "owner" | "admin" | "writer" | "reader";

export type Principal =
  /** A project API key: `service` passes every policy, `anon` reads/writes `public` tables. */
  | { role: "service" | "anon"; projectId: string; keyId: string }
  /** An account's access token; `membership` is its role in this project, or null. */
  | { role: "authenticated"; projectId: string; userId: string; membership: MemberRole | null }
  /**
   * An app acting for account `userId` under grant `grantId` (OAuth access token). It reaches
   * only the tables its `scopes` name (`db:<table>:read|write`); then the table's policy
   * applies as for the account. The gateway has checked the grant is not revoked.
   */
  | { role: "app"; projectId: string; userId: string; clientId: string; grantId: string; scopes: string[] };
