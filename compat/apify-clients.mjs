// Drives agentbase with Apify's official JavaScript client (npm `apify-client`,
// pinned in package.json), unchanged: only the base URL and the token are set.
//
//   node compat/apify-clients.mjs BASE_URL TOKEN
//
// The same crawl as apify_clients.py: a loopback site crawled with actor().call()
// (the run's log streamed, as call() does by default), the dataset paged with
// listItems({offset, limit, clean, fields, desc}) and iterated with `for await`,
// downloadItems('xlsx') (a zip, read with node:zlib, whose sheet holds the URLs) and
// downloadItems('xml', {xmlRoot, xmlRow}) (well-formed, the URLs in its rows),
// run().get(), the log, the default key-value store's INPUT and OUTPUT records, a
// slow second run started, aborted and waited for, the run lists, lastRun() with its
// storages, call() with maxItems and an ad-hoc webhook, a persistent webhook (create
// twice with one idempotency key, its run's dispatch, test, update, delete), and a
// run's dataset and key-value store deleted alone. Prints a JSON report; exits 1 on
// any failed check.
import http from "node:http";
import { isDeepStrictEqual } from "node:util";
import zlib from "node:zlib";
import { ApifyClient } from "apify-client";

const [baseUrl, token] = process.argv.slice(2);
const PAGES = 9;
const passed = [];
const failed = [];
const expect = (ok, what, detail = {}) => {
  if (ok) passed.push(what);
  else failed.push({ check: what, ...detail });
  return ok;
};

const hooks = []; // the bodies the site's /hook was POSTed (a run webhook's receiver)

function serveSite() {
  const server = http.createServer((req, res) => {
    const path = req.url.split("?")[0];
    if (req.method === "POST") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        hooks.push(JSON.parse(body || "null"));
        res.writeHead(200);
        res.end();
      });
      return;
    }
    const send = (title, text, links) => {
      const body =
        `<html><head><title>${title}</title></head><body><nav>${links}</nav><main><h1>${title}</h1>` +
        `<p>${text} This paragraph is long enough to be the main content of the page.</p></main></body></html>`;
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(body);
    };
    if (path.startsWith("/slow/")) {
      const n = Number(path.split("/").pop()) || 0;
      const links = [1, 2, 3].map((k) => `<a href="/slow/${n * 3 + k}">more</a>`).join("");
      setTimeout(() => send(`Slow ${n}`, "A slow page.", links), 2000);
    } else if (path === "/site/" || path.startsWith("/site/page")) {
      const n = path === "/site/" ? 0 : Number(path.split("page").pop());
      const links = n === 0 ? Array.from({ length: PAGES - 1 }, (_, i) => `<a href="/site/page${i + 1}">Page ${i + 1}</a> `).join("") : "";
      send(`Page ${n}`, `Page number ${n} of the espresso guide.`, links);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve([server, `http://127.0.0.1:${server.address().port}`])));
}

// The entries of a zip file (stored or deflated), found through its central directory.
function unzip(buf) {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error("not a zip file");
  const entries = new Map();
  let at = buf.readUInt32LE(eocd + 16);
  for (let i = buf.readUInt16LE(eocd + 10); i > 0; i--) {
    if (buf.readUInt32LE(at) !== 0x02014b50) throw new Error("a broken central directory");
    const [method, size, nameLength] = [buf.readUInt16LE(at + 10), buf.readUInt32LE(at + 20), buf.readUInt16LE(at + 28)];
    const local = buf.readUInt32LE(at + 42);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + size);
    entries.set(buf.toString("utf8", at + 46, at + 46 + nameLength), method === 8 ? zlib.inflateRawSync(data) : data);
    at += 46 + nameLength + buf.readUInt16LE(at + 30) + buf.readUInt16LE(at + 32);
  }
  return entries;
}

const unescapeXml = (s) =>
  s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|quot|apos|amp);/gi, (_, e) =>
    e[0] === "#" ? String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : { lt: "<", gt: ">", quot: '"', apos: "'", amp: "&" }[e]);

// Whether `xml` is well-formed as far as a tag-balance walk tells (Node has no XML
// parser): every element closes in order, one root, no stray `<` or bare `&`.
function wellFormed(xml) {
  const body = xml.replace(/^\uFEFF?<\?xml[^?]*\?>\s*/, "");
  const stack = [];
  let roots = 0;
  const tag = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m; (m = tag.exec(body)); last = tag.lastIndex) {
    const text = body.slice(last, m.index);
    if (/[<]|&(?!(#x[0-9a-f]+|#\d+|lt|gt|quot|apos|amp);)/i.test(text)) return false;
    if (stack.length === 0 && text.trim() !== "") return false;
    const [, close, name, , selfClose] = m;
    if (close) {
      if (stack.pop() !== name) return false;
    } else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  return stack.length === 0 && roots === 1 && body.slice(last).trim() === "";
}

const report = {};
const [server, site] = await serveSite();
try {
  const client = new ApifyClient({ baseUrl, token, maxRetries: 1 });
  const me = await client.user().get();
  expect(typeof me?.username === "string" && me.username.length > 0, "user().get() answers for the token (how integrations check one)", { me });
  const input = { startUrls: [{ url: `${site}/site/` }], crawlerType: "cheerio", maxCrawlPages: 50, maxCrawlDepth: 2 };
  const run = await client.actor("apify/website-content-crawler").call(input);
  expect(run.status === "SUCCEEDED", "call() ends SUCCEEDED", { run });
  report.run = { id: run.id, status: run.status, datasetId: run.defaultDatasetId };
  const got = await client.run(run.id).get();
  expect(got?.id === run.id && got.startedAt instanceof Date && !!got.defaultKeyValueStoreId, "run().get() parses the run");

  const dataset = client.dataset(run.defaultDatasetId);
  const all = await dataset.listItems();
  expect(all.total === PAGES && all.items.length === PAGES, "listItems() has every page", { total: all.total, count: all.items.length });
  const urls = all.items.map((i) => i.url);
  const paged = [];
  for (let offset = 0; ; ) {
    const page = await dataset.listItems({ offset, limit: 4, clean: true, fields: ["url", "text"] });
    expect(page.offset === offset && page.limit === 4 && page.total === PAGES, `page at ${offset} reports offset, limit and total`, {
      page: { offset: page.offset, limit: page.limit, total: page.total, count: page.count },
    });
    paged.push(...page.items);
    offset += page.count;
    if (page.count === 0 || offset >= page.total) break;
  }
  expect(JSON.stringify(paged.map((i) => i.url)) === JSON.stringify(urls), "pages of 4 walk the dataset in order");
  expect(paged.every((i) => Object.keys(i).sort().join() === "text,url"), "fields keeps only url and text");
  const desc = await dataset.listItems({ limit: 2, desc: true });
  expect(desc.desc === true && JSON.stringify(desc.items.map((i) => i.url)) === JSON.stringify(urls.slice().reverse().slice(0, 2)), "desc returns the newest first");
  const xlsx = await dataset.downloadItems("xlsx", { fields: ["url", "metadata"] });
  const book = unzip(xlsx);
  const sheet = String(book.get("xl/worksheets/sheet1.xml") ?? "");
  const cells = [...sheet.matchAll(/<c r="([A-Z]+)(\d+)"[^>]*>(.*?)<\/c>/gs)].map(([, column, row, inner]) => ({
    column,
    row: Number(row),
    text: unescapeXml([...inner.matchAll(/<t[^>]*>(.*?)<\/t>/gs)].map((t) => t[1]).join("")),
  }));
  const urlColumn = cells.find((c) => c.row === 1 && c.text === "url")?.column;
  const sheetUrls = cells.filter((c) => c.row > 1 && c.column === urlColumn).map((c) => c.text);
  expect(book.has("xl/workbook.xml") && urlColumn !== undefined && isDeepStrictEqual(sheetUrls.sort(), urls.slice().sort()),
    "downloadItems('xlsx') is a zip whose sheet holds the URLs under a url column", { entries: [...book.keys()], sheet: sheet.slice(0, 500) });
  const xml = String(await dataset.downloadItems("xml", { xmlRoot: "pages", xmlRow: "page", fields: ["url"] }));
  const xmlUrls = [...xml.matchAll(/<page>\s*<url>(.*?)<\/url>\s*<\/page>/gs)].map((m) => unescapeXml(m[1]));
  expect(wellFormed(xml) && /^<\?xml[^>]*\?>\s*<pages>/.test(xml) && isDeepStrictEqual(xmlUrls.sort(), urls.slice().sort()),
    "downloadItems('xml', {xmlRoot, xmlRow}) is well-formed, its rows holding the URLs", { head: xml.slice(0, 500) });
  const iterated = [];
  for await (const item of dataset.listItems({ chunkSize: 3 })) iterated.push(item.url);
  expect(JSON.stringify(iterated) === JSON.stringify(urls), "for await over listItems() yields every item in chunks", { iterated });

  const log = await client.run(run.id).log().get();
  expect(typeof log === "string" && log.includes("Crawled") && log.includes("SUCCEEDED"), "the run's log tells the crawl", { log: String(log).slice(0, 500) });
  const store = client.run(run.id).keyValueStore();
  const record = await store.getRecord("INPUT");
  expect(isDeepStrictEqual(record?.value, input), "the INPUT record is the input", { record });
  expect((await store.getRecord("OUTPUT")) === undefined, "OUTPUT is absent, as for this actor on Apify");

  const slow = await client.actor("apify~website-content-crawler").start({ startUrls: [{ url: `${site}/slow/0` }], maxCrawlPages: 40, maxConcurrency: 1 });
  expect(["READY", "RUNNING"].includes(slow.status), "start() returns a running run", { status: slow.status });
  await new Promise((r) => setTimeout(r, 1500));
  const aborted = await client.run(slow.id).abort();
  expect(["ABORTING", "ABORTED"].includes(aborted.status), "abort() answers ABORTING or ABORTED", { status: aborted.status });
  const ended = await client.run(slow.id).waitForFinish();
  expect(ended.status === "ABORTED", "waitForFinish() ends ABORTED", { status: ended.status });
  expect((await client.run("no-such-run").get()) === undefined, "an unknown run is undefined");
  report.slow = { id: slow.id, status: ended.status };

  // The actor's runs, the account's runs, and the last run with its storages.
  const actor = client.actor("apify/website-content-crawler");
  // (The workspace may hold other clients' runs too: only this script's are compared.)
  const ours = (list) => list.items.map((r) => r.id).filter((id) => id === run.id || id === slow.id);
  const newestFirst = await actor.runs().list({ desc: true });
  expect(newestFirst.total >= 2 && isDeepStrictEqual(ours(newestFirst), [slow.id, run.id]), "actor.runs().list({desc}) lists both runs, newest first", {
    ids: newestFirst.items.map((r) => r.id),
  });
  expect(newestFirst.items.every((r) => r.startedAt instanceof Date), "run list items parse their dates");
  const succeeded = await client.runs().list({ status: "SUCCEEDED" });
  expect(isDeepStrictEqual(ours(succeeded), [run.id]) && succeeded.items.every((r) => r.status === "SUCCEEDED"), "runs().list({status}) keeps the crawl", {
    ids: succeeded.items.map((r) => r.id),
  });
  const lastAny = await actor.lastRun().get();
  expect(lastAny?.id === slow.id, "lastRun().get() is the newest run", { id: lastAny?.id });
  const last = actor.lastRun({ status: "SUCCEEDED" });
  expect((await last.get())?.id === run.id, "lastRun({status: SUCCEEDED}).get() is the crawl");
  const lastItems = await last.dataset().listItems();
  expect(lastItems.total === PAGES, "lastRun(…).dataset().listItems() reads its dataset", { total: lastItems.total });
  expect(isDeepStrictEqual((await last.keyValueStore().getRecord("INPUT"))?.value, input), "lastRun(…).keyValueStore().getRecord('INPUT') is its input");
  expect(String(await last.log().get()).includes("SUCCEEDED"), "lastRun(…).log().get() is its log");
  expect((await actor.lastRun({ status: "TIMED-OUT" }).get()) === undefined, "lastRun({status: TIMED-OUT}).get() is undefined: no such run");

  // maxItems bounds what a run writes; an ad-hoc webhook hears of its end.
  const hook = {
    eventTypes: ["ACTOR.RUN.SUCCEEDED"],
    requestUrl: `${site}/hook`,
    payloadTemplate: '{"run": {{resource.id}}, "items": {{resource.stats.itemCount}}}',
  };
  const bounded = await actor.call(input, { maxItems: 3, log: null, webhooks: [hook] });
  const boundedItems = await client.dataset(bounded.defaultDatasetId).listItems();
  expect(bounded.status === "SUCCEEDED" && boundedItems.total === 3, "call(input, {maxItems: 3}) writes 3 items", { status: bounded.status, total: boundedItems.total });
  for (let i = 0; i < 100 && hooks.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect(isDeepStrictEqual(hooks, [{ run: bounded.id, items: 3 }]), "call(input, {webhooks}): the webhook gets its payload", { hooks });

  // A persistent webhook for every run of the actor: a run's end reaches it, its
  // dispatches are listed, test() sends at once, update() and delete(); then a
  // run's dataset and key-value store deleted alone.
  const definition = {
    eventTypes: ["ACTOR.RUN.SUCCEEDED"],
    requestUrl: `${site}/hook`,
    payloadTemplate: '{"persistent": {{resource.id}}}',
    condition: { actorId: "apify~website-content-crawler" },
    idempotencyKey: "compat-persistent-js",
  };
  const webhook = await client.webhooks().create(definition);
  const again = await client.webhooks().create(definition);
  expect(again.id === webhook.id, "webhooks().create() twice with one idempotencyKey is one webhook");
  hooks.length = 0;
  const hooked = await actor.call(input, { maxItems: 1, log: null });
  const heard = () => hooks.some((h) => h?.persistent === hooked.id);
  for (let i = 0; i < 100 && !heard(); i++) await new Promise((r) => setTimeout(r, 100));
  expect(heard(), "a persistent webhook hears of the actor's run", { hooks });
  const dispatches = await client.webhook(webhook.id).dispatches().list();
  expect(dispatches.total === 1 && dispatches.items[0]?.status === "SUCCEEDED" && dispatches.items[0]?.eventData?.actorRunId === hooked.id,
    "webhook(…).dispatches().list() has the run's dispatch", { dispatches });
  const one = dispatches.items[0] && (await client.webhookDispatch(dispatches.items[0].id).get());
  expect(one?.webhookId === webhook.id, "webhookDispatch(…).get() reads it");
  const listed = (await client.webhooks().list()).items.map((w) => w.id);
  const ofActor = (await actor.webhooks().list()).items.map((w) => w.id);
  expect(listed.includes(webhook.id) && ofActor.includes(webhook.id), "webhooks().list() and actor.webhooks().list()", { listed, ofActor });
  const tested = await client.webhook(webhook.id).test();
  expect(tested?.status === "SUCCEEDED" && tested?.eventType === "TEST", "webhook(…).test() sends at once", { tested });
  const updated = await client.webhook(webhook.id).update({ description: "changed" });
  expect(updated.description === "changed" && updated.condition?.actorId === "apify~website-content-crawler", "webhook(…).update() changes what it is given");
  await client.webhook(webhook.id).delete();
  expect((await client.webhook(webhook.id).get()) === undefined, "webhook(…).delete(): get() is undefined");
  await client.dataset(hooked.defaultDatasetId).delete();
  await client.keyValueStore(hooked.defaultKeyValueStoreId).delete();
  expect((await client.dataset(hooked.defaultDatasetId).get()) === undefined
    && (await client.keyValueStore(hooked.defaultKeyValueStoreId).get()) === undefined
    && (await client.run(hooked.id).get())?.id === hooked.id,
    "dataset(…).delete() and keyValueStore(…).delete(): gone, the run stays");
} catch (error) {
  expect(false, "the client runs", { error: String(error?.stack || error).slice(0, 3000) });
} finally {
  server.close();
}
report.passed = passed;
report.failed = failed;
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
process.exit(failed.length ? 1 : 0);
