/** R2 layout of a project: everything under `projects/<projectId>/`. */
export function projectPrefix(projectId: string): string {
  return `projects/${projectId}/`;
}

/** Deletes every object under the project's prefix, a page (≤1000 keys) at a time. */
export async function deleteProjectBlobs(bucket: R2Bucket, projectId: string): Promise<number> {
  let deleted = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: projectPrefix(projectId), ...(cursor ? { cursor } : {}) });
    const keys = page.objects.map((o) => o.key);
    if (keys.length > 0) {
      await bucket.delete(keys);
      deleted += keys.length;
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return deleted;
}
