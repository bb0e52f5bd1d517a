/**
 * The dashboard's HTTP face on the payee server:
 *
 *   GET /dashboard                 the page (HTML; public: it holds no secret and no data)
 *   GET /dashboard/dashboard.js    its script (and dashboard.css, favicon.svg)
 *   GET /v1/admin/dashboard        the snapshot as JSON, with `Authorization: Bearer <admin token>`
 *
 * Login: a browser cannot send a bearer header on navigation, and a token in a URL query lands
 * in access logs and the history, so the page itself asks for the token (or takes it from the
 * URL fragment `#token=…`, which never leaves the browser), keeps it in sessionStorage (gone
 * with the tab) and sends it as a header on each JSON call. No cookie, so no cross-site request
 * can act with the operator's rights.
 *
 * The page is served with a Content Security Policy that allows only this origin's script,
 * style and JSON (no inline script or style, no external resource, no framing), and the files
 * are read once at start from the package (src/app/dashboard/assets/, shipped under "src").
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { pathOf } from '../../transport/http-routes.js';
import { sendError, sendJson } from '../../transport/http-replies.js';
import type { DashboardSnapshot } from './dashboard-snapshot.js';

export const DASHBOARD_PATH = '/dashboard';
export const DASHBOARD_API_PATH = '/v1/admin/dashboard';

/** What these routes answer, for the payee's route list and its OpenAPI document (src/app/openapi.ts). */
export const DASHBOARD_ROUTES = [
  { method: 'GET', path: DASHBOARD_PATH },
  { method: 'GET', path: `${DASHBOARD_PATH}/dashboard.js` },
  { method: 'GET', path: `${DASHBOARD_PATH}/dashboard.css` },
  { method: 'GET', path: `${DASHBOARD_PATH}/favicon.svg` },
  { method: 'GET', path: DASHBOARD_API_PATH },
] as const;
/** Behind `paychan proxy`: the API without the page (see {@link dashboardRoutes}' `page`). */
export const DASHBOARD_API_ROUTES = [{ method: 'GET', path: DASHBOARD_API_PATH }] as const;

/**
 * The assets, found from this module's place: src/app/dashboard/ and dist/app/dashboard/ are
 * both three levels below the package root, and the files ship under src/ (package.json "files").
 */
export const ASSETS_DIR = fileURLToPath(new URL('../../../src/app/dashboard/assets/', import.meta.url));

/** Only this origin's files and JSON; nothing inline, nothing external, never in a frame. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
} as const;

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

function loadAssets(dir: string): ReadonlyMap<string, Asset> {
  const read = (file: string, type: string): Asset => ({ type, body: fs.readFileSync(`${dir}${file}`) });
  return new Map([
    [DASHBOARD_PATH, read('index.html', 'text/html; charset=utf-8')],
    [`${DASHBOARD_PATH}/dashboard.js`, read('dashboard.js', 'text/javascript; charset=utf-8')],
    [`${DASHBOARD_PATH}/dashboard.css`, read('dashboard.css', 'text/css; charset=utf-8')],
    [`${DASHBOARD_PATH}/favicon.svg`, read('favicon.svg', 'image/svg+xml')],
  ]);
}

/**
 * The routes; false for any other request. `authorized` checks the admin token.
 * @param page whether to serve the page and its files (not behind `paychan proxy`: the upstream's
 *   pages share the origin, so their scripts, or a service worker they register, could read the
 *   admin token the page keeps in sessionStorage, or catch its requests). The API is served
 *   either way: it takes the token only as a bearer header.
 * @throws Error at construction if the asset files are missing from the package.
 */
export function dashboardRoutes(snapshot: () => DashboardSnapshot, authorized: (req: IncomingMessage) => boolean, { page = true, assetsDir = ASSETS_DIR }: { page?: boolean; assetsDir?: string } = {}) {
  const assets = page ? loadAssets(assetsDir) : new Map<string, Asset>();
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    // startsWith first: every request the payee's own routes do not answer (each one `paychan
    // proxy` forwards) passes here, and pathOf allocates.
    const url = req.url;
    if (url === undefined || !(url.startsWith(DASHBOARD_PATH) || url.startsWith(DASHBOARD_API_PATH))) return false;
    const path = pathOf(req);
    const asset = assets.get(path);
    if (asset === undefined && path !== DASHBOARD_API_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 'METHOD_NOT_ALLOWED', undefined, { allow: 'GET, HEAD' });
    } else if (asset !== undefined) {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'content-length': asset.body.length });
      res.end(asset.body);
    } else if (!authorized(req)) {
      sendError(res, 'UNAUTHORIZED');
    } else {
      sendJson(res, 200, snapshot(), { 'x-content-type-options': 'nosniff' });
    }
    return true;
  };
}
