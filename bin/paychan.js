#!/usr/bin/env node
// Entry point of the `paychan` command: runs the compiled CLI (npm install builds dist/).
// Exits explicitly: a command is done when main() returns, even if a socket's reconnect timer
// or a keep-alive agent would keep the event loop alive.
import { main } from '../dist/cli/main.js';

process.exit(await main(process.argv.slice(2)));
