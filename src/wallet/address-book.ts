/**
 * The scripts the wallet watches: on each BIP84 chain, every index handed out or seen paid, plus
 * `gapLimit` more (BIP44's gap limit), so that a wallet restored from the seed finds payments to
 * addresses it has not handed out yet. Derived data, rebuilt from the seed and
 * {@link WalletState.keys}; never persisted.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { DerivedAddress, KeyChain, WalletKeys } from './keys.js';
import type { ChainCursor, KeyRef, ScriptBook, WalletState } from './state.js';

const CHAINS: readonly KeyChain[] = ['receive', 'change'];

export class AddressBook implements ScriptBook {
  readonly #byScript = new Map<string, KeyRef>();
  readonly #derived: Record<KeyChain, DerivedAddress[]> = { receive: [], change: [] };

  constructor(
    private readonly keys: WalletKeys,
    private readonly state: WalletState,
  ) {
    for (const chain of CHAINS) this.#extend(chain);
  }

  lookup(scriptHex: string): KeyRef | undefined {
    return this.#byScript.get(scriptHex);
  }

  markUsed(ref: KeyRef): boolean {
    const cursor = this.state.keys[ref.chain];
    if (ref.index <= cursor.highestUsed) return false;
    cursor.highestUsed = ref.index;
    return this.#extend(ref.chain);
  }

  /** @returns the address {@link next} would hand out, without handing it out. */
  peek(chain: KeyChain): DerivedAddress {
    const cursor = this.state.keys[chain];
    return this.#derived[chain][Math.max(cursor.nextIndex, cursor.highestUsed + 1)]!;
  }

  /**
   * Hands out the next address of `chain` that was never handed out nor seen paid, and watches
   * it (with the lookahead past it).
   */
  next(chain: KeyChain): DerivedAddress {
    const address = this.peek(chain);
    this.state.keys[chain].nextIndex = address.index + 1;
    this.#extend(chain);
    return address;
  }

  /** @returns the address at `ref`, which must be watched. */
  address(ref: KeyRef): DerivedAddress {
    const address = this.#derived[ref.chain][ref.index];
    if (!address) throw new RangeError(`${ref.chain} address ${ref.index} is not watched`);
    return address;
  }

  /** Derives up to the lookahead of `chain`. @returns true if any script was added. */
  #extend(chain: KeyChain): boolean {
    const cursor: ChainCursor = this.state.keys[chain];
    const last = Math.max(cursor.nextIndex - 1, cursor.highestUsed) + this.state.gapLimit;
    const derived = this.#derived[chain];
    const before = derived.length;
    while (derived.length <= last) {
      const address = this.keys.address(chain, derived.length);
      derived.push(address);
      this.#byScript.set(bytesToHex(address.script), { chain, index: address.index });
    }
    return derived.length > before;
  }
}
