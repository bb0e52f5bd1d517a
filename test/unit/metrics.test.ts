/**
 * The metrics registry renders exactly the Prometheus text exposition format 0.0.4: HELP/TYPE
 * headers, escaping, cumulative buckets ending in +Inf, and gauges computed at scrape time.
 */
import { describe, expect, it } from 'vitest';
import { MetricsRegistry, PayeeMetrics, PROMETHEUS_CONTENT_TYPE } from '../../src/transport/metrics.js';

describe('MetricsRegistry.render', () => {
  it('renders counters, labelled counters, gauges and histograms in registration order', () => {
    const r = new MetricsRegistry();
    const c = r.counter('app_requests_total', 'Requests served.');
    const byCode = r.counter('app_errors_total', 'Errors by code.', ['code']);
    const g = r.gauge('app_temperature_celsius', 'Current temperature.');
    const h = r.histogram('app_latency_seconds', 'Latency.', [0.1, 0.5, 1]);
    c.inc();
    c.inc(2);
    byCode.inc(1, { code: 'B' });
    byCode.inc(1, { code: 'A' });
    byCode.inc(3, { code: 'B' });
    g.set(-1.5);
    for (const v of [0.05, 0.1, 0.3, 2]) h.observe(v);
    expect(r.render()).toBe(
      [
        '# HELP app_requests_total Requests served.',
        '# TYPE app_requests_total counter',
        'app_requests_total 3',
        '# HELP app_errors_total Errors by code.',
        '# TYPE app_errors_total counter',
        'app_errors_total{code="B"} 4',
        'app_errors_total{code="A"} 1',
        '# HELP app_temperature_celsius Current temperature.',
        '# TYPE app_temperature_celsius gauge',
        'app_temperature_celsius -1.5',
        '# HELP app_latency_seconds Latency.',
        '# TYPE app_latency_seconds histogram',
        'app_latency_seconds_bucket{le="0.1"} 2', // le is inclusive: 0.1 counts in the 0.1 bucket
        'app_latency_seconds_bucket{le="0.5"} 3',
        'app_latency_seconds_bucket{le="1"} 3',
        'app_latency_seconds_bucket{le="+Inf"} 4',
        'app_latency_seconds_sum 2.45',
        'app_latency_seconds_count 4',
        '',
      ].join('\n'),
    );
  });

  it('shows an unlabelled counter at 0 before its first increment, a labelled one not at all', () => {
    const r = new MetricsRegistry();
    r.counter('a_total', 'A.');
    r.counter('b_total', 'B.', ['code']);
    expect(r.render()).toBe('# HELP a_total A.\n# TYPE a_total counter\na_total 0\n# HELP b_total B.\n# TYPE b_total counter\n');
  });

  it('renders an empty histogram with zero buckets', () => {
    const r = new MetricsRegistry();
    r.histogram('h', 'H.', [1]);
    expect(r.render()).toContain('h_bucket{le="1"} 0\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n');
  });

  it('escapes help text (backslash, newline) and label values (backslash, quote, newline)', () => {
    const r = new MetricsRegistry();
    const c = r.counter('x_total', 'a "quoted" \\ path\nsecond line', ['v']);
    c.inc(1, { v: 'say "hi"\\\n' });
    expect(r.render()).toBe(['# HELP x_total a "quoted" \\\\ path\\nsecond line', '# TYPE x_total counter', 'x_total{v="say \\"hi\\"\\\\\\n"} 1', ''].join('\n'));
  });

  it('writes infinities and NaN with their exposition names', () => {
    const r = new MetricsRegistry();
    const g = r.gauge('g', 'G.');
    g.set(Infinity);
    expect(r.render()).toContain('\ng +Inf\n');
    g.set(-Infinity);
    expect(r.render()).toContain('\ng -Inf\n');
    g.set(NaN);
    expect(r.render()).toContain('\ng NaN\n');
  });

  it('computes a gauge at each scrape when given a function', () => {
    const r = new MetricsRegistry();
    let n = 1;
    r.gauge('live', 'Live.').collectWith(() => n);
    expect(r.render()).toContain('\nlive 1\n');
    n = 7;
    expect(r.render()).toContain('\nlive 7\n');
  });

  it('renders nothing for an empty registry', () => {
    expect(new MetricsRegistry().render()).toBe('');
  });

  it('refuses invalid names, duplicates, wrong labels, negative increments and bad buckets', () => {
    const r = new MetricsRegistry();
    expect(() => r.counter('1bad', 'x')).toThrow(TypeError);
    expect(() => r.counter('bad-name', 'x')).toThrow(TypeError);
    expect(() => r.counter('ok_total', 'x', ['bad-label'])).toThrow(TypeError);
    expect(() => r.counter('ok_total', 'x', ['__reserved'])).toThrow(TypeError);
    const c = r.counter('ok_total', 'x', ['code']);
    expect(() => r.gauge('ok_total', 'again')).toThrow(/already registered/);
    expect(() => c.inc(1, {})).toThrow(TypeError);
    expect(() => c.inc(1, { code: 'A', other: 'B' })).toThrow(TypeError);
    expect(() => c.inc(-1, { code: 'A' })).toThrow(RangeError);
    expect(() => c.inc(NaN, { code: 'A' })).toThrow(RangeError);
    expect(() => r.histogram('h1', 'x', [])).toThrow(RangeError);
    expect(() => r.histogram('h2', 'x', [1, 1])).toThrow(RangeError);
    expect(() => r.histogram('h3', 'x', [2, 1])).toThrow(RangeError);
    expect(() => r.histogram('h4', 'x', [1, Infinity])).toThrow(RangeError);
  });

  it('ignores NaN observations rather than poisoning _sum', () => {
    const r = new MetricsRegistry();
    const h = r.histogram('h', 'H.', [1]);
    h.observe(NaN);
    h.observe(5);
    expect(r.render()).toContain('h_bucket{le="1"} 0\nh_bucket{le="+Inf"} 1\nh_sum 5\nh_count 1\n');
  });

  it('has the 0.0.4 content type', () => {
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});

describe('PayeeMetrics', () => {
  it('exposes the payee metrics; counts payments from the service hook and gauges from the source', () => {
    const m = new PayeeMetrics();
    m.observe({ channels: () => [{ type: 'Open' }, { type: 'Closed' }, { type: 'Open' }], connections: () => 3 });
    m.onPayment('a'.repeat(64) + ':0', 1_000n, 1_000n);
    m.onPayment('a'.repeat(64) + ':0', 1_500n, 500n);
    m.rejected.inc(1, { code: 'RATE_LIMITED' });
    m.paymentLatency.observe(0.0003);
    const text = m.render();
    expect(text).toContain('# TYPE paychan_payments_total counter\npaychan_payments_total 2\n');
    expect(text).toContain('# TYPE paychan_payment_sats_total counter\npaychan_payment_sats_total 1500\n');
    expect(text).toContain('# TYPE paychan_open_channels gauge\npaychan_open_channels 2\n');
    expect(text).toContain('# TYPE paychan_connections gauge\npaychan_connections 3\n');
    expect(text).toContain('paychan_messages_rejected_total{code="RATE_LIMITED"} 1\n');
    expect(text).toContain('# TYPE paychan_payment_latency_seconds histogram\n');
    expect(text).toContain('paychan_payment_latency_seconds_bucket{le="0.00025"} 0\npaychan_payment_latency_seconds_bucket{le="0.0005"} 1\n');
    expect(text).toContain('paychan_payment_latency_seconds_count 1\n');
    // Every line is a comment or `name{labels} value`; the body ends with a newline.
    for (const line of text.trimEnd().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) \S+ .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/);
    expect(text.endsWith('\n')).toBe(true);
  });
});
