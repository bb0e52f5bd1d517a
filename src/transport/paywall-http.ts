/**
 * The {@link Paywall} as middleware: for Node's `http` (Connect/Express-style `(req, res, next)`)
 * and for Hono. Both answer `402 Payment Required` with a JSON {@link PaymentRequiredBody}, and
 * on success set `Paychan-Ack: <channelId> <total>` (the payee stored the payment) and
 * `Paychan-Credit: <sat>` before the route runs.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendFailure } from './http-replies.js';
import { ACK_HEADER, CREDIT_HEADER, PAYMENT_HEADER, type Paywall } from './paywall.js';

export interface RoutePrice<Req> {
  /** Price of the request before it runs (satoshis). */
  readonly priceSat: (req: Req) => bigint;
  /**
   * For metered routes: the final price once the response is done (e.g. per byte sent). The
   * difference to `priceSat` is credited or owed on the channel (see Paywall.settle).
   */
  readonly meterSat?: (req: Req, res: ServerResponse) => bigint;
}

/**
 * Node `http` middleware: `paywallMiddleware(paywall, { priceSat: () => 10n })(req, res, next)`.
 * @param log where an unexpected failure's detail goes (the client gets a fixed 500 message).
 */
export function paywallMiddleware(paywall: Paywall, price: RoutePrice<IncomingMessage>, log?: (line: string) => void) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const header = req.headers[PAYMENT_HEADER];
    const priceSat = price.priceSat(req);
    void paywall.admit(Array.isArray(header) ? header[0] : header, priceSat).then(
      (admission) => {
        if (!admission.ok) {
          res.writeHead(402, { 'content-type': 'application/json' }).end(JSON.stringify(admission.body));
          return;
        }
        res.setHeader(ACK_HEADER, `${admission.channelId} ${admission.totalSat}`);
        res.setHeader(CREDIT_HEADER, admission.creditSat.toString());
        if (price.meterSat) {
          const meter = price.meterSat;
          // 'close' fires for finished and for aborted responses alike: charge what was sent.
          res.once('close', () => paywall.settle(admission.channelId, priceSat, meter(req, res)));
        }
        next();
      },
      // The routes' one failure mapping (http-replies.ts): 500 INTERNAL_ERROR, as JSON.
      (err: unknown) => sendFailure(res, err, log),
    );
  };
}

/**
 * The part of Hono's `Context` the paywall uses. Written here rather than imported from `hono`
 * so that paychan's types do not need Hono installed: Hono is an optional peer, and an Express
 * seller should not need it to type-check. Hono's `Context` is assignable to it.
 */
export interface HonoContextLike {
  readonly req: { header(name: string): string | undefined };
  header(name: string, value: string): void;
}

/** A Hono middleware (`app.use(path, it)`); structurally Hono's `MiddlewareHandler`. */
export type HonoPaywallMiddleware = (c: HonoContextLike, next: () => Promise<void>) => Promise<Response | undefined>;

/** Hono middleware: `app.use('/api/*', paywallHono(paywall, { priceSat: () => 10n }))` (fixed prices; metering is Node-only for now). */
export function paywallHono(paywall: Paywall, price: { priceSat: (c: HonoContextLike) => bigint }): HonoPaywallMiddleware {
  return async (c, next) => {
    const priceSat = price.priceSat(c);
    const admission = await paywall.admit(c.req.header(PAYMENT_HEADER), priceSat);
    if (!admission.ok) return new Response(JSON.stringify(admission.body), { status: 402, headers: { 'content-type': 'application/json' } });
    c.header(ACK_HEADER, `${admission.channelId} ${admission.totalSat}`);
    c.header(CREDIT_HEADER, admission.creditSat.toString());
    await next();
    return undefined;
  };
}
