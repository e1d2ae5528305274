/** OAuth 2.1 for apps at the platform root (DESIGN.md "Contracts"). */
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { authorizeGet, authorizePost } from "./authorize.ts";
import { revokeEndpoint, tokenEndpoint } from "./token.ts";

export const oauthRoutes = new Hono<AppEnv>();
oauthRoutes.get("/authorize", authorizeGet);
oauthRoutes.post("/authorize", authorizePost);
oauthRoutes.post("/token", tokenEndpoint);
oauthRoutes.post("/revoke", revokeEndpoint);
