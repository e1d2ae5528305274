/** R2 layout of a project: everything under `projects/<projectId>/`. */
export function projectPrefix(projectId: string): string {
  return `projects/${projectId}/`;
}

/** Deletes every object under the project's prefix, a page (≤1000 keys) at a time. */
export async function deleteProjectBlobs(
  bucket: R2Bucket,
  projectId: string,
  catalog?: D1Database,
): Promise<number> {
  // Segments a fork still refers to (its catalog rows outlive this project's) stay, with
  // their bloom filters.
  const shared = new Set<string>();
  if (catalog) {
    const rows = await catalog
      .prepare("SELECT DISTINCT r2_key AS k FROM segments WHERE r2_key LIKE ? AND project_id <> ?")
      .bind(`${projectPrefix(projectId)}%`, projectId)
      .all<{ k: string }>();
    for (const r of rows.results) {
      shared.add(r.k);
      shared.add(r.k.replace(/\.arrow$/, ".bloom"));
    }
  }
  let deleted = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: projectPrefix(projectId), ...(cursor ? { cursor } : {}) });
    const keys = page.objects.map((o) => o.key).filter((k) => !shared.has(k));
    if (keys.length > 0) {
      await bucket.delete(keys);
      deleted += keys.length;
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return deleted;
}
