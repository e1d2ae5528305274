/**
 * The processes behind `npm start`, for the realtime bench's memory and CPU figures.
 * `wrangler dev` runs two workerd processes: a proxy that owns the public port (every request
 * and WebSocket goes through it) and the one that runs the gateway Worker and the ProjectDOs
 * ("inner"). Everything here reads /proc (Linux) and only looks at the server's process group.
 */
import { spawnSync } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import { processGroupMembers } from "../../scripts/server-process.mjs";

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

const readText = (file) => readFile(file, "utf8").catch(() => null);

/** Ports 127.0.0.1 listens on through sockets that `pid` holds (from /proc/net/tcp). */
async function listeningPorts(pid) {
  const inodes = new Set();
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
  for (const fd of fds) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]);
  }
  const ports = [];
  for (const line of ((await readText("/proc/net/tcp")) ?? "").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // local_address "0100007F:PORT" (127.0.0.1), state 0A = LISTEN, inode in column 10
    if (f[3] === "0A" && f[1]?.startsWith("0100007F:") && inodes.has(f[9])) {
      ports.push(Number.parseInt(f[1].slice(9), 16));
    }
  }
  return ports;
}

/**
 * `{ pgid, proxy, inner, innerUrl }`: the pids of the two workerd processes and the loopback URL on
 * which the inner one serves Hearth itself (found by asking each of its ports for /health),
 * so a profile can connect past wrangler's proxy.
 */
export async function serverProcesses(server) {
  const workerd = [];
  for (const pid of await processGroupMembers(server.pid)) {
    if ((await readText(`/proc/${pid}/comm`))?.trim() !== "workerd") continue;
    const cmdline = ((await readText(`/proc/${pid}/cmdline`)) ?? "").split("\0");
    workerd.push({ pid, isProxy: cmdline.includes(`--socket-addr=entry=127.0.0.1:${server.port}`) });
  }
  const proxy = workerd.find((p) => p.isProxy)?.pid ?? null;
  const inner = workerd.filter((p) => !p.isProxy).map((p) => p.pid);
  if (inner.length !== 1) {
    throw new Error(`expected one workerd besides the proxy in group ${server.pid}, found ${inner.length}`);
  }
  let innerUrl = null;
  for (const port of await listeningPorts(inner[0])) {
    const url = `http://127.0.0.1:${port}`;
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(3_000) });
      if (res.status === 200 && (await res.json())?.status === "ok") {
        innerUrl = url;
        break;
      }
    } catch {
      // not the entry socket (the inspector, the loopback service...)
    }
  }
  return { pgid: server.pid, proxy, inner: inner[0], innerUrl };
}

async function rssOf(pid) {
  const kb = Number((await readText(`/proc/${pid}/status`))?.match(/VmRSS:\s+(\d+)/)?.[1]);
  return Number.isFinite(kb) ? kb * 1024 : Number.NaN;
}

/** Resident memory (bytes) of the two workerd processes. */
export async function workerdMemory(procs) {
  const inner = await rssOf(procs.inner);
  const proxy = procs.proxy === null ? 0 : await rssOf(procs.proxy);
  return { inner, proxy, total: inner + proxy };
}

async function cpuMs(pid) {
  if (pid === null) return 0;
  const stat = await readText(`/proc/${pid}/stat`);
  if (!stat) return Number.NaN;
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // utime + stime
}

/** Busy CPU ms of the whole machine (all cores, from /proc/stat), and the part spent in interrupts. */
async function machineMs() {
  const f = ((await readText("/proc/stat")) ?? "").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const toMs = (ticks) => (ticks * 1000) / CLK_TCK;
  return { busy: toMs(f[0] + f[1] + f[2] + f[5] + f[6] + f[7]), irq: toMs(f[5] + f[6]) };
}

/** CPU ms of the server's processes other than the two workerd (wrangler's Node, esbuild). */
async function restOfGroupMs(procs) {
  let sum = 0;
  for (const pid of await processGroupMembers(procs.pgid)) {
    if (pid !== procs.inner && pid !== procs.proxy) sum += (await cpuMs(pid)) || 0;
  }
  return sum;
}

/**
 * A CPU-time reading of the server's processes, of this (client) process and of the whole
 * machine, which also counts the kernel's loopback work and whatever else runs there.
 */
export async function cpuSample(procs) {
  const u = process.cpuUsage();
  const machine = await machineMs();
  return {
    t: performance.now(),
    client: (u.user + u.system) / 1000,
    inner: await cpuMs(procs.inner),
    proxy: await cpuMs(procs.proxy),
    wrangler: await restOfGroupMs(procs),
    machine: machine.busy,
    irq: machine.irq,
  };
}

/** CPU ms each process used between two samples, and the wall ms between them. */
export function cpuBetween(a, b) {
  const d = Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
  const { t: wallMs, ...rest } = d;
  // Processes of the group that exited meanwhile would make this negative: clamp.
  return { wallMs, ...rest, wrangler: Math.max(0, rest.wrangler) };
}
