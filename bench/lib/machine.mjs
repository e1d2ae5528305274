/** What the results were measured on. */
import { spawnSync } from "node:child_process";
import os from "node:os";

export function machineInfo() {
  const cpus = os.cpus();
  const pg = spawnSync("psql", ["--version"], { encoding: "utf8", timeout: 5_000 });
  return {
    cpu: cpus[0]?.model?.trim() ?? "unknown",
    cores: cpus.length,
    memoryGB: (os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
    postgres: pg.status === 0 ? pg.stdout.trim() : "not found",
    date: new Date().toISOString(),
  };
}

export function machineMarkdown(m) {
  return [
    `- CPU: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB RAM`,
    `- OS: ${m.os}`,
    `- Node: ${m.node}`,
    `- PostgreSQL client: ${m.postgres}`,
    `- Date: ${m.date}`,
  ].join("\n");
}
