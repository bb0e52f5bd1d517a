/**
 * Per-channel leases with fencing tokens on PostgreSQL (the {@link ChannelLeases} contract in
 * store.ts): one row per payee channel {temp_id, owner, token, expires_at} in `channel_leases`.
 *
 * Why leases and tokens rather than a lock per channel held by a session: a session lock dies
 * with its connection but not with a paused process (SIGSTOP, a long GC, a partition), which
 * would keep acknowledging from memory; a token checked inside every write (postgres-store.ts
 * locks the lease row FOR SHARE in the writing statement) refuses that process's writes the
 * moment another instance has taken over, whatever its own clock or state says. Expiry uses the
 * database's clock only.
 *
 * The holder renews all its leases in one statement every `leaseMs / 3`; leases the renewal does
 * not find with our token were taken over: they are dropped and reported to `onLost`.
 */
import type { Pool } from 'pg';
import type { ChannelLeases } from './store.js';
import { retryDeadlock } from './postgres-deadlock.js';
import type { LeaseTokens } from './postgres-store.js';

const SQL = {
  // Rows are locked in temp_id order, as the writer's FOR SHARE and the renewal lock them: lock
  // order is what keeps the three from deadlocking each other (a deadlock left is retried).
  acquire: `INSERT INTO channel_leases (temp_id, owner, token, expires_at)
    SELECT t, $2, 1, now() + $3 * interval '1 millisecond' FROM (SELECT t FROM unnest($1::text[]) AS t ORDER BY t) AS s
    ON CONFLICT (temp_id) DO UPDATE SET owner = excluded.owner, token = channel_leases.token + 1, expires_at = excluded.expires_at
      WHERE channel_leases.owner = excluded.owner OR channel_leases.expires_at < now()
    RETURNING temp_id, token`,
  renew: `WITH r AS (SELECT l.temp_id FROM channel_leases l JOIN unnest($1::text[], $2::bigint[]) AS u(temp_id, token)
      ON l.temp_id = u.temp_id AND l.token = u.token ORDER BY l.temp_id FOR UPDATE OF l)
    UPDATE channel_leases c SET expires_at = now() + $3 * interval '1 millisecond' FROM r WHERE c.temp_id = r.temp_id
    RETURNING c.temp_id`,
  // Expiring it now (not deleting it) keeps the token growing across holders.
  release: `UPDATE channel_leases SET expires_at = now() - interval '1 millisecond' WHERE temp_id = $1 AND token = $2`,
  releaseAll: `UPDATE channel_leases l SET expires_at = now() - interval '1 millisecond'
    FROM unnest($1::text[], $2::bigint[]) AS u(temp_id, token) WHERE l.temp_id = u.temp_id AND l.token = u.token`,
  expiresIn: `SELECT GREATEST(0, EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::float8 AS ms FROM channel_leases WHERE temp_id = $1`,
  orphans: `SELECT c.temp_id FROM payee_channels c LEFT JOIN channel_leases l ON l.temp_id = c.temp_id
    WHERE c.state_type <> 'Closed' AND (l.temp_id IS NULL OR l.expires_at < now()) ORDER BY c.seq LIMIT $1`,
} as const;

export class PgChannelLeases implements ChannelLeases, LeaseTokens {
  private readonly tokens = new Map<string, string>();
  private readonly listeners: ((tempId: string) => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;
  private acquireTail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly pool: () => Promise<Pool>,
    readonly owner: string,
    readonly leaseMs: number,
    private readonly log: (line: string) => void,
  ) {}

  tokenOf(tempId: string): string | undefined {
    return this.tokens.get(tempId);
  }

  holds(tempId: string): boolean {
    return this.tokens.has(tempId);
  }

  /**
   * Takes the leases that are free, expired or this owner's. One acquire at a time in this
   * process, and a lease it holds already is not taken again: taking it again would bump its
   * token and fence this process's own writes staged under the old one (two messages naming one
   * channel by its two refs, an orphan pass racing a payer's return).
   */
  acquire(tempIds: readonly string[]): Promise<Set<string>> {
    const run = this.acquireTail.then(() => this.acquireNow(tempIds));
    this.acquireTail = run.catch(() => undefined);
    return run;
  }

  private async acquireNow(tempIds: readonly string[]): Promise<Set<string>> {
    const held = new Set<string>();
    const wanted = tempIds.filter((t) => !(this.tokens.has(t) && held.add(t)));
    if (wanted.length === 0 || this.closed) return held;
    const pool = await this.pool();
    const rows = (await retryDeadlock(() => pool.query<{ temp_id: string; token: string }>(SQL.acquire, [wanted, this.owner, this.leaseMs]))).rows;
    for (const r of rows) {
      this.tokens.set(r.temp_id, r.token);
      held.add(r.temp_id);
    }
    if (held.size > 0) this.startRenewing();
    return held;
  }

  async acquireWaiting(tempId: string, maxWaitMs: number): Promise<boolean> {
    const deadline = Date.now() + maxWaitMs;
    for (;;) {
      if ((await this.acquire([tempId])).has(tempId)) return true;
      const pool = await this.pool();
      const left = Number((await pool.query<{ ms: number }>(SQL.expiresIn, [tempId])).rows[0]?.ms ?? 0);
      // Wake just after the holder's lease expires (it may renew meanwhile: then try again).
      const wait = Math.min(left + 20, deadline - Date.now());
      if (wait <= 0 || this.closed) return false;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async release(tempId: string): Promise<void> {
    const token = this.tokens.get(tempId);
    if (token === undefined) return;
    this.tokens.delete(tempId);
    const pool = await this.pool();
    await pool.query(SQL.release, [tempId, token]);
  }

  async orphans(limit: number): Promise<string[]> {
    const pool = await this.pool();
    return (await pool.query<{ temp_id: string }>(SQL.orphans, [limit])).rows.map((r) => r.temp_id);
  }

  onLost(listener: (tempId: string) => void): void {
    this.listeners.push(listener);
  }

  /** A fenced write found another token (postgres-store.ts): the lease is gone. */
  lost(tempId: string): void {
    if (!this.tokens.delete(tempId)) return;
    this.log(`lease of ${tempId} lost: another instance took the channel`);
    for (const listener of this.listeners) listener(tempId);
  }

  /** Renews every lease held now; the ones not found with our token are lost. */
  renew(): Promise<void> {
    this.renewing ??= (async () => {
      const held = [...this.tokens];
      if (held.length === 0) return;
      const pool = await this.pool();
      const renewed = new Set((await retryDeadlock(() => pool.query<{ temp_id: string }>(SQL.renew, [held.map(([t]) => t), held.map(([, k]) => k), this.leaseMs]))).rows.map((r) => r.temp_id));
      for (const [tempId, token] of held) {
        // Still the token we renewed with: a lease taken again meanwhile is not the lost one.
        if (!renewed.has(tempId) && this.tokens.get(tempId) === token) this.lost(tempId);
      }
    })()
      .catch((err: unknown) => this.log(`lease renewal failed: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => (this.renewing = null));
    return this.renewing;
  }

  /**
   * Gives up every lease held (a clean shutdown: the other instances take the channels at once
   * instead of after a lease period).
   */
  async releaseAll(): Promise<void> {
    const held = [...this.tokens];
    this.tokens.clear();
    if (held.length === 0) return;
    const pool = await this.pool();
    await pool.query(SQL.releaseAll, [held.map(([t]) => t), held.map(([, k]) => k)]);
  }

  /** Stops renewing (the store closes). Leases then expire by themselves. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private startRenewing(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }
}
