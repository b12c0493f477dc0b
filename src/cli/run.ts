/** Runs the CLI from TypeScript sources (development and tests); bin/switchyard.js runs dist/. */
import { main } from './main.js';

await main(process.argv);
