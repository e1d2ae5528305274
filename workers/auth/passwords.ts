/**
 * Password hashing with WebCrypto PBKDF2-SHA256. 100,000 iterations is the most workerd
 * accepts (it refuses larger counts with a NotSupportedError), so the count is fixed there
 * and recorded in each hash, which lets a future scheme coexist with stored ones.
 * Stored form: `pbkdf2-sha256$100000$<salt base64>$<hash base64>`.
 */
const ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BITS = 256;
const PREFIX = "pbkdf2-sha256";

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1024;

const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array | null {
  try {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    HASH_BITS,
  );
  return new Uint8Array(bits);
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, ITERATIONS);
  return `${PREFIX}$${ITERATIONS}$${toBase64(salt)}$${toBase64(hash)}`;
}

/** Constant-time check of `password` against a stored hash; a malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [prefix, iterText, saltText, hashText] = stored.split("$");
  const iterations = Number(iterText);
  const salt = saltText === undefined ? null : fromBase64(saltText);
  const expected = hashText === undefined ? null : fromBase64(hashText);
  if (prefix !== PREFIX || !Number.isInteger(iterations) || iterations < 1 || iterations > ITERATIONS) {
    return false;
  }
  if (!salt || !expected || expected.length !== HASH_BITS / 8) return false;
  const actual = await derive(password, salt, iterations);
  return crypto.subtle.timingSafeEqual(actual, expected);
}

/**
 * Spends the time of one verification without a stored hash, so that "no such email" and
 * "wrong password" take as long as each other and cannot be told apart by timing.
 */
export async function burnPasswordCheck(password: string): Promise<void> {
  await derive(password, new Uint8Array(SALT_BYTES), ITERATIONS);
}

/** `verifyPassword`, or the same work and `false` when there is no stored hash (unknown email). */
export async function passwordMatches(password: string, stored: string | null | undefined): Promise<boolean> {
  if (stored) return verifyPassword(password, stored);
  await burnPasswordCheck(password);
  return false;
}

/** GoTrue's `weak_password.reasons` for `password`, empty when it is acceptable. */
export function weaknessReasons(password: string): string[] {
  return password.length < MIN_PASSWORD_LENGTH ? ["length"] : [];
}
