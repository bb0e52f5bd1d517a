/** What the numbers were measured on: they mean little without it. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
  readonly memoryBytes: number;
  /** One 4 KiB write + fsync in the temp dir, median µs: the floor of a durable commit. */
  readonly fsyncMicros: number;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memoryBytes: os.totalmem(),
    fsyncMicros: measureFsync(),
  };
}

function measureFsync(): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paychan-bench-fsync-'));
  const file = path.join(dir, 'f');
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(4096, 1);
  const samples: number[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      const t = process.hrtime.bigint();
      fs.writeSync(fd, block);
      fs.fsyncSync(fd);
      samples.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  samples.sort((a, b) => a - b);
  return Math.round(samples[samples.length >> 1]!);
}
