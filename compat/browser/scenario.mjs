// The browser scenario, run by crates/cli/tests/browser.rs (or by hand):
//
//   AGENTBASE_URL=http://127.0.0.1:8080 AGENTBASE_KEY=agb_… \
//   ALLOWED_PAGE_URL=http://127.0.0.1:4000/widget.html \
//   REFUSED_PAGE_URL=http://localhost:4001/chatbase.html \
//   ARTIFACTS_DIR=target/browser-artifacts node compat/browser/scenario.mjs
//
// The pages get `?agent=<id>` appended and must embed the widget for that agent.
// AGENT_ID skips creating the agent (it must then be public, allow the allowed
// page and be trained on KNOWLEDGE in widget.mjs); without AGENTBASE_KEY the
// rate-limit steps (which make an agent of their own) are left out. With
// AGENTBASE_ADMIN_PASSWORD the dashboard steps run first (sign in, key, agent,
// source, playground, conversations, usage) and make the agent the widget embeds.
// ANSWER_PREFIX is what the model puts before the echoed message (default
// "Echo: ", the scripted model). LEAD_STEPS=1 adds the lead form and its signed
// leads.submit webhook (the server must allow private networks: the receiver is
// on loopback). HANDOFF_STEPS=1 (with the key and the operator password) adds the
// human handoff: the visitor asks for a person, the operator (a second browser
// context, signed in to the dashboard) answers live, hands back, takes over again.
// Prints each screenshot's path, then one JSON line
// with the result; exits non-zero naming the failed step.

import { Artifacts, env, launch } from "./lib.mjs";
import { dashboardSteps } from "./dashboard.mjs";
import { handoffSteps } from "./handoff.mjs";
import { KNOWLEDGE, createWidgetAgent, leadSteps, rateLimitSteps, slowConfigSteps, widgetSteps } from "./widget.mjs";

const server = env("AGENTBASE_URL").replace(/\/+$/, "");
const artifacts = new Artifacts(process.env.ARTIFACTS_DIR || "target/browser-artifacts");
const allowedPage = env("ALLOWED_PAGE_URL");
const refusedPage = env("REFUSED_PAGE_URL");
// The scripted model answers "Echo: <message>".
const answerFor = (text) => `${process.env.ANSWER_PREFIX ?? "Echo: "}${text}`;

const browser = await launch();
let failed = null;
let result = {};
try {
  // With the operator password, the dashboard makes, configures and trains the
  // agent the widget then embeds; otherwise the API does.
  let agentId = process.env.AGENT_ID;
  if (!agentId && process.env.AGENTBASE_ADMIN_PASSWORD) {
    const dashboard = await dashboardSteps({
      browser, artifacts, server, password: process.env.AGENTBASE_ADMIN_PASSWORD, allowedPage, answerFor,
    });
    agentId = dashboard.agentId;
  }
  agentId ||= await createWidgetAgent({ server, key: env("AGENTBASE_KEY"), allowedPage, knowledge: KNOWLEDGE });
  const widget = await widgetSteps({ browser, artifacts, agentId, allowedPage, refusedPage, answerFor });
  result = { agentId, ...widget };
  if (process.env.AGENTBASE_KEY) {
    await rateLimitSteps({ browser, artifacts, server, key: process.env.AGENTBASE_KEY, allowedPage, answerFor });
    await slowConfigSteps({ browser, artifacts, server, key: process.env.AGENTBASE_KEY, allowedPage, answerFor });
    // The lead form's webhook receiver is on loopback: only when the server may
    // reach private networks (the test starts it so).
    if (process.env.LEAD_STEPS === "1") {
      result = { ...result, ...(await leadSteps({ browser, artifacts, server, key: process.env.AGENTBASE_KEY, allowedPage, answerFor })) };
    }
    // The handoff needs the operator in the dashboard as well as the visitor.
    if (process.env.HANDOFF_STEPS === "1") {
      result = {
        ...result,
        ...(await handoffSteps({
          browser, artifacts, server, key: process.env.AGENTBASE_KEY,
          password: env("AGENTBASE_ADMIN_PASSWORD"), allowedPage, answerFor,
        })),
      };
    }
  }
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}

console.log(JSON.stringify({ ok: !failed, error: failed ? failed.message : undefined, screenshots: artifacts.paths, ...result }));
if (failed) {
  console.error(`browser scenario failed: ${failed.message}`);
  process.exit(1);
}
