// Reads an AsyncAPI document on stdin and validates it with the official parser.
// Prints every diagnostic as a JSON line; exits 1 if any is an error.
import { Parser } from '@asyncapi/parser';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const parser = new Parser();
const { document, diagnostics } = await parser.parse(Buffer.concat(chunks).toString('utf8'));
let errors = 0;
for (const d of diagnostics) {
  // Severity 0 is an error; 1-3 are warnings, information and hints.
  if (d.severity === 0) errors += 1;
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
if (!document || errors > 0) {
  console.error(`invalid AsyncAPI document: ${errors} error(s)`);
  process.exit(1);
}
console.log(JSON.stringify({ valid: true, channels: document.channels().length, operations: document.operations().length }));
