// The machine-readable contract (schemas/): the AsyncAPI document parses,
// every JSON Schema compiles strictly and is strict where the contract is,
// every shipped configuration file validates, and (with
// BRICKWORK_CONTRACT_CAPTURE naming the file the integration tests wrote)
// every message those tests saw on the four topics agrees with the schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';
import { Parser, fromFile } from '@asyncapi/parser';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const schemaDir = path.join(root, 'schemas');
const schemaFiles = ['command', 'completion-event', 'status-event', 'dead-letter', 'config', 'workflows']
  .map((name) => `${name}.schema.json`);

function loadSchemas() {
  const ajv = new Ajv2020({ strict: true, strictRequired: false, strictTypes: false, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  const schemas = {};
  for (const file of schemaFiles) {
    schemas[file] = JSON.parse(fs.readFileSync(path.join(schemaDir, file), 'utf8'));
    ajv.addSchema(schemas[file]);
  }
  const validate = Object.fromEntries(schemaFiles.map((f) => [f, ajv.getSchema(f)]));
  return { schemas, validate };
}
const { schemas, validate } = loadSchemas();

function errorsOf(file, value) {
  return validate[file](value) ? null : validate[file].errors;
}
function assertValid(file, value, what) {
  const errors = errorsOf(file, value);
  assert.equal(errors, null, `${what} does not validate against ${file}: ${JSON.stringify(errors, null, 1)}`);
}
function assertInvalid(file, value, what) {
  assert.equal(validate[file](value), false, `${what} should not validate against ${file}`);
}

test('the AsyncAPI document parses without errors and uses the JSON Schemas', async () => {
  const parser = new Parser();
  const { document, diagnostics } = await fromFile(parser, path.join(schemaDir, 'asyncapi.yaml')).parse();
  const errors = diagnostics.filter((d) => d.severity === 0 || d.severity === 1);
  assert.deepEqual(errors.map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`), []);
  assert.ok(document, 'no document');
  const json = document.json();
  assert.equal(json.asyncapi.split('.')[0], '3');
  const addresses = Object.values(json.channels).map((c) => c.address).sort();
  assert.deepEqual(addresses, ['brickwork.commands', 'brickwork.dlq', 'brickwork.events', 'brickwork.status']);
  const payloadTitle = (m) => json.components.messages[m].payload.schema.title;
  assert.equal(payloadTitle('command'), schemas['command.schema.json'].title);
  assert.equal(payloadTitle('completionEvent'), schemas['completion-event.schema.json'].title);
  assert.equal(payloadTitle('statusEvent'), schemas['status-event.schema.json'].title);
  assert.equal(payloadTitle('deadLetter'), schemas['dead-letter.schema.json'].title);
});

test("every schema's examples validate", () => {
  for (const file of schemaFiles) {
    for (const example of schemas[file].examples ?? []) assertValid(file, example, `an example of ${file}`);
  }
});

// Strict where the contract is: what brickwork refuses or never writes fails.
test('the message schemas refuse what brickwork refuses or never writes', () => {
  const start = { type: 'start', id: 'order-1', workflow: 'daily' };
  assertValid('command.schema.json', { ...start, mine: 'producers may add fields' }, 'a start with an extra field');
  assertInvalid('command.schema.json', { ...start, type: 'stop' }, 'an unknown type');
  assertInvalid('command.schema.json', { ...start, id: 'has space' }, 'a bad id');
  assertInvalid('command.schema.json', { type: 'start', id: 'order-1' }, 'a start without workflow');
  assertInvalid('command.schema.json', { ...start, input: [1] }, 'a start whose input is a list');
  assertInvalid('command.schema.json', { type: 'signal', id: 'order-1' }, 'a signal without name');
  assertInvalid('command.schema.json', { type: 'cancel', id: 'order-1', reason: 7 }, 'a numeric reason');
  const done = { type: 'job_completed', workflow_id: 'w', step: 's', token: 't', state: 'SUCCESS' };
  assertValid('completion-event.schema.json', done, 'a completion event');
  assertInvalid('completion-event.schema.json', { ...done, state: 'DONE' }, 'an unknown state');
  assertInvalid('completion-event.schema.json', { ...done, run_id: '12' }, 'a run_id as text');
  assertInvalid('completion-event.schema.json', { ...done, token: undefined }, 'no token');
  const event = { v: 1, type: 'workflow_started', workflow_id: 'w', workflow: 'x', seq: 1, at: '2026-11-22T10:15:03.120Z', state: 'running' };
  assertValid('status-event.schema.json', event, 'a status event');
  assertInvalid('status-event.schema.json', { ...event, surprise: 1 }, 'a status event with a field brickwork never writes');
  assertInvalid('status-event.schema.json', { ...event, v: 2 }, 'another version');
  assertInvalid('status-event.schema.json', { ...event, type: 'step_started' }, 'a step event without step');
  assertInvalid('status-event.schema.json', { ...event, type: 'command_rejected', reason: 'because', error: { code: 'x', message: '' } }, 'an unknown rejection reason');
  assertInvalid('status-event.schema.json', { ...event, at: '2026-11-22 10:15:03' }, 'a time that is not RFC 3339 UTC');
  const dead = { reason: 'invalid_json', message: 'm', source: { topic: 't', partition: 0, offset: 1 }, key: null, payload: 'x', at: '2026-11-22T10:15:03.120Z' };
  assertValid('dead-letter.schema.json', dead, 'a dead letter');
  assertInvalid('dead-letter.schema.json', { ...dead, payload_base64: 'eA==' }, 'payload and payload_base64 both');
  assertInvalid('dead-letter.schema.json', { ...dead, reason: 'oops' }, 'an unknown reason');
  assertInvalid('dead-letter.schema.json', { ...dead, source: { topic: 't' } }, 'a source without a position');
});

function readYaml(file) {
  const text = fs.readFileSync(file, 'utf8');
  return { text, value: YAML.parse(text) };
}
function yamlFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(dir, f));
}
function shippedConfigs() {
  const files = [];
  for (const dir of ['config/examples', 'docker']) {
    for (const file of yamlFiles(path.join(root, dir))) {
      const { value } = readYaml(file);
      // docker/ also holds compose files: a configuration has callbacks.
      if (value && typeof value === 'object' && 'callbacks' in value) files.push({ file, kind: 'config.schema.json' });
    }
    for (const file of yamlFiles(path.join(root, dir, 'workflows.d'))) files.push({ file, kind: 'workflows.schema.json' });
  }
  return files;
}

test('every shipped configuration and workflows file validates', () => {
  const files = shippedConfigs();
  assert.ok(files.some((f) => f.file.endsWith('config/examples/brickwork.yaml')), 'the example is missing');
  assert.ok(files.filter((f) => f.kind === 'workflows.schema.json').length >= 3, 'the workflows.d examples are missing');
  for (const { file, kind } of files) assertValid(kind, readYaml(file).value, path.relative(root, file));
});

test('the examples name their schema for editors (yaml-language-server)', () => {
  for (const { file, kind } of shippedConfigs().filter((f) => f.file.includes('config/examples'))) {
    const first = fs.readFileSync(file, 'utf8').split('\n')[0];
    const match = first.match(/^# yaml-language-server: \$schema=(\S+)$/);
    assert.ok(match, `${path.relative(root, file)}: no yaml-language-server line first`);
    const target = path.resolve(path.dirname(file), match[1]);
    assert.equal(path.relative(root, target), path.join('schemas', kind), path.relative(root, file));
  }
});

test('the config schema refuses what brickwork check refuses', () => {
  const base = readYaml(path.join(root, 'config/examples/brickwork.yaml')).value;
  const variant = (change) => { const copy = structuredClone(base); change(copy); return copy; };
  const step = (s) => variant((c) => { c.workflows.daily_ingest.steps[0] = { name: 'x', ...s }; });
  assertInvalid('config.schema.json', variant((c) => { c.kafkaa = {}; }), 'an unknown top-level key');
  assertInvalid('config.schema.json', variant((c) => { delete c.callbacks; }), 'no callbacks');
  assertInvalid('config.schema.json', variant((c) => { c.callbacks.secret = 'short'; }), 'a short secret');
  assertInvalid('config.schema.json', variant((c) => { c.daemon.lease = 'soon'; }), 'a bad duration');
  assertInvalid('config.schema.json', variant((c) => { c.daemon.log_format = 'xml'; }), 'an unknown log format');
  assertInvalid('config.schema.json', variant((c) => { c.daemon.batch_max_messages = 0; }), 'batch_max_messages 0');
  assertInvalid('config.schema.json', step({ sleep: { for: '1s' }, retries: 3 }), 'an unknown step key');
  assertInvalid('config.schema.json', step({}), 'a step without action');
  assertInvalid('config.schema.json', step({ sleep: { for: '1s' }, emit: { topic: 't', value: {} } }), 'two actions');
  assertInvalid('config.schema.json', step({ sleep: { until: '2026-12-01T08:00:00' } }), 'sleep.until without an offset');
  assertValid('config.schema.json', step({ sleep: { until: '2026-12-01T10:00:00.5+02:00' } }), 'sleep.until with an offset');
  assertInvalid('config.schema.json', step({ sql: { warehouse_id: 'w', statement: 'select {{ input.x }}' } }), 'a templated statement');
  assertInvalid('config.schema.json', step({ upload: { path: '/Volumes/a/b/c/f', content: 'x', mode: 1 } }), 'an unknown upload key');
  assertValid('config.schema.json', step({ run_job: { job_id: 1, queue: { enabled: true } } }), 'run_job passing an API key through');
  assertInvalid('config.schema.json', step({ run_job: { job_id: 1, job_name: 'n' } }), 'run_job with job_id and job_name');
  const workspaces = (w) => variant((c) => { c.workspaces = w; });
  assertValid('config.schema.json', workspaces({ eu: { host: 'https://adb-2.azuredatabricks.net', auth_type: 'oauth-m2m', client_id: 'i', client_secret: 's', max_in_flight: 8 } }), 'a named workspace');
  assertInvalid('config.schema.json', workspaces({ eu: { host: 'https://a.b', hots: 'x' } }), 'an unknown workspace key');
  assertInvalid('config.schema.json', workspaces({ 'eu west': { host: 'https://a.b' } }), 'a workspace name with a space');
  assertValid('config.schema.json', step({ workspace: 'eu', run_job: { job_id: 1 } }), 'a step naming its workspace');
  assertInvalid('config.schema.json', step({ workspace: 'eu west', run_job: { job_id: 1 } }), 'a malformed workspace name on a step');
});

// What the integration tests saw (tests/integration/harness.hpp writes it).
const capturePath = process.env.BRICKWORK_CONTRACT_CAPTURE;
const schemaFor = { commands: 'command.schema.json', events: 'completion-event.schema.json',
                    status: 'status-event.schema.json', dead_letter: 'dead-letter.schema.json' };
// Dead-letter reasons a schema can tell: an input refused for one of them must not validate.
const schemaReasons = new Set(['invalid_json', 'not_object', 'missing_field', 'invalid_field', 'unknown_type']);

function ajvText(errors) {
  return (errors ?? []).slice(0, 4).map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`).join('; ');
}

function parsePayload(line) {
  if (line.payload === undefined) return { ok: false };
  try { return { ok: true, value: JSON.parse(line.payload) }; } catch { return { ok: false }; }
}

test('every message the integration tests saw agrees with the schemas', { skip: !capturePath && 'BRICKWORK_CONTRACT_CAPTURE is not set' }, () => {
  const lines = fs.readFileSync(capturePath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const problems = [];
  const check = (ok, problem) => { if (!ok) problems.push(problem()); };
  const errorsText = (file) => ajvText(validate[file].errors);
  const where = (line) => `${line.test}: ${line.topic}@${line.partition}/${line.offset}`;
  const counts = {};
  const seen = new Set();
  for (const line of lines) {
    if (line.role === 'config') {
      const config = YAML.parse(line.yaml);
      check(validate['config.schema.json'](config), () => `${line.test}: its configuration: ${errorsText('config.schema.json')}`);
      counts.config = (counts.config ?? 0) + 1;
      continue;
    }
    // A test may read a topic more than once: each message counts once.
    const id = `${line.test}|${line.topic}|${line.partition}|${line.offset}`;
    if (seen.has(id)) continue;
    seen.add(id);
    counts[line.role] = (counts[line.role] ?? 0) + 1;
    if (line.role !== 'status' && line.role !== 'dead_letter') continue;
    const traceparent = line.headers?.traceparent;
    check(traceparent === undefined || /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(traceparent),
      () => `${where(line)}: brickwork wrote the traceparent ${traceparent}`);
    const parsed = parsePayload(line);
    check(parsed.ok, () => `${where(line)}: brickwork published text that is not JSON`);
    if (parsed.ok) {
      check(validate[schemaFor[line.role]](parsed.value),
        () => `${where(line)}: ${errorsText(schemaFor[line.role])}: ${line.payload.slice(0, 300)}`);
    }
  }
  // Inputs: valid, or refused with a dead letter; refused for a reason the
  // schema can tell, then the schema refuses it too.
  const deadLetters = new Map();
  const lastDeadLetter = new Map();  // test|topic|partition -> the highest offset with a dead letter
  for (const line of lines.filter((l) => l.role === 'dead_letter')) {
    const parsed = parsePayload(line);
    if (!parsed.ok || parsed.value?.source?.partition === undefined) continue;
    const record = parsed.value;
    const partition = `${line.test}|${record.source.topic}|${record.source.partition}`;
    deadLetters.set(`${partition}|${record.source.offset}`, record.reason);
    lastDeadLetter.set(partition, Math.max(lastDeadLetter.get(partition) ?? -1, record.source.offset));
  }
  let unconsumed = 0;
  const inputsSeen = new Set();
  for (const line of lines.filter((l) => l.role === 'commands' || l.role === 'events')) {
    const id = `${line.test}|${line.topic}|${line.partition}|${line.offset}`;
    if (inputsSeen.has(id)) continue;
    inputsSeen.add(id);
    const schema = schemaFor[line.role];
    const parsed = parsePayload(line);
    const valid = parsed.ok && validate[schema](parsed.value);
    const reason = deadLetters.get(id);
    if (!valid && reason === undefined &&
        !(lastDeadLetter.get(`${line.test}|${line.topic}|${line.partition}`) > line.offset)) {
      ++unconsumed;  // nothing shows the daemon read it before the test ended
      continue;
    }
    if (!valid) {
      check(reason !== undefined, () => `${where(line)} does not validate (${parsed.ok ? errorsText(schema) : 'not JSON'}) but has no dead letter: ${(line.payload ?? '').slice(0, 200)}`);
    } else {
      check(!schemaReasons.has(reason), () => `${where(line)} validates, but brickwork refused it as ${reason}: ${line.payload.slice(0, 200)}`);
    }
  }
  for (const role of ['commands', 'events', 'status', 'dead_letter', 'config']) {
    check((counts[role] ?? 0) > 0, () => `no ${role} captured in ${capturePath}`);
  }
  assert.deepEqual(problems.slice(0, 30), [], `${problems.length} problem(s), the first 30 shown`);
  console.log(`validated ${JSON.stringify(counts)}; ${unconsumed} invalid input(s) not yet consumed when their test ended`);
});

// README and binary agree (BRICKWORK_BINARY: the brickwork program).
const binary = process.env.BRICKWORK_BINARY;

function helpOf(...args) {
  return execFileSync(binary, [...args, '--help'], { encoding: 'utf8' });
}
function subcommandsOfHelp() {
  const text = helpOf();
  const at = text.search(/^SUBCOMMANDS:/im);
  assert.ok(at >= 0, `no SUBCOMMANDS in brickwork --help:\n${text}`);
  return text.slice(at).split('\n').slice(1).map((l) => l.match(/^ {2}(\S+)/)?.[1]).filter(Boolean);
}
function readmeCommandLine() {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Command line'));
  assert.ok(section, 'README.md has no "Command line" section');
  return section;
}

test("the README's command table lists the subcommands of brickwork --help", { skip: !binary && 'BRICKWORK_BINARY is not set' }, () => {
  const rows = readmeCommandLine().split('\n').filter((l) => l.startsWith('| `'));
  const inReadme = rows.flatMap((row) => [...row.split('|')[1].matchAll(/`([a-z-]+)/g)].map((m) => m[1]));
  assert.deepEqual([...new Set(inReadme)].sort(), subcommandsOfHelp().sort());
});

test('the README names exactly the subcommands that take -c', { skip: !binary && 'BRICKWORK_BINARY is not set' }, () => {
  const sentence = readmeCommandLine().split('\n\n').find((p) => p.includes('take `-c, --config FILE`'));
  assert.ok(sentence, 'README.md does not say which subcommands take -c');
  const claimed = [...sentence.split('take `-c')[0].matchAll(/`([a-z-]+)`/g)].map((m) => m[1]).sort();
  const actual = subcommandsOfHelp().filter((sub) => /-c,--config/.test(helpOf(sub))).sort();
  assert.deepEqual(claimed, actual);
});
