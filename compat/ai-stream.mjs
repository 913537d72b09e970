#!/usr/bin/env node
// Streams chat turns from an agentbase (or Chatbase) server and reads every response
// body with the Vercel AI SDK's own parser, the one `useChat` clients run:
//   parseJsonEventStream({ stream, schema: uiMessageChunkSchema }) -> readUIMessageStream
//
// Usage: node compat/ai-stream.mjs BASE_URL API_KEY AGENT_ID [--record FILE]
//   BASE_URL  the v2 base, e.g. http://127.0.0.1:8080/api/v2
//   --record  appends every response seen (status, headers, raw body) as JSON lines,
//             for the OpenAPI check and for comparing against a raw SSE parse.
//
// Each body goes through two releases of the `ai` package:
//   ai        (5.0.277, the newest 5.x): its chunk schema accepts unknown keys;
//   ai-strict (5.0.216): the last 5.x whose chunk schema is strict (any unknown key
//             fails) and that already knows `finish.finishReason`.
// Both must accept every chunk and assemble the same message.
//
// Prints one JSON document: { parsers, cases: [{ name, status, headers, parsers:
// { <parser>: summary }, failures }], failures }. Exits 1 when anything failed
// validation, 2 on a usage or network error.

import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as aiLatest from 'ai';
import * as aiStrict from 'ai-strict';

const require = createRequire(import.meta.url);
const PARSERS = [
  { name: `ai@${require('ai/package.json').version}`, sdk: aiLatest, strict: false },
  { name: `ai@${require('ai-strict/package.json').version} (strict chunks)`, sdk: aiStrict, strict: true },
];

function usage() {
  console.error('usage: node ai-stream.mjs BASE_URL API_KEY AGENT_ID [--record FILE]');
  process.exit(2);
}

const args = process.argv.slice(2);
let recordFile = null;
const positional = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--record') {
    recordFile = args[++i];
    if (!recordFile) usage();
  } else {
    positional.push(args[i]);
  }
}
if (positional.length !== 3 && positional.length !== 4) usage();
// The optional fourth argument: an agent with trained knowledge, whose answers
// carry source chunks.
const [baseUrl, apiKey, agentId, knowledgeAgentId] = positional;
const base = baseUrl.replace(/\/+$/, '');

function record(entry) {
  if (recordFile) appendFileSync(recordFile, JSON.stringify({ client: 'node-ai-sdk', ...entry }) + '\n');
}

function headersOf(response) {
  const out = {};
  for (const [k, v] of response.headers) out[k] = v;
  return out;
}

async function call(method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return response;
}

/** Collects a byte stream into one Uint8Array. */
async function collect(stream) {
  const chunks = [];
  let size = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    size += chunk.length;
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * Runs one response body through one release of the SDK, the way its chat transport
 * does, and summarises what a `useChat` client would end up with.
 */
async function parseWith(sdk, body) {
  const failures = [];
  const chunks = [];
  const parsed = sdk.parseJsonEventStream({ stream: body, schema: sdk.uiMessageChunkSchema });
  const validated = parsed.pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (!result.success) {
          failures.push({
            kind: 'chunk rejected by uiMessageChunkSchema',
            chunk: result.rawValue ?? null,
            error: String(result.error?.message ?? result.error).slice(0, 2000),
          });
          return;
        }
        chunks.push(result.value);
        controller.enqueue(result.value);
      },
    }),
  );
  const processingErrors = [];
  let message = null;
  for await (const snapshot of sdk.readUIMessageStream({
    stream: validated,
    onError: (error) => processingErrors.push(String(error?.message ?? error)),
  })) {
    message = snapshot;
  }
  const errorChunks = chunks.filter((c) => c.type === 'error').map((c) => c.errorText);
  // An `error` chunk reaches onError as Error(errorText): that is the server reporting
  // a failure, not the parser rejecting the stream. Anything else is a rejection.
  const expected = [...errorChunks];
  for (const e of processingErrors) {
    const i = expected.indexOf(e);
    if (i >= 0) expected.splice(i, 1);
    else failures.push({ kind: 'readUIMessageStream rejected the stream', error: e });
  }
  const finish = chunks.filter((c) => c.type === 'finish');
  const parts = message?.parts ?? [];
  const summary = {
    messageId: message?.id ?? null,
    text: parts
      .filter((p) => p.type === 'text')
      .map((p) => p.text)
      .join(''),
    textParts: parts.filter((p) => p.type === 'text').length,
    toolCalls: parts
      .filter((p) => p.type.startsWith('tool-') || p.type === 'dynamic-tool')
      .map((p) => ({
        toolCallId: p.toolCallId,
        toolName: p.type === 'dynamic-tool' ? p.toolName : p.type.slice('tool-'.length),
        input: p.input,
        state: p.state,
      })),
    metadata: message?.metadata ?? null,
    finishReason: finish.length ? (finish[finish.length - 1].finishReason ?? null) : null,
    errors: errorChunks,
    chunkTypes: chunks.map((c) => c.type),
  };
  return { summary, failures };
}

async function streamCase(name, path, body) {
  const response = await call('POST', path, body);
  const headers = headersOf(response);
  const failures = [];
  if (!response.ok || !response.body) {
    const text = await response.text();
    record({ case: name, method: 'POST', url: `${base}${path}`, requestBody: body, status: response.status, headers, body: text });
    failures.push({ kind: 'HTTP error before the stream', status: response.status, body: text.slice(0, 2000) });
    return { name, status: response.status, headers, parsers: {}, failures };
  }
  if (!(headers['content-type'] ?? '').startsWith('text/event-stream')) {
    failures.push({ kind: 'not an event stream', contentType: headers['content-type'] ?? null });
  }
  if (headers['x-vercel-ai-ui-message-stream'] !== 'v1') {
    failures.push({
      kind: 'missing x-vercel-ai-ui-message-stream: v1',
      value: headers['x-vercel-ai-ui-message-stream'] ?? null,
    });
  }
  // One branch per parser plus one for the raw bytes, all from the same response.
  const branches = [];
  let rest = response.body;
  for (let i = 0; i < PARSERS.length; i++) {
    const [a, b] = rest.tee();
    branches.push(a);
    rest = b;
  }
  const [raw, ...results] = await Promise.all([
    collect(rest),
    ...PARSERS.map((p, i) => parseWith(p.sdk, branches[i])),
  ]);
  const rawText = new TextDecoder().decode(raw);
  record({ case: name, method: 'POST', url: `${base}${path}`, requestBody: body, status: response.status, headers, body: rawText });
  const parsers = {};
  PARSERS.forEach((p, i) => {
    parsers[p.name] = results[i].summary;
    for (const f of results[i].failures) failures.push({ parser: p.name, ...f });
  });
  const [first, ...others] = PARSERS.map((p) => JSON.stringify(parsers[p.name]));
  if (others.some((o) => o !== first)) {
    failures.push({ kind: 'the two ai releases assembled different messages' });
  }
  return { name, status: response.status, headers, parsers, failures };
}

async function jsonCall(name, method, path, body) {
  const response = await call(method, path, body);
  const text = await response.text();
  record({ case: name, method, url: `${base}${path}`, requestBody: body, status: response.status, headers: headersOf(response), body: text });
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // left null: reported below
  }
  return { status: response.status, json, text };
}

/**
 * Proves the parsers can fail here: a chunk of the wrong type must be rejected by
 * both releases, a chunk with an unknown key by the strict one.
 */
async function selfCheck() {
  const probes = [
    { frame: '{"type":"text-delta","id":"t1","delta":5}', strictOnly: false },
    { frame: '{"type":"text-delta","id":"t1","delta":"x","unknownKey":true}', strictOnly: true },
  ];
  const results = [];
  for (const probe of probes) {
    for (const parser of PARSERS) {
      const text = `data: {"type":"start"}\n\ndata: {"type":"text-start","id":"t1"}\n\ndata: ${probe.frame}\n\ndata: [DONE]\n\n`;
      const stream = new Blob([text]).stream();
      const { failures } = await parseWith(parser.sdk, stream);
      const rejected = failures.some((f) => f.kind === 'chunk rejected by uiMessageChunkSchema');
      const expected = !probe.strictOnly || parser.strict;
      results.push({ parser: parser.name, frame: probe.frame, rejected, ok: rejected === expected });
    }
  }
  return results;
}

const chatPath = `/agents/${encodeURIComponent(agentId)}/chat`;
const summaryOf = (result) => result.parsers[PARSERS[0].name] ?? null;

async function main() {
  const cases = [];
  const failures = (c) => c.failures.length;

  // 1. Plain text, with `stream` left out: it defaults to true.
  const text = await streamCase('text', chatPath, {
    message: 'Hello from the AI SDK',
    userId: 'compat-node',
  });
  cases.push(text);
  const textMeta = summaryOf(text)?.metadata ?? {};

  // 2. Text, then two client-action tool calls in one turn.
  const tools = await streamCase('tool-calls', chatPath, {
    message:
      '[[reply:Let me look that up.]] [[tool:lookupOrder {"orderId":"ORD-123","lines":[1,2]}]] ' +
      '[[tool:getWeather {"city":"Zürich"}]]',
    stream: true,
  });
  cases.push(tools);

  // 3. The official SDKs' loop: a result per tool call, then chat without a message.
  const toolMeta = summaryOf(tools)?.metadata ?? {};
  const toolCalls = summaryOf(tools)?.toolCalls ?? [];
  if (toolMeta.conversationId && toolCalls.length) {
    for (const tc of toolCalls) {
      const r = await jsonCall(
        'tool-result',
        'POST',
        `/agents/${encodeURIComponent(agentId)}/conversations/${encodeURIComponent(toolMeta.conversationId)}/tool-result`,
        { toolCallId: tc.toolCallId, output: { ok: true, tool: tc.toolName } },
      );
      if (r.status !== 200 || r.json?.data?.success !== true) {
        tools.failures.push({ kind: 'tool-result not accepted', status: r.status, body: r.text.slice(0, 2000) });
      }
    }
    cases.push(
      await streamCase('continuation', chatPath, { conversationId: toolMeta.conversationId, stream: true }),
    );
  } else {
    tools.failures.push({ kind: 'no conversationId or tool calls to continue from' });
  }

  // 4. Retry of the first answer, streamed.
  if (textMeta.conversationId && textMeta.messageId) {
    cases.push(
      await streamCase(
        'retry',
        `/agents/${encodeURIComponent(agentId)}/conversations/${encodeURIComponent(textMeta.conversationId)}/retry`,
        { messageId: textMeta.messageId, stream: true },
      ),
    );
  } else {
    text.failures.push({ kind: 'no conversationId/messageId in the metadata to retry' });
  }

  // 5. A model failure after two deltas: an `error` chunk, then a clean end.
  cases.push(
    await streamCase('failure', chatPath, { message: '[[fail:2]] this answer breaks midway', stream: true }),
  );

  // 6. An agent answering from its knowledge: source chunks before the text.
  if (knowledgeAgentId) {
    cases.push(
      await streamCase('sources', `/agents/${encodeURIComponent(knowledgeAgentId)}/chat`, {
        message: 'How long do refunds take to reach my card?',
      }),
    );
  }

  const probes = await selfCheck();
  const total = cases.reduce((n, c) => n + failures(c), 0) + probes.filter((p) => !p.ok).length;
  process.stdout.write(
    JSON.stringify({ parsers: PARSERS.map((p) => p.name), selfCheck: probes, cases, failures: total }, null, 2) + '\n',
  );
  process.exit(total === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(`ai-stream: ${error?.stack ?? error}`);
  process.exit(2);
});
