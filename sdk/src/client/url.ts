/**
 * Where things live: a project's URL is `<platform>/p/<projectId>`; accounts, apps and OAuth
 * are at the platform root (docs/api.md). A client may be made with either.
 */

export interface HearthUrls {
  /** The platform root, e.g. `http://127.0.0.1:8787` (no trailing slash). */
  platformUrl: string;
  /** The project URL, or null when the client was made with the platform root. */
  projectUrl: string | null;
}

const PROJECT_PATH = /^(.*)\/p\/([a-z0-9]+)$/;

/** Splits a project URL into platform root and project; a URL without `/p/<id>` is a platform root. */
export function parseHearthUrl(url: string): HearthUrls {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`Hearth: "${url}" is not an absolute URL (expected http(s)://host/p/<projectId>)`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(`Hearth: "${url}" is not an http(s) URL`);
  }
  if (parsed.search !== "" || parsed.hash !== "") {
    throw new TypeError(`Hearth: "${url}" must not carry a query or fragment`);
  }
  const path = parsed.pathname.replace(/\/+$/, "");
  const m = PROJECT_PATH.exec(path);
  if (m) return { platformUrl: parsed.origin + m[1], projectUrl: parsed.origin + path };
  return { platformUrl: parsed.origin + path, projectUrl: null };
}

/** `url` with its `from` prefix replaced by `to`; unchanged when it does not start with `from`. */
export function rebase(url: string, from: string, to: string): string {
  if (from === to || !url.startsWith(from)) return url;
  const rest = url.slice(from.length);
  return rest === "" || rest.startsWith("/") || rest.startsWith("?") ? to + rest : url;
}
