import { describe, expect, it } from "vitest";
import { ADMIN_KEY, call, createProject } from "./helpers/api.ts";

describe("platform API /v1/projects", () => {
  it("creates, lists, reads and deletes projects with the admin key", async () => {
    const created = await createProject("alpha");
    expect(created.id).toMatch(/^[a-z0-9]{20}$/);
    expect(created.url).toBe(`http://hearth.test/p/${created.id}`);
    expect(created.anonKey.split(".")).toHaveLength(3);
    expect(created.serviceKey).not.toBe(created.anonKey);

    let res = await call("/v1/projects", { key: ADMIN_KEY });
    expect(res.status).toBe(200);
    const list = (await res.json()) as { id: string; name: string }[];
    expect(list.find((p) => p.id === created.id)?.name).toBe("alpha");

    res = await call(`/v1/projects/${created.id}`, { key: ADMIN_KEY });
    const got = (await res.json()) as Record<string, unknown>;
    // keys are re-derived from the catalog (only their hashes are stored) and must match
    expect(got).toMatchObject({ id: created.id, anonKey: created.anonKey, serviceKey: created.serviceKey });

    res = await call(`/v1/projects/${created.id}`, { method: "DELETE", key: ADMIN_KEY });
    expect(res.status).toBe(204);
    res = await call(`/v1/projects/${created.id}`, { method: "DELETE", key: ADMIN_KEY });
    expect(res.status).toBe(404);
  });

  it("refuses missing, wrong and project credentials, and bad bodies", async () => {
    const p = await createProject();
    const cases: [string, Parameters<typeof call>[1], number, string][] = [
      ["/v1/projects", {}, 401, "HEARTH_UNAUTHORIZED"],
      ["/v1/projects", { key: "wrong" }, 401, "HEARTH_UNAUTHORIZED"],
      ["/v1/projects", { key: p.serviceKey }, 403, "HEARTH_FORBIDDEN"],
      ["/v1/projects", { method: "POST", key: ADMIN_KEY, body: { name: "" } }, 400, "HEARTH_BAD_REQUEST"],
      [
        "/v1/projects",
        { method: "POST", key: ADMIN_KEY, body: { name: "x", extra: 1 } },
        400,
        "HEARTH_BAD_REQUEST",
      ],
      [
        "/v1/projects",
        { method: "POST", key: ADMIN_KEY, body: "{", headers: { "content-type": "application/json" } },
        400,
        "HEARTH_BAD_REQUEST",
      ],
      ["/v1/projects/nope", { key: ADMIN_KEY }, 404, "HEARTH_PROJECT_NOT_FOUND"],
      ["/p/not-a-project/rest/v1/x", { key: p.serviceKey }, 404, "HEARTH_PROJECT_NOT_FOUND"],
      ["/no/such/route", {}, 404, "HEARTH_NOT_FOUND"],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await call(path, init);
      expect([res.status, ((await res.json()) as { code: string }).code], path).toEqual([status, code]);
      expect(res.headers.get("x-request-id")).toBeTruthy();
    }
  });

  it("answers /health without a key", async () => {
    const res = await call("/health");
    expect(await res.json()).toEqual({ status: "ok" });
  });
});
