//! The hostile-input corpus, against the real `agentbase` binary: requests and files
//! built to crash, exhaust or stall a server (stack-deep nesting, decompression
//! bombs, glob and selector bombs, oversized heads, truncated uploads, slow
//! clients). After every case the server must still answer its health check, the
//! reply must be the 4xx the case names in the usual error envelope, and nothing of
//! another agent or workspace may have changed.
//!
//! The corpus is [`cases`]: each case is built here (the large ones are generated,
//! so the repository stays small); `tests/hostile/` holds the committed samples the
//! truncation cases start from. Add a case for every parser that takes tenant input.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Server, agentbase, http};

/// One hostile request and what the server must answer.
struct Case {
    name: String,
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The status it must get.
    expect: u16,
    /// The envelope's code, when the case names one.
    code: Option<&'static str>,
}

/// Base64 of `v`'s JSON, URL-safe without padding (a query parameter as is).
fn b64(v: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn json_case(
    name: &str,
    method: &'static str,
    path: &str,
    body: Vec<u8>,
    expect: u16,
    code: &'static str,
) -> Case {
    Case {
        name: name.to_owned(),
        method,
        path: path.to_owned(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body,
        expect,
        code: Some(code),
    }
}

const BOUNDARY: &str = "hostile-boundary-7f3a";

fn upload_case(
    name: &str,
    agent: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
    expect: u16,
) -> Case {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Case {
        name: name.to_owned(),
        method: "POST",
        path: format!("/api/v2/agents/{agent}/sources"),
        headers: vec![(
            "Content-Type".into(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )],
        body,
        expect,
        code: (expect == 400).then_some("VALIDATION_INVALID_BODY"),
    }
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A one-page PDF whose page content is `content` (compressed when `flate`), with a
/// correct cross-reference table.
fn pdf_with_content(content: &[u8], flate: bool) -> Vec<u8> {
    let stream = if flate {
        zlib(content)
    } else {
        content.to_vec()
    };
    let filter = if flate { " /Filter /FlateDecode" } else { "" };
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
           /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_vec(),
        {
            let mut o = format!("<< /Length {}{filter} >>\nstream\n", stream.len()).into_bytes();
            o.extend_from_slice(&stream);
            o.extend_from_slice(b"\nendstream");
            o
        },
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter_mut().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.append(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    out
}

fn docx(document_xml: &[u8]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut buf);
    z.start_file(
        "word/document.xml",
        zip::write::SimpleFileOptions::default().compression_level(Some(1)),
    )
    .unwrap();
    z.write_all(document_xml).unwrap();
    z.finish().unwrap();
    buf.into_inner()
}

/// A small deterministic generator for the truncation offsets.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/hostile")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("corpus sample {name}: {e}"))
}

fn cases(agent: &str) -> Vec<Case> {
    let deep = |open: &str, n: usize| open.repeat(n);
    let run_path = "/v2/acts/apify~website-content-crawler/runs";
    let mut cases = vec![
        // Request bodies.
        json_case("deeply nested JSON body", "POST", "/api/v2/agents", deep("[", 100_000).into_bytes(), 400, "VALIDATION_INVALID_JSON"),
        json_case("deeply nested JSON in an object", "PUT", &format!("/api/v2/agents/{agent}"),
            format!("{{\"name\":{}1{}}}", deep("{\"a\":", 5_000), deep("}", 5_000)).into_bytes(), 400, "VALIDATION_INVALID_JSON"),
        json_case("body over the limit", "POST", "/api/v2/agents",
            format!("{{\"name\":\"{}\"}}", "x".repeat(3 * 1024 * 1024)).into_bytes(), 413, "VALIDATION_BODY_TOO_LARGE"),
        json_case("chat message too long", "POST", &format!("/api/v2/agents/{agent}/chat"),
            json!({"message": "x".repeat(40_000), "stream": false}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("v1 chat with too many messages", "POST", "/api/v1/chat",
            json!({"chatbotId": agent, "messages": vec![json!({"role": "user", "content": "hi"}); 1_001]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        // Webhook endpoints (targets pass the SSRF guard; lists and URLs are bounded).
        json_case("deeply nested JSON to webhooks", "POST", &format!("/api/v2/agents/{agent}/webhooks"),
            deep("[", 100_000).into_bytes(), 400, "VALIDATION_INVALID_JSON"),
        json_case("webhook with a huge URL", "POST", &format!("/api/v2/agents/{agent}/webhooks"),
            json!({"url": format!("https://a.example/{}", "a".repeat(200_000)), "events": ["leads.submit"]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("webhook with a flood of events", "POST", &format!("/api/v2/agents/{agent}/webhooks"),
            json!({"url": "https://a.example/in", "events": vec!["%_%"; 50_000]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("webhook to the cloud metadata address", "POST", &format!("/api/v2/agents/{agent}/webhooks"),
            json!({"url": "http://169.254.169.254/latest/meta-data/", "events": ["leads.submit"]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("webhook update with a nested body", "PATCH", &format!("/api/v2/agents/{agent}/webhooks/AAAAAAAAAAAAAAAAAAAA"),
            format!("{{\"url\":{}1{}}}", deep("{\"a\":", 5_000), deep("}", 5_000)).into_bytes(), 404, "RESOURCE_NOT_FOUND"),
        // Contacts (v1): bulk size, nesting and value sizes are bounded.
        json_case("deeply nested JSON to contacts", "POST", &format!("/api/v1/chatbots/{agent}/contacts"),
            deep("[", 100_000).into_bytes(), 400, "VALIDATION_INVALID_JSON"),
        json_case("a flood of contacts in one call", "POST", &format!("/api/v1/chatbots/{agent}/contacts"),
            json!({"users": vec![json!({"external_id": "x"}); 1_001]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("a contact with a huge external id", "POST", &format!("/api/v1/chatbots/{agent}/contacts"),
            json!({"users": [{"external_id": "x".repeat(500_000)}]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("contact update with a nested body", "PATCH", &format!("/api/v1/chatbots/{agent}/contacts/nobody"),
            format!("{{\"data\":{}1{}}}", deep("{\"a\":", 5_000), deep("}", 5_000)).into_bytes(), 400, "VALIDATION_INVALID_JSON"),
        json_case("a link source with a flood of path rules", "POST", &format!("/api/v2/agents/{agent}/sources"),
            json!({"type": "link", "url": "https://example.com/", "linkType": "crawl",
                   "excludePaths": vec!["^/private"; 10_000]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("a link source with a huge path rule", "POST", &format!("/api/v2/agents/{agent}/sources"),
            json!({"type": "link", "url": "https://example.com/", "linkType": "crawl",
                   "includeOnlyPaths": [format!("^/{}", "(a|b)*".repeat(20_000))]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        // Crawl run inputs.
        json_case("glob brace bomb", "POST", run_path, json!({
            "startUrls": ["https://example.com/"],
            "includeUrlGlobs": [format!("https://example.com/{}a{}", deep("{", 20_000), deep("}", 20_000))]
        }).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("glob fan-out bomb", "POST", run_path, json!({
            "startUrls": ["https://example.com/"],
            "includeUrlGlobs": [format!("https://example.com/{}", "{a,b,c,d}".repeat(30))]
        }).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("too many globs", "POST", run_path, json!({
            "startUrls": ["https://example.com/"],
            "excludeUrlGlobs": vec!["https://example.com/**"; 1_000]
        }).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("start URLs and cookies as arrays", "POST", run_path, json!({
            "startUrls": [["https://example.com/"]], "initialCookies": [["a", "b"]]
        }).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("selector nesting bomb", "POST", run_path, json!({
            "startUrls": ["https://example.com/"],
            "removeElementsCssSelector": format!("{}a{}", deep(":not(", 5_000), deep(")", 5_000))
        }).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("run input over the body limit", "POST", run_path,
            json!({"startUrls": ["https://example.com/"], "x": "a".repeat(3 * 1024 * 1024)}).to_string().into_bytes(),
            413, "VALIDATION_BODY_TOO_LARGE"),
        // Nested objects sent as arrays (serde would fill a struct's fields in order).
        json_case("rate limits as an array", "PUT", &format!("/api/v2/agents/{agent}"),
            json!({"ipRateLimits": [7, 99, "from an array"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("an action as an array", "PUT", &format!("/api/v2/agents/{agent}/actions"),
            json!({"actions": [["myact", "desc", {"type": "object"}]]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("v1 chat messages as arrays", "POST", "/api/v1/chat",
            json!({"chatbotId": agent, "messages": [["user", "hi"]]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        // Path rules are compiled when they are given, not by the crawl.
        json_case("a link source with a path rule that does not compile", "POST", &format!("/api/v2/agents/{agent}/sources"),
            json!({"type": "link", "url": "https://example.com/", "linkType": "crawl", "excludePaths": ["("]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("a link source with a path rule past the size limit", "POST", &format!("/api/v2/agents/{agent}/sources"),
            json!({"type": "link", "url": "https://example.com/", "linkType": "crawl", "includeOnlyPaths": ["a{1000}{1000}"]}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        // Ids in the path that are not UTF-8 once decoded, on every kind of route.
        json_case("an agent id that is not UTF-8", "GET", "/api/v2/agents/%FF", Vec::new(), 400, "VALIDATION_INVALID_PATH"),
        json_case("a v1 chatbot id that is not UTF-8", "GET", "/api/v1/chatbots/%C3%28/contacts", Vec::new(), 400, "VALIDATION_INVALID_PATH"),
        json_case("a run id that is not UTF-8", "GET", "/v2/actor-runs/%ED%A0%80", Vec::new(), 400, "VALIDATION_INVALID_PATH"),
        json_case("deleting a record of a store that is not there", "DELETE",
            &format!("/v2/key-value-stores/nope/records/{}", "k".repeat(5_000)), Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        json_case("a record key that is not UTF-8", "DELETE", "/v2/key-value-stores/nope/records/%FF", Vec::new(), 400, "VALIDATION_INVALID_PATH"),
        json_case("a widget agent id that is not UTF-8", "GET", "/widget/v1/agents/%FF/config", Vec::new(), 400, "VALIDATION_INVALID_PATH"),
        // Run lists, `last` and the synchronous runs: their query parameters.
        json_case("a run list with an unknown status", "GET", "/v2/actor-runs?status=SUCCEEDED,%00", Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a run list with a huge offset", "GET", "/v2/actor-runs?offset=99999999999999999999", Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a run list with a negative limit", "GET", "/v2/acts/apify~website-content-crawler/runs?limit=-5", Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a run list from a date out of range", "GET", "/v2/actor-runs?startedAfter=99999-01-01", Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("the last run before a date-time with a bad offset", "GET",
            "/v2/acts/apify~website-content-crawler/runs/last?startedBefore=2024-01-01T00:00:00%2B99:00", Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("the last run of an actor that is not there", "GET", "/v2/acts/%2E%2E/runs/last/log", Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        json_case("no last run yet, with a long status list", "GET",
            &format!("/v2/actors/aYG0l9s7dbB7j3gbS/runs/last/dataset/items?status={}", vec!["ABORTED"; 2_000].join(",")), Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        json_case("maxItems that is not a number", "POST", "/v2/acts/apify~website-content-crawler/run-sync?maxItems=1e999",
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a synchronous run with a dataset format it cannot write", "POST",
            "/v2/acts/apify~website-content-crawler/run-sync-get-dataset-items?format=xml%00",
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a synchronous run whose input is an array", "POST", "/v2/acts/apify~website-content-crawler/run-sync",
            b"[[1]]".to_vec(), 400, "VALIDATION_INVALID_BODY"),
        json_case("deleting a run that is not there", "DELETE", "/v2/actor-runs/nope", Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        json_case("deleting the last run of a status list full of junk", "DELETE",
            "/v2/acts/apify~website-content-crawler/runs/last?status=SUCCEEDED,%27%3B%20DROP%20TABLE%20crawl_runs",
            Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a dataset export with a quote for its delimiter", "GET", "/v2/datasets/nope/items?format=csv&delimiter=%22",
            Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a dataset export unwinding and flattening a flood of fields", "GET",
            &format!("/v2/datasets/nope/items?unwind={0}&flatten={0}", vec!["f"; 5_000].join(",")), Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        // The export's XML names, views and legacy options, checked before the dataset is read (few
        // cases, each with several bad parameters: the corpus runs within the key's rate limit).
        json_case("a dataset export with markup, a NUL and a prefix for XML names, and a view", "GET",
            "/v2/datasets/nope/items?format=xml&xmlRoot=%3Cscript%3E&xmlRow=a%3Ab%00&view=overview",
            Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a synchronous run exported through a view of junk, its XML root past the name limit", "POST",
            &format!("/v2/acts/apify~website-content-crawler/run-sync-get-dataset-items?format=rss%00&view={}&xmlRoot={}",
                "%FF%00".repeat(1_000), "a".repeat(5_000)),
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a dataset export in XLSX with every legacy option", "GET",
            "/v2/datasets/nope/items?format=XLSX&simplified=1&skipFailedPages=1&xmlRoot=r&xmlRow=w&bom=1&attachment=1",
            Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        // Apify's persistent webhooks and storages deleted alone.
        json_case("a persistent webhook that is an array", "POST", "/v2/webhooks", b"[1,2]".to_vec(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a persistent webhook for an actor task, with flags that are text", "POST", "/v2/webhooks",
            json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "https://example.com/",
                "condition": {"actorTaskId": "t"}, "doNotRetry": "yes", "isAdHoc": "no"}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("a persistent webhook with a flood of events, a huge template and description", "POST", "/v2/webhooks",
            json!({"eventTypes": vec!["ACTOR.RUN.NOPE"; 10_000], "requestUrl": format!("https://{}/", "a".repeat(5_000)),
                "condition": {"actorId": "aYG0l9s7dbB7j3gbS", "actorRunId": "r"},
                "payloadTemplate": "{{resource}}".repeat(20_000), "description": "d".repeat(100_000)}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("a persistent webhook to the metadata address", "POST", "/v2/webhooks",
            json!({"eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "http://169.254.169.254/latest/",
                "condition": {"actorId": "apify~website-content-crawler"}}).to_string().into_bytes(),
            400, "VALIDATION_INVALID_BODY"),
        json_case("an update of a webhook that does not exist", "PUT", "/v2/webhooks/nope",
            json!({"requestUrl": "https://example.com/"}).to_string().into_bytes(), 404, "RESOURCE_NOT_FOUND"),
        json_case("a dispatch list from a negative offset", "GET", "/v2/webhook-dispatches?offset=-1&limit=1e9",
            Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a dispatch id of control characters", "GET", "/v2/webhook-dispatches/%00%0A..%2F", Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        json_case("a deletion of a dataset that does not exist", "DELETE", "/v2/datasets/nope", Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        json_case("a dataset list from a negative offset", "GET", "/v2/datasets?unnamed=1&offset=-5&limit=x", Vec::new(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a deletion of a store by a path of dots", "DELETE", "/v2/key-value-stores/..", Vec::new(), 404, "RESOURCE_NOT_FOUND"),
        // Apify's ad-hoc webhooks (base64 JSON in the query).
        json_case("run webhooks that are not base64", "POST", &format!("{run_path}?webhooks=%FF%FE"),
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("run webhooks past the request head's size", "POST", &format!("{run_path}?webhooks={}", "QUFB".repeat(10_000)),
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 431, "VALIDATION_HEADERS_TOO_LARGE"),
        json_case("run webhooks as arrays", "POST", &format!("{run_path}?webhooks={}", b64(&json!([["ACTOR.RUN.SUCCEEDED", "https://example.com/"]]))),
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a run webhook template nested deep", "POST", &format!("{run_path}?webhooks={}", b64(&json!([{
            "eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "https://example.com/",
            "payloadTemplate": format!("{}{{{{resource}}}}{}", deep("[", 5_000), deep("]", 4_999))}]))),
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a run webhook header with a line break", "POST", &format!("{run_path}?webhooks={}", b64(&json!([{
            "eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "https://example.com/",
            "headersTemplate": "{\"X-A\": \"a\\r\\nInjected: 1\"}"}]))),
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
        json_case("a run webhook to the metadata address", "POST", &format!("{run_path}?webhooks={}", b64(&json!([{
            "eventTypes": ["ACTOR.RUN.SUCCEEDED"], "requestUrl": "http://[::ffff:169.254.169.254]/"}]))),
            json!({"startUrls": ["https://example.com/"]}).to_string().into_bytes(), 400, "VALIDATION_INVALID_BODY"),
    ];
    // Files.
    let mut deep_trailer =
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R /X ".to_vec();
    deep_trailer.extend(deep("[", 100_000).bytes());
    cases.push(upload_case(
        "PDF nested 100,000 deep",
        agent,
        "deep.pdf",
        "application/pdf",
        &deep_trailer,
        400,
    ));
    cases.push(upload_case(
        "PDF Flate bomb",
        agent,
        "bomb.pdf",
        "application/pdf",
        &pdf_with_content(&vec![b' '; 300 << 20], true),
        400,
    ));
    cases.push(upload_case(
        "PDF content stream nested 200,000 deep",
        agent,
        "content.pdf",
        "application/pdf",
        &pdf_with_content(
            format!("BT /F1 12 Tf {} ET", deep("[", 200_000)).as_bytes(),
            true,
        ),
        400,
    ));
    let mut bomb = b"<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>".to_vec();
    bomb.resize(bomb.len() + (200 << 20), b' ');
    cases.push(upload_case(
        "DOCX zip bomb",
        agent,
        "bomb.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &docx(&bomb),
        400,
    ));
    cases.push(upload_case(
        "HTML nested 200,000 deep",
        agent,
        "deep.html",
        "text/html",
        format!("<html><body>{}deep text", deep("<div>", 200_000)).as_bytes(),
        400,
    ));
    cases.push(upload_case(
        "dataset nested 10,000 deep",
        agent,
        "deep.json",
        "application/json",
        format!(
            "[{{\"url\":\"https://x.test/\",\"text\":\"t\",\"m\":{}1{}}}]",
            deep("[", 10_000),
            deep("]", 10_000)
        )
        .as_bytes(),
        400,
    ));
    cases.push(upload_case(
        "binary junk named .pdf",
        agent,
        "junk.pdf",
        "application/pdf",
        &[0xde, 0xad, 0xbe, 0xef].repeat(1000),
        400,
    ));
    // Every upload kind truncated at random offsets.
    let mut rng = Lcg(0x5eed);
    for (file, kind, must_fail) in [
        ("sample.pdf", "application/pdf", true),
        (
            "sample.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            true,
        ),
        ("sample.html", "text/html", false),
        ("sample.jsonl", "application/json", false),
        ("sample.md", "text/markdown", false),
    ] {
        let bytes = sample(file);
        for _ in 0..4 {
            let at = 1 + rng.below(bytes.len() - 2);
            let mut c = upload_case(
                &format!("{file} truncated at {at}"),
                agent,
                file,
                kind,
                &bytes[..at],
                400,
            );
            if !must_fail {
                // A cut text file is still text: taken or refused, never a 5xx.
                c.expect = 0;
                c.code = None;
            }
            cases.push(c);
        }
    }
    // Compressed bodies (decoded before any route reads them).
    let gzip = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let encoded = |name: &str, encoding: &str, body: Vec<u8>, expect: u16, code: &'static str| {
        let mut c = json_case(name, "POST", "/api/v2/agents", body, expect, code);
        c.headers.push(("Content-Encoding".into(), encoding.into()));
        c
    };
    // 1 GiB of zeros in about a megabyte: refused at the cap, never inflated whole.
    let zeros = vec![0u8; 1 << 20];
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..1024 {
        bomb.write_all(&zeros).unwrap();
    }
    cases.push(encoded(
        "gzip bomb body",
        "gzip",
        bomb.finish().unwrap(),
        413,
        "VALIDATION_BODY_TOO_LARGE",
    ));
    cases.push(encoded(
        "corrupt gzip body",
        "gzip",
        b"\x1f\x8bnot really gzip".to_vec(),
        400,
        "VALIDATION_INVALID_BODY",
    ));
    let mut layered = gzip(br#"{"name":"layers"}"#);
    for _ in 0..7 {
        layered = gzip(&layered);
    }
    cases.push(encoded(
        "eight layers of gzip",
        &["gzip"; 8].join(", "),
        layered,
        415,
        "VALIDATION_UNSUPPORTED_ENCODING",
    ));
    cases.push(encoded(
        "unknown coding",
        "zstd",
        b"{}".to_vec(),
        415,
        "VALIDATION_UNSUPPORTED_ENCODING",
    ));
    cases.push(encoded(
        "nested JSON inside gzip",
        "gzip",
        gzip(deep("[", 100_000).as_bytes()),
        400,
        "VALIDATION_INVALID_JSON",
    ));
    // Heads.
    let mut big_head = json_case(
        "headers over 32 KiB",
        "GET",
        "/api/v2/agents",
        Vec::new(),
        431,
        "VALIDATION_HEADERS_TOO_LARGE",
    );
    big_head
        .headers
        .push(("X-Padding".into(), "p".repeat(40 * 1024)));
    cases.push(big_head);
    let mut huge_head = json_case(
        "headers over hyper's buffer",
        "GET",
        "/api/v2/agents",
        Vec::new(),
        431,
        "",
    );
    huge_head.code = None;
    for i in 0..40 {
        huge_head
            .headers
            .push((format!("X-Padding-{i}"), "p".repeat(8 * 1024)));
    }
    cases.push(huge_head);
    cases
}

/// Sends one request on a fresh connection; returns the status (0 when the server
/// closed the connection without answering) and the body.
fn send(port: u16, key: &str, c: &Case) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\nConnection: close\r\n",
        c.method,
        c.path,
        c.body.len()
    );
    for (k, v) in &c.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The server may answer (and close) before the whole body is sent.
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(&c.body));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let Some((head, body)) = out.split_once("\r\n\r\n") else {
        return (0, out);
    };
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    (
        status,
        if chunked {
            common::dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

/// What must not change while the corpus runs: another workspace's agent and its
/// sources, and the attacked agent's own sources.
fn snapshot(port: u16, key: &str, agent: &str) -> Value {
    let get = |path: String| {
        let (status, body) = http(port, "GET", &path, key, "");
        assert_eq!(status, 200, "{path}: {body}");
        let mut v: Value = serde_json::from_str(&body).unwrap();
        // Timestamps of use move on their own.
        if let Some(o) = v.as_object_mut() {
            o.remove("lastTrainedAt");
        }
        v
    };
    json!({
        "agent": get(format!("/api/v2/agents/{agent}")),
        "sources": get(format!("/api/v2/agents/{agent}/sources")),
    })
}

/// Waits until training has settled on the agent's sources (with no embedder
/// configured, it fails at once), so snapshots compare what the corpus did.
fn settled(port: u16, key: &str, agent: &str) {
    for _ in 0..200 {
        let (_, body) = http(
            port,
            "GET",
            &format!("/api/v2/agents/{agent}/sources"),
            key,
            "",
        );
        let list: Value = serde_json::from_str(&body).unwrap();
        let busy = list["data"].as_array().unwrap().iter().any(|s| {
            matches!(
                s["status"].as_str(),
                Some("untrained" | "training" | "updated")
            )
        });
        if !busy {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("training did not settle on {agent}");
}

fn healthy(port: u16) {
    let (status, body) = http(port, "GET", "/api/v2/health", "", "");
    assert_eq!(status, 200, "health after a hostile case: {body}");
}

#[test]
fn no_hostile_input_takes_the_server_down_or_touches_another_tenant() {
    let server = Server::start(&[
        ("AGENTBASE__KNOWLEDGE__EMBEDDER", "none"),
        // The corpus is for the parsers; the limiter has its own tests.
        ("AGENTBASE__RATE_LIMIT__REQUESTS", "1000000"),
        ("AGENTBASE__SERVER__HEADER_TIMEOUT_SECS", "2"),
        ("AGENTBASE__SERVER__BODY_TIMEOUT_SECS", "2"),
        ("AGENTBASE__EXTRACTION__TIMEOUT_SECS", "30"),
    ]);
    let port = server.port;
    let target = server.create_agent("Target");
    let (status, body) = http(
        port,
        "POST",
        &format!("/api/v2/agents/{target}/sources"),
        &server.key,
        &json!({"type": "text", "name": "Baseline", "content": "Refunds take five days."})
            .to_string(),
    );
    assert_eq!(status, 201, "{body}");
    // Another tenant: its own workspace, key, agent and source.
    let cli = |args: &[&str]| {
        let out = agentbase(server.dir.path(), &[])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let other_ws = cli(&["--json", "workspaces", "create", "Other"]);
    let other_key = cli(&[
        "--json",
        "keys",
        "create",
        "--workspace",
        other_ws["id"].as_str().unwrap(),
    ])["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = http(
        port,
        "POST",
        "/api/v2/agents",
        &other_key,
        &json!({"name": "Other"}).to_string(),
    );
    assert_eq!(status, 201, "{body}");
    let other = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = http(
        port,
        "POST",
        &format!("/api/v2/agents/{other}/sources"),
        &other_key,
        &json!({"type": "text", "name": "Theirs", "content": "Shipping is free."}).to_string(),
    );
    assert_eq!(status, 201);
    settled(port, &server.key, &target);
    settled(port, &other_key, &other);
    let before = (
        snapshot(port, &server.key, &target),
        snapshot(port, &other_key, &other),
    );

    for c in cases(&target) {
        let started = Instant::now();
        let (status, body) = send(port, &server.key, &c);
        let took = started.elapsed();
        assert!(
            status != 0,
            "{}: the server closed the connection without answering; log:\n{}",
            c.name,
            server.log()
        );
        assert!(status < 500, "{}: {status} {body}", c.name);
        if c.expect != 0 {
            assert_eq!(status, c.expect, "{}: {body}", c.name);
        }
        if let Some(code) = c.code.filter(|_| status >= 400) {
            let envelope: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{}: not an error envelope ({e}): {body}", c.name));
            // v1's envelope is flat: {"message", "code"}.
            let error = if c.path.starts_with("/api/v1/") {
                &envelope
            } else {
                &envelope["error"]
            };
            assert_eq!(error["code"], code, "{}: {body}", c.name);
            assert!(
                error["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{}",
                c.name
            );
        }
        healthy(port);
        let said = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["details"]["file"].as_str().map(str::to_owned))
            .unwrap_or_default();
        eprintln!(
            "{:<45} {status} in {:>5.0} ms {said}",
            c.name,
            took.as_secs_f64() * 1e3
        );
    }
    // A truncated text upload may have been taken: drop what the corpus added, then
    // everything must be as it was.
    let (_, list) = http(
        port,
        "GET",
        &format!("/api/v2/agents/{target}/sources?limit=100"),
        &server.key,
        "",
    );
    for s in serde_json::from_str::<Value>(&list).unwrap()["data"]
        .as_array()
        .unwrap()
    {
        if s["name"] != "Baseline" {
            let (status, _) = http(
                port,
                "DELETE",
                &format!(
                    "/api/v2/agents/{target}/sources/{}",
                    s["id"].as_str().unwrap()
                ),
                &server.key,
                "",
            );
            assert_eq!(status, 200);
        }
    }
    settled(port, &server.key, &target);
    let after = (
        snapshot(port, &server.key, &target),
        snapshot(port, &other_key, &other),
    );
    assert_eq!(after.1, before.1, "another workspace changed");
    assert_eq!(
        after.0["sources"]["data"], before.0["sources"]["data"],
        "the attacked agent's own sources changed"
    );
    assert!(
        server.log().contains("a document could not be read"),
        "worker deaths are logged"
    );
}

#[test]
fn slow_clients_are_cut_off_and_do_not_hold_the_server() {
    let server = Server::start(&[
        ("AGENTBASE__KNOWLEDGE__EMBEDDER", "none"),
        ("AGENTBASE__SERVER__HEADER_TIMEOUT_SECS", "1"),
        ("AGENTBASE__SERVER__BODY_TIMEOUT_SECS", "1"),
        ("AGENTBASE__SERVER__MAX_CONNECTIONS", "8"),
    ]);
    let port = server.port;
    let closed_within = |mut s: TcpStream, secs: u64| {
        s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
        let mut buf = Vec::new();
        let started = Instant::now();
        let _ = s.read_to_end(&mut buf);
        (
            started.elapsed(),
            String::from_utf8_lossy(&buf).into_owned(),
        )
    };
    // Headers that never finish.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /api/v2/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (took, _) = closed_within(slow, 10);
    assert!(
        took < Duration::from_secs(5),
        "a slow head held the connection {took:?}"
    );
    // An idle keep-alive connection after one answer.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(b"GET /api/v2/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (took, answer) = closed_within(idle, 10);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took < Duration::from_secs(5),
        "an idle connection was kept {took:?}"
    );
    // A body that stops arriving.
    let mut trickle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(trickle, "POST /api/v2/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n{{\"name\"", server.key).unwrap();
    let (took, answer) = closed_within(trickle, 10);
    assert!(
        took < Duration::from_secs(5),
        "a stalled body held the request {took:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    // The same with a Content-Encoding (decoded before the handler reads): a body
    // cut short is a body that could not be read (400), not one too large (413).
    let mut trickle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(trickle, "POST /api/v2/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Encoding: identity\r\nContent-Length: 1000\r\n\r\n{{\"name\"", server.key).unwrap();
    let (took, answer) = closed_within(trickle, 10);
    assert!(
        took < Duration::from_secs(5),
        "a stalled encoded body held the request {took:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // More idle connections than the server serves at once: they wait, then drop
    // off by the header timeout, and the server answers again.
    let hogs: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    drop(hogs);
    healthy(port);
}
