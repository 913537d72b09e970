// Drives agentbase with Apify's official JavaScript client (npm `apify-client`,
// pinned in package.json), unchanged: only the base URL and the token are set.
//
//   node compat/apify-clients.mjs BASE_URL TOKEN
//
// The same crawl as apify_clients.py: a loopback site crawled with actor().call()
// (the run's log streamed, as call() does by default), the dataset paged with
// listItems({offset, limit, clean, fields, desc}) and iterated with `for await`,
// run().get(), the log, the default key-value store's INPUT and OUTPUT records, a
// slow second run started, aborted and waited for, the run lists, lastRun() with its
// storages, and call() with maxItems and an ad-hoc webhook. Prints a JSON report;
// exits 1 on any failed check.
import http from "node:http";
import { isDeepStrictEqual } from "node:util";
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
} catch (error) {
  expect(false, "the client runs", { error: String(error?.stack || error).slice(0, 3000) });
} finally {
  server.close();
}
report.passed = passed;
report.failed = failed;
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
process.exit(failed.length ? 1 : 0);
