/**
 * The layer rules of eslint.config.js (docs/design.md "Layers") catch what they forbid: ESLint's
 * own Node API lints small in-memory sources as if they were files of a folder.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const eslint = new ESLint({ cwd: root });

/** The messages of the layer rule for `source` as the file `file` (relative to the repo). */
async function layerErrors(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: path.join(root, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => m.message);
}

describe('layer rules', () => {
  it('refuses transport importing the payee, and says the rule', async () => {
    const errors = await layerErrors('src/transport/violation.ts', "import { PayeeService } from '../payee/payee-service.js';\nexport const s = PayeeService;\n");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/layer rule \(docs\/design\.md "Layers"\): src\/transport must not import src\/payee; src\/transport may import only src\/protocol/);
  });

  it('refuses the drivers importing app or cli, also from a subfolder', async () => {
    expect(await layerErrors('src/payee/violation.ts', "import { startPayeeApp } from '../app/payee-app.js';\nexport const s = startPayeeApp;\n")).toHaveLength(1);
    expect(await layerErrors('src/duplex/violation.ts', "import { main } from '../cli/main.js';\nexport const s = main;\n")).toHaveLength(1);
    expect(await layerErrors('src/chain/regtest/violation.ts', "import { Wallet } from '../../wallet/wallet.js';\nexport const s = Wallet;\n")).toEqual([expect.stringMatching(/src\/chain must not import src\/wallet/)]);
  });

  it('keeps the protocol pure: crypto types only, no Node module', async () => {
    const errors = await layerErrors(
      'src/protocol/violation.ts',
      "import type { Secp256k1 } from '../crypto/secp256k1.js';\nimport { secp256k1 } from '../crypto/index.js';\nimport fs from 'node:fs';\nexport const s: [Secp256k1, unknown] = [secp256k1(), fs];\n",
    );
    expect(errors).toEqual([expect.stringMatching(/src\/protocol may import only the types of src\/crypto/), expect.stringMatching(/src\/protocol is pure/)]);
  });

  it('lets each layer import what it may', async () => {
    expect(await layerErrors('src/transport/ok.ts', "import { decodeMessage } from '../protocol/messages.js';\nimport { BroadcastRejectedError } from '../chain/backend.js';\nexport const s = [decodeMessage, BroadcastRejectedError];\n")).toEqual([]);
    expect(await layerErrors('src/cli/ok.ts', "import { startPayeeApp } from '../app/payee-app.js';\nexport const s = startPayeeApp;\n")).toEqual([]);
  });
});
