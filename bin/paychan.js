#!/usr/bin/env node
// Entry point of the `paychan` command: runs the compiled CLI (npm install builds dist/).
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
