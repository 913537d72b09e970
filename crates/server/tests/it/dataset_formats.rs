//! Apify's dataset export in the formats beside JSON and CSV that its clients ask
//! for (`xml`, `rss`, `html`, `xlsx`), its legacy options and its refusals, on runs
//! that crawled a small loopback site whose pages hold markup, an ampersand,
//! formula-looking text and control characters.

use std::io::Read;
use std::net::SocketAddr;

use axum::response::Html;
use reqwest::Method;
use serde_json::{Value, json};

use crate::apify::{apify, crawler_app, get_json, start_run};
use crate::{TestApp, outcome};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `/docs/` (a title with markup, a description that reads as a formula, a control
/// character in the text) linking to `/docs/more`.
async fn site() -> SocketAddr {
    let app = axum::Router::new()
        .route(
            "/docs/",
            axum::routing::get(|| async {
                Html(
                    "<html><head><title>Tips &amp; &lt;Tricks&gt;</title>\
                     <meta name=\"description\" content=\"=HYPERLINK(&quot;http://evil.example/&quot;)\">\
                     </head><body><main><h1>Tips</h1><p>Warm the cup first, \u{1}then pull the shot \
                     slowly; this paragraph is long enough to be the main content of the page.</p>\
                     <a href=\"/docs/more\">more</a></main></body></html>",
                )
            }),
        )
        .route(
            "/docs/more",
            axum::routing::get(|| async {
                Html(
                    "<html><head><title>More</title></head><body><main><h1>More</h1><p>Clean the \
                     group head after every session; this paragraph is the main content.</p>\
                     </main></body></html>",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Crawls the site to the end: the run's id and its dataset's.
async fn crawled(t: &TestApp, site: SocketAddr) -> (String, String) {
    let input = json!({"startUrls": [{"url": format!("http://{site}/docs/")}], "maxCrawlDepth": 2});
    let run = start_run(t, input).await;
    let id = run["data"]["id"].as_str().unwrap().to_owned();
    let (_, run) = get_json(t, &format!("/v2/actor-runs/{id}?waitForFinish=60")).await;
    assert_eq!(run["data"]["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["data"]["stats"]["itemCount"], 2, "{run}");
    let dataset = run["data"]["defaultDatasetId"].as_str().unwrap().to_owned();
    (id, dataset)
}

/// A 200 answer's content type, disposition (if any) and body.
async fn export(t: &TestApp, path: &str) -> (String, Option<String>, Vec<u8>) {
    let r = apify(t, Method::GET, path).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let header = |name: &str| (r.headers().get(name)).map(|v| v.to_str().unwrap().to_owned());
    let (content_type, disposition) = (
        header("content-type").unwrap(),
        header("content-disposition"),
    );
    (content_type, disposition, r.bytes().await.unwrap().to_vec())
}

/// No character that XML 1.0 forbids (C0 controls but tab, LF and CR; U+FFFE/F).
fn only_xml_characters(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(c, '\u{fffe}' | '\u{ffff}'))
    })
}

#[tokio::test]
async fn a_crawled_dataset_exports_as_xml_rss_html_and_xlsx_as_apify_writes_them() {
    let t = crawler_app().await;
    let site = site().await;
    let (run, dataset) = crawled(&t, site).await;
    let docs = format!("http://{site}/docs/");
    let more = format!("http://{site}/docs/more");

    // XML with its own root and row names, as an attachment; no byte order mark.
    let (content_type, disposition, body) = export(
        &t,
        &format!("/v2/datasets/{dataset}/items?format=xml&xmlRoot=pages&xmlRow=page&attachment=1"),
    )
    .await;
    assert_eq!(content_type, "application/xml; charset=utf-8");
    assert_eq!(
        disposition.as_deref(),
        Some(format!("attachment; filename=\"dataset_{dataset}.xml\"").as_str())
    );
    let xml = String::from_utf8(body).unwrap();
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pages>\n  <page>\n"),
        "{xml}"
    );
    assert!(xml.ends_with("  </page>\n</pages>\n"), "{xml}");
    assert_eq!(xml.matches("\n  <page>\n").count(), 2, "{xml}");
    assert!(xml.contains(&format!("    <url>{docs}</url>\n")), "{xml}");
    assert!(xml.contains(&format!("    <url>{more}</url>\n")), "{xml}");
    // Nested objects as nested elements; text escaped; nothing XML cannot carry.
    assert!(xml.contains("    <metadata>\n"), "{xml}");
    assert!(
        xml.contains("<title>Tips &amp; &lt;Tricks&gt;</title>"),
        "{xml}"
    );
    assert!(
        !xml.contains("<Tricks>") && only_xml_characters(&xml),
        "{xml:?}"
    );
    let (_, _, body) = export(
        &t,
        &format!("/v2/datasets/{dataset}/items?format=xml&bom=1"),
    )
    .await;
    assert!(
        body.starts_with(BOM) && body[3..].starts_with(b"<?xml"),
        "bom=1"
    );
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("\n<items>\n  <item>\n")
    );

    // RSS, through the run's dataset: one channel of items.
    let (content_type, _, body) = export(
        &t,
        &format!("/v2/actor-runs/{run}/dataset/items?format=rss&fields=url,metadata"),
    )
    .await;
    assert_eq!(content_type, "application/rss+xml; charset=utf-8");
    let rss = String::from_utf8(body).unwrap();
    assert!(
        rss.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss>\n  <channel>\n    <item>\n"
        ),
        "{rss}"
    );
    assert!(
        rss.ends_with("    </item>\n  </channel>\n</rss>\n"),
        "{rss}"
    );
    assert_eq!(rss.matches("\n    <item>\n").count(), 2, "{rss}");
    assert!(rss.contains(&format!("      <url>{docs}</url>\n")) && only_xml_characters(&rss));

    // HTML: one table, every value escaped, formula-looking text defused.
    let (content_type, _, body) = export(
        &t,
        &format!("/v2/datasets/{dataset}/items?format=html&fields=url,metadata"),
    )
    .await;
    assert_eq!(content_type, "text/html; charset=utf-8");
    let html = String::from_utf8(body).unwrap();
    assert!(
        html.starts_with("<table><tr><th>url</th><th>metadata/") && html.ends_with("</tr></table>"),
        "{html}"
    );
    assert_eq!(html.matches("<tr><td>").count(), 2, "{html}");
    assert!(html.contains(&format!("<td>{docs}</td>")), "{html}");
    assert!(
        html.contains("<td>Tips &amp; &lt;Tricks&gt;</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td>&#39;=HYPERLINK(&quot;http://evil.example/&quot;)</td>"),
        "{html}"
    );
    assert!(!html.contains("<Tricks>") && !html.contains('\u{1}'));

    // XLSX: a zip whose one sheet holds the table; never a byte order mark.
    let (content_type, disposition, body) = export(
        &t,
        &format!("/v2/datasets/{dataset}/items?format=xlsx&fields=url,metadata&bom=1&attachment=1"),
    )
    .await;
    assert_eq!(
        content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert_eq!(
        disposition.as_deref(),
        Some(format!("attachment; filename=\"dataset_{dataset}.xlsx\"").as_str())
    );
    assert!(
        body.starts_with(b"PK\x03\x04"),
        "a zip file, no byte order mark"
    );
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    assert!(zip.file_names().any(|n| n == "xl/workbook.xml"));
    let mut sheet = String::new();
    (zip.by_name("xl/worksheets/sheet1.xml").unwrap())
        .read_to_string(&mut sheet)
        .unwrap();
    let cell = |r: &str, text: &str| {
        format!("<c r=\"{r}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{text}</t></is></c>")
    };
    assert!(sheet.contains(&cell("A1", "url")), "{sheet}");
    assert!(
        sheet.contains(&cell("A2", &docs)) && sheet.contains(&cell("A3", &more)),
        "{sheet}"
    );
    assert!(
        sheet.contains("<t xml:space=\"preserve\">Tips &amp; &lt;Tricks&gt;</t>"),
        "{sheet}"
    );
    assert!(
        sheet.contains(
            "<t xml:space=\"preserve\">&#39;=HYPERLINK(&quot;http://evil.example/&quot;)</t>"
        ),
        "{sheet}"
    );
    assert!(only_xml_characters(&sheet));
}

#[tokio::test]
async fn legacy_options_views_and_bad_names_are_handled_as_documented() {
    let t = crawler_app().await;
    let site = site().await;
    let (_, dataset) = crawled(&t, site).await;
    let items = |query: &'static str| {
        let path = format!("/v2/datasets/{dataset}/items?{query}");
        let t = &t;
        async move {
            let r = apify(t, Method::GET, &path).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Vec<Value>>().await.unwrap()
        }
    };
    // The crawler's pages carry no `errorInfo`: none of them failed.
    assert_eq!(items("skipFailedPages=1").await.len(), 2);
    // `simplified`: url, pageFunctionResult and errorInfo only (these pages have a url).
    let simple = items("simplified=1&fields=text").await;
    assert_eq!(simple.len(), 2);
    for item in &simple {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["url"], "{item}");
    }

    // Refused, in the envelope, naming the parameter: views, bad names and formats.
    for (query, parameter) in [
        ("view=overview", "view"),
        ("format=xml&xmlRoot=%3Cscript%3E", "xmlRoot"),
        ("format=xml&xmlRow=a%3Ab", "xmlRow"),
        ("format=xml%00", "format"),
        ("format=yaml", "format"),
    ] {
        let path = format!("/v2/datasets/{dataset}/items?{query}");
        let (status, code, body) =
            outcome(apify(&t, Method::GET, &path).send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("VALIDATION_INVALID_BODY")),
            "{query}: {body}"
        );
        assert!(
            body["error"]["details"][parameter].is_string(),
            "{query}: {body}"
        );
    }

    // run-sync-get-dataset-items writes the same formats.
    let r = apify(
        &t,
        Method::POST,
        "/v2/acts/apify~website-content-crawler/run-sync-get-dataset-items?format=xml&maxItems=1&xmlRow=page",
    )
    .json(&json!({"startUrls": [format!("http://{site}/docs/")]}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("\n<items>\n  <page>\n") && xml.matches("<page>").count() == 1,
        "{xml}"
    );
}
