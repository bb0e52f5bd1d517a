/**
 * The versions of each close the dashboard has seen: a close replaced by a higher-fee one (a
 * BIP125 fee bump, by the payee's closer or duplex watcher) keeps the txid, fee and rate of the
 * versions before it, so an operator sees how often and how far a stuck close was bumped.
 *
 * The closers store only the current version (that is all a close needs); this history is the
 * dashboard's, kept in memory from what it samples: versions replaced while no one sampled, or
 * before a restart, are not in it. Bounded: {@link MAX_VERSIONS} per close, and a channel's
 * history is dropped once it no longer waits for a close.
 */

/** One broadcast version of a close. */
export interface CloseVersion {
  readonly txid: string;
  readonly feeSat: number;
  readonly feeRateSatPerVb: number;
  /** Tip height when it was broadcast, if known. */
  readonly broadcastHeight?: number;
}

/** Versions kept per close (the newest ones): a bump every few blocks for hours stays readable. */
export const MAX_VERSIONS = 16;

export class CloseVersions {
  private readonly byChannel = new Map<string, CloseVersion[]>();
  /** Channels seen waiting during the current sample (see {@link retainSeen}). */
  private readonly seen = new Set<string>();

  /**
   * Records that `channelId` waits for close `version` now. @returns every version seen, oldest
   * first, the last one being `version`.
   */
  observe(channelId: string, version: CloseVersion): readonly CloseVersion[] {
    this.seen.add(channelId);
    let versions = this.byChannel.get(channelId);
    if (versions === undefined) {
      versions = [];
      this.byChannel.set(channelId, versions);
    }
    if (versions[versions.length - 1]?.txid !== version.txid) {
      versions.push(version);
      if (versions.length > MAX_VERSIONS) versions.shift();
    }
    return versions;
  }

  /** Forgets the channels not observed since the previous call (their close confirmed or went). */
  retainSeen(): void {
    for (const id of this.byChannel.keys()) if (!this.seen.has(id)) this.byChannel.delete(id);
    this.seen.clear();
  }
}
