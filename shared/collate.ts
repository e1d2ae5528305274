/**
 * SQLite's order of values, in JavaScript: numbers before text, and text by UTF-8 bytes
 * (BINARY collation), which is code-point order. JavaScript's `<` on strings compares
 * UTF-16 code units, which disagrees between U+E000–U+FFFF and astral characters (a
 * surrogate pair sorts before U+FF21 in JS, after it in SQLite). Everything that orders or
 * filters flushed rows outside SQL compares through here.
 */

/** A UTF-16 code unit mapped so that code-unit order becomes code-point order. */
function unit(c: number): number {
  if (c < 0xd800) return c;
  if (c <= 0xdfff) return c + 0x2000; // surrogates: above every other BMP unit
  return c - 0x800;
}

export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unit(x) - unit(y);
  }
  return a.length - b.length;
}

/** Numbers before text, numbers numerically, text by code point (non-null values). */
export function compareValues(a: unknown, b: unknown): number {
  const na = typeof a === "number";
  const nb = typeof b === "number";
  if (na && nb) return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
  if (na !== nb) return na ? -1 : 1;
  return compareText(String(a), String(b));
}

/** SQLite's ASCII-only case folding (LIKE is case-insensitive for A–Z only). */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}
