/**
 * A tiny metrics registry (counters, gauges, fixed-bucket histograms) rendered in the
 * Prometheus text exposition format 0.0.4, and the payee's own metrics.
 *
 * Why not prom-client: we need five metrics and one renderer; the format is a page of spec
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), so a dependency would cost more
 * than it saves. What we keep from it: metric and label names are validated when registered,
 * label values and help text are escaped as the format requires, histogram buckets are
 * cumulative and end with `+Inf`, and gauges may be computed at scrape time instead of being
 * kept up to date by hand.
 *
 * Values are JS numbers (float64, like Prometheus's own). Satoshi counters stay exact up to 2^53
 * sat (90 million BTC), more than can ever exist.
 */

/** Content-Type of {@link MetricsRegistry.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type Labels = Readonly<Record<string, string>>;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  /** Sample lines, without the HELP/TYPE header. */
  samples(): string[];
}

/** A value that only goes up (resets only when the process restarts). */
export class Counter implements Metric {
  readonly type = 'counter';
  // Keyed by the rendered label set, so one series per distinct label values.
  private readonly series = new Map<string, number>();

  /** @internal Create through {@link MetricsRegistry.counter}. */
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
  ) {
    // A counter without labels shows 0 before its first increment, so rate() has a start point.
    if (labelNames.length === 0) this.series.set('', 0);
  }

  /**
   * Adds `value` (default 1) to the series with `labels`.
   * @throws RangeError if `value` is negative or not finite.
   * @throws TypeError if `labels` does not name exactly the counter's label names.
   */
  inc(value = 1, labels?: Labels): void {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`${this.name}: a counter only goes up (got ${value})`);
    // Unlabelled counters are bumped per payment: skip rendering an empty label set.
    const key = labels === undefined && this.labelNames.length === 0 ? '' : renderLabels(this.name, this.labelNames, labels ?? {});
    this.series.set(key, (this.series.get(key) ?? 0) + value);
  }

  /** The current value of the series with `labels` (0 if never incremented). */
  value(labels: Labels = {}): number {
    return this.series.get(renderLabels(this.name, this.labelNames, labels)) ?? 0;
  }

  samples(): string[] {
    return [...this.series].map(([labels, v]) => `${this.name}${labels} ${formatValue(v)}`);
  }
}

/** A value that goes up and down: set by hand, or computed at each scrape. */
export class Gauge implements Metric {
  readonly type = 'gauge';
  private current = 0;
  private collect: (() => number) | null = null;

  /** @internal Create through {@link MetricsRegistry.gauge}. */
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  set(value: number): void {
    this.current = value;
  }

  /** Computes the value at each scrape from now on (replacing any earlier function or `set`). */
  collectWith(collect: () => number): void {
    this.collect = collect;
  }

  value(): number {
    return this.collect ? this.collect() : this.current;
  }

  samples(): string[] {
    return [`${this.name} ${formatValue(this.value())}`];
  }
}

/** Counts observations into fixed, cumulative buckets (`le` = less than or equal). */
export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  /** @internal Create through {@link MetricsRegistry.histogram}. */
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }

  /** Records one observation. NaN is ignored (it would poison `_sum`). */
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    this.sum += value;
    this.count++;
    // Only the first bucket that holds the value is counted; rendering makes them cumulative.
    // A loop, not findIndex with a closure: this runs once per payment.
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]!) {
        this.counts[i] = (this.counts[i] ?? 0) + 1;
        return;
      }
    }
  }

  /** Number of observations so far. */
  observations(): number {
    return this.count;
  }

  samples(): string[] {
    const lines: string[] = [];
    let cumulative = 0;
    this.buckets.forEach((le, i) => {
      cumulative += this.counts[i] ?? 0;
      lines.push(`${this.name}_bucket{le="${formatValue(le)}"} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`);
    lines.push(`${this.name}_sum ${formatValue(this.sum)}`);
    lines.push(`${this.name}_count ${this.count}`);
    return lines;
  }
}

/** A set of metrics rendered together, in registration order. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  /**
   * Registers a counter; `labelNames` are the labels every increment must give.
   * @throws TypeError for an invalid metric or label name, or a name already registered.
   */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new TypeError(`invalid label name ${JSON.stringify(l)}`);
    }
    return this.add(new Counter(name, help, [...labelNames].sort()));
  }

  /** Registers a gauge. @throws TypeError for an invalid or duplicate name. */
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }

  /**
   * Registers a histogram with the given upper bounds (`+Inf` is added by the renderer).
   * @throws TypeError for an invalid or duplicate name.
   * @throws RangeError if `buckets` is empty, not strictly increasing, or not finite.
   */
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    if (buckets.length === 0) throw new RangeError(`${name}: a histogram needs at least one bucket`);
    buckets.forEach((b, i) => {
      if (!Number.isFinite(b)) throw new RangeError(`${name}: bucket bounds must be finite (+Inf is implicit)`);
      if (i > 0 && b <= (buckets[i - 1] as number)) throw new RangeError(`${name}: bucket bounds must be strictly increasing`);
    });
    return this.add(new Histogram(name, help, Object.freeze([...buckets])));
  }

  /** Every metric in the text exposition format 0.0.4 (serve it with {@link PROMETHEUS_CONTENT_TYPE}). */
  render(): string {
    const lines: string[] = [];
    for (const m of this.metrics.values()) {
      lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`, ...m.samples());
    }
    // The format requires the last line to end with a line feed.
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }

  private add<M extends Metric>(metric: M): M {
    if (!METRIC_NAME.test(metric.name)) throw new TypeError(`invalid metric name ${JSON.stringify(metric.name)}`);
    if (this.metrics.has(metric.name)) throw new TypeError(`metric ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

/** Renders `{a="x",b="y"}` in the counter's label order, or '' without labels. */
function renderLabels(metric: string, names: readonly string[], labels: Labels): string {
  const given = Object.keys(labels);
  if (given.length !== names.length || given.some((k) => !names.includes(k))) {
    throw new TypeError(`${metric} takes labels {${names.join(', ')}}, got {${given.join(', ')}}`);
  }
  if (names.length === 0) return '';
  return `{${names.map((n) => `${n}="${escapeLabelValue(labels[n] as string)}"`).join(',')}}`;
}

/** Label values escape backslash, double quote and line feed. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Help text escapes backslash and line feed (quotes are allowed). */
function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Go's ParseFloat reads what JS prints, except the infinities and NaN, which have fixed names. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** What the payee's gauges are computed from at scrape time. */
export interface PayeeMetricsSource {
  /** Channel states; only `type` is read. */
  channels(): readonly { readonly type: string }[];
  /** Open WebSocket connections. */
  connections(): number;
}

/** Upper bounds in seconds: a payment is a signature check and a store commit, 0.1 ms – 1 s. */
export const PAYMENT_LATENCY_BUCKETS_SECONDS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * The payee's metrics. Create it before the `PayeeService` and pass {@link onPayment} as the
 * service's `onPayment` hook, so payments are counted once each, after they are durable (a
 * resent payment that is only acknowledged again is not counted twice); then give the same
 * object to `startPayeeServer`, which times payments, counts refusals, and serves it.
 */
export class PayeeMetrics {
  readonly registry = new MetricsRegistry();
  readonly payments = this.registry.counter('paychan_payments_total', 'Payments accepted and durably stored (acknowledged to the payer).');
  readonly paymentSats = this.registry.counter('paychan_payment_sats_total', 'Satoshis received: the sum of increments of acknowledged payment totals.');
  readonly openChannels = this.registry.gauge('paychan_open_channels', 'Channels in the Open state (accepting payments), at scrape time.');
  readonly paymentLatency = this.registry.histogram(
    'paychan_payment_latency_seconds',
    'Time from a payment frame being read off a WebSocket to its payment-ack being handed to the same socket (includes waiting behind earlier messages of the channel and the store commit).',
    PAYMENT_LATENCY_BUCKETS_SECONDS,
  );
  readonly connections = this.registry.gauge('paychan_connections', 'Open WebSocket connections from payers, at scrape time.');
  readonly rejected = this.registry.counter('paychan_messages_rejected_total', 'error messages sent to payers, by protocol error code.', ['code']);

  /** The `PayeeService` `onPayment` hook (bound; pass it as is). */
  readonly onPayment = (_channelId: string, _totalSat: bigint, deltaSat: bigint): void => {
    this.payments.inc();
    // Within 2^53: no channel holds more than 21 million BTC.
    if (deltaSat > 0n) this.paymentSats.inc(Number(deltaSat));
  };

  /** Computes the gauges from `source` at every scrape (the server calls this). */
  observe(source: PayeeMetricsSource): void {
    this.openChannels.collectWith(() => source.channels().filter((c) => c.type === 'Open').length);
    this.connections.collectWith(() => source.connections());
  }

  /** The text exposition of every metric. */
  render(): string {
    return this.registry.render();
  }
}
