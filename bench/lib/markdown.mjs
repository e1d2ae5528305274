/** Small markdown builders for bench/results. */

const cell = (v) =>
  String(v ?? "–")
    .replaceAll("|", "\\|")
    .replaceAll("\n", " ");

export function table(headers, rows) {
  const lines = [`| ${headers.map(cell).join(" | ")} |`, `|${headers.map(() => "---").join("|")}|`];
  for (const row of rows) lines.push(`| ${row.map(cell).join(" | ")} |`);
  return lines.join("\n");
}

export function errorBlock(title, err) {
  const text = String(err?.stack ?? err?.message ?? err);
  return `**${title} failed:**\n\n\`\`\`\n${text.slice(0, 4000)}\n\`\`\``;
}

/** First line of an error, for table cells. */
export function errorCell(err) {
  const text = String(err?.message ?? err).split("\n")[0];
  return `error: ${text.slice(0, 200)}`;
}
