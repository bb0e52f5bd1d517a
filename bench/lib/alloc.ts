/**
 * Bytes allocated on the JS heap over a stretch of work, from V8's own counters: the heap's used
 * size grows only by allocation and shrinks only by collection, so
 *
 *   allocated = usedAtEnd − usedAtStart + Σ over the collections in between (usedBefore − usedAfter)
 *
 * with each collection's before/after sizes from `v8.GCProfiler` (Node ≥ 18.15). Allocation per
 * payment is what drives the young-generation scavenges and full-GC marking that lengthen the
 * tail (docs/design.md, "Garbage per payment"); unlike a rate, it does not depend on how busy the
 * machine is.
 */
import v8 from 'node:v8';

export interface AllocationFigures {
  readonly allocatedBytes: number;
  readonly collections: number;
  /** Time V8 reports spent in those collections, ms. */
  readonly gcMs: number;
}

export class AllocationCounter {
  private profiler: v8.GCProfiler | null = null;
  private usedAtStart = 0;

  start(): void {
    this.profiler = new v8.GCProfiler();
    this.profiler.start();
    this.usedAtStart = v8.getHeapStatistics().used_heap_size;
  }

  stop(): AllocationFigures {
    const usedAtEnd = v8.getHeapStatistics().used_heap_size;
    const report = this.profiler?.stop();
    this.profiler = null;
    let freed = 0;
    let gcUs = 0;
    const stats = report?.statistics ?? [];
    for (const s of stats) {
      freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
      gcUs += s.cost;
    }
    return { allocatedBytes: usedAtEnd - this.usedAtStart + freed, collections: stats.length, gcMs: Math.round(gcUs / 100) / 10 };
  }
}
