/** An app access token → the `app` principal of one project (workers/project/forward.ts). */
import { HearthError } from "../../shared/errors.ts";
import type { Principal } from "../../shared/principal.ts";
import type { AppClaims } from "../auth/keys.ts";
import type { Env } from "../env.ts";
import { requireLiveGrant } from "./grant-check.ts";

export async function appPrincipal(env: Env, claims: AppClaims, projectId: string): Promise<Principal> {
  if (claims.ref !== projectId) {
    throw new HearthError("PGRST301", "This app token was granted for another project.", {
      hint: "Use the token on the project_url returned by /oauth/token.",
    });
  }
  await requireLiveGrant(env, claims);
  return {
    role: "app",
    projectId,
    userId: claims.sub,
    clientId: claims.client_id,
    grantId: claims.grant_id,
    scopes: claims.scope.split(" ").filter((s) => s !== ""),
  };
}
