/**
 * Several payee instances on one store (docs/scale.md): which channels this instance serves.
 * It serves the channels whose lease it holds (store.ts, ChannelLeases); this unit takes the
 * ones another instance served when their payer comes here (adopt), takes the ones nobody holds
 * any more so their closes still run (orphans, every lease period), and drops the ones whose
 * lease was lost (a takeover: nothing more is acknowledged for them here).
 *
 * A channel is always read after its lease was taken: the former holder's writes are fenced from
 * the takeover on, so the state read then holds every payment it acknowledged.
 */
import { errorMessage } from '../protocol/messages.js';
import { payeeStateRef, type PayeeState } from '../protocol/payee-machine.js';
import type { ChannelLeases, Store } from '../store/store.js';
import type { ChannelEntry } from './channel-entry.js';

/** What the adoption needs of the payee service's channel table. */
export interface AdoptionHost {
  entry(tempId: string): ChannelEntry | undefined;
  /** Whether a stored state of this type is a channel to serve. */
  serves(state: PayeeState): boolean;
  /** Puts a channel read from the store in the table (and watches what it waits for). */
  register(tempId: string, state: PayeeState): ChannelEntry;
  /** Takes a channel out of the table. */
  forget(entry: ChannelEntry): void;
  log(line: string): void;
}

/** What {@link ChannelAdoption.adopt} found: the entry, another live holder, or no such channel. */
export type Adoption = ChannelEntry | 'busy' | undefined;

/** Orphaned channels adopted per pass. */
const ORPHANS_PER_PASS = 200;
/**
 * Adoptions running at once. Anyone can name a channel (ids are funding outpoints, public on
 * chain) and each adoption reads the store and may wait two lease periods for another holder:
 * beyond this many, a message for a channel not served here is answered CHANNEL_MOVED at once
 * (its payer reconnects and asks again), so strangers cannot queue unbounded work or starve the
 * lease renewal of connections.
 */
const MAX_ADOPTIONS = 16;

export class ChannelAdoption {
  /** Channels being loaded, by the ref asked for: concurrent asks share the work. */
  private readonly adoptions = new Map<string, Promise<Adoption>>();
  /**
   * The messages of each connection waiting for adoptions, in arrival order (never rejects): per
   * connection, so one connection's long wait (a live holder) delays no other payer's.
   */
  private readonly turns = new WeakMap<object, Promise<void>>();
  private orphanTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly leases: ChannelLeases,
    private readonly host: AdoptionHost,
  ) {
    leases.onLost((tempId) => this.drop(tempId));
  }

  /**
   * Loads a channel another instance served, once its lease is ours. A lease another instance
   * holds is waited for up to two lease periods: a dead or paused holder's expires by then; a
   * live holder renews it ('busy': the payer is to be told CHANNEL_MOVED).
   */
  adopt(ref: string): Promise<Adoption> {
    let adoption = this.adoptions.get(ref);
    if (!adoption) {
      if (this.adoptions.size >= MAX_ADOPTIONS) return Promise.resolve('busy');
      adoption = this.take(ref).finally(() => this.adoptions.delete(ref));
      this.adoptions.set(ref, adoption);
    }
    return adoption;
  }

  /**
   * Runs `handle` after the handlers `connection` queued before it: adoptions run concurrently,
   * but a connection's messages waiting for them are handled in arrival order (a payer's auth names the tempId and
   * its status request the channel id: two adoptions).
   */
  inTurn(connection: object, handle: () => Promise<void>): Promise<void> {
    const turn = (this.turns.get(connection) ?? Promise.resolve()).then(handle);
    this.turns.set(
      connection,
      turn.catch(() => undefined),
    );
    return turn;
  }

  /** Starts adopting orphans every lease period. */
  start(): void {
    if (this.orphanTimer) return;
    this.orphanTimer = setInterval(() => void this.adoptOrphans(), this.leases.leaseMs);
    this.orphanTimer.unref();
  }

  stop(): void {
    if (this.orphanTimer) clearInterval(this.orphanTimer);
    this.orphanTimer = null;
  }

  private async take(ref: string): Promise<Adoption> {
    const found = await this.store.loadPayeeChannel!(ref);
    if (!found || !this.host.serves(found.state)) return undefined;
    const known = this.host.entry(found.tempId);
    if (known) return known;
    if (!(await this.leases.acquireWaiting(found.tempId, 2 * this.leases.leaseMs))) return 'busy';
    // Read after taking the lease: the former holder's last committed write is in it.
    const fresh = await this.store.loadPayeeChannel!(found.tempId);
    if (!fresh) return undefined;
    const again = this.host.entry(fresh.tempId);
    if (again) return again;
    this.host.log(`took over channel ${payeeStateRef(fresh.state)} (${fresh.state.type}, ${'paidSat' in fresh.state ? fresh.state.paidSat : 0n} sat)`);
    return this.host.register(fresh.tempId, fresh.state);
  }

  /**
   * Forgets a channel whose lease this instance lost: nothing more is acknowledged or stored for
   * it here (its writes are fenced anyway); its payer is told and its connection ended, so it
   * reconnects to the instance that holds it now.
   */
  private drop(tempId: string): void {
    const entry = this.host.entry(tempId);
    if (!entry) return;
    entry.moved = true;
    entry.discarded = true;
    this.host.forget(entry);
    const ref = payeeStateRef(entry.state);
    this.host.log(`channel ${ref} moved to another instance: dropped here`);
    const link = entry.link;
    if (link) {
      link.send(errorMessage('CHANNEL_MOVED', `${ref}: another instance serves it now; reconnect`, 'reject', ref));
      link.close?.();
    }
  }

  /** Takes the channels no live instance holds (their holder died and no payer came back): their closes are due all the same. */
  private async adoptOrphans(): Promise<void> {
    try {
      const orphans = (await this.leases.orphans(ORPHANS_PER_PASS)).filter((t) => !this.host.entry(t));
      if (orphans.length === 0) return;
      for (const tempId of await this.leases.acquire(orphans)) {
        const found = await this.store.loadPayeeChannel!(tempId);
        if (found && !this.host.entry(tempId) && this.host.serves(found.state)) {
          this.host.register(tempId, found.state);
          this.host.log(`adopted orphaned channel ${payeeStateRef(found.state)}`);
        }
      }
    } catch (err) {
      this.host.log(`adopting orphaned channels failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
