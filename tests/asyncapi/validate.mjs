// Validates an AsyncAPI document with the official parser: the JSON file named by the first
// argument (`node validate.mjs asyncapi.json`), or standard input without one.
// Prints every diagnostic as a JSON line; exits 1 if the text is not one JSON document (the
// parser alone would also take YAML) or if any diagnostic is an error.
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

async function input() {
  if (process.argv[2]) return readFile(process.argv[2], 'utf8');
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const text = await input();
try {
  JSON.parse(text);
} catch (err) {
  console.error(`not a JSON document: ${err.message}; it starts with ${JSON.stringify(text.slice(0, 80))}`);
  process.exit(1);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
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
