// `npm run build`'s second step: bundles the payee's demo page script (src/web/demo-page.ts) for
// browsers into dist/web/demo-page.bundle.js, which `paychan payee serve` serves at /demo/demo-page.js.
// esbuild is a build-time tool (a dev dependency): the published package ships the bundle.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/web/demo-page.ts'],
  outfile: 'dist/web/demo-page.bundle.js',
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  logLevel: 'warning',
});
