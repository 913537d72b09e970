//! Apify's dataset item export (`GET /v2/datasets/{id}/items` and the run's, and
//! `run-sync-get-dataset-items`): the query (`format`, `offset`, `limit`, `desc`,
//! `clean`, `skipHidden`, `skipEmpty`, `fields`, `omit`, `unwind`, `flatten`, and for
//! CSV `bom`, `delimiter` and `skipHeaderRow`; `attachment`), how items are shaped
//! by it, and how they are written: JSON, JSONL or CSV, with Apify's pagination
//! headers.

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::extract::QueryMap;

/// What a dataset request asks for.
pub struct ItemsQuery {
    format: String,
    pub(crate) offset: i64,
    pub(crate) limit: Option<i64>,
    pub(crate) desc: bool,
    skip_hidden: bool,
    skip_empty: bool,
    fields: Option<Vec<String>>,
    omit: Vec<String>,
    unwind: Vec<String>,
    flatten: Vec<String>,
    /// CSV only: the byte order mark (Apify's default for CSV), the delimiter and
    /// whether the header row is left out.
    bom: Option<bool>,
    delimiter: char,
    skip_header_row: bool,
    attachment: bool,
}

/// `1`, `true` or `yes`, as Apify reads a flag.
pub(crate) fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "true" | "yes"))
}

impl<S: Send + Sync> FromRequestParts<S> for ItemsQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Ok(q) = QueryMap::from_request_parts(parts, state).await;
        items_query(&q)
    }
}

fn items_query(q: &QueryMap) -> Result<ItemsQuery, ApiError> {
    let mut details = BTreeMap::new();
    let format = q.get("format").unwrap_or("json").to_ascii_lowercase();
    if !matches!(format.as_str(), "json" | "jsonl" | "csv") {
        details.insert("format".into(), "json, jsonl or csv".into());
    }
    let mut int = |key: &str| match q.get(key) {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                details.insert(key.into(), "must be a non-negative integer".into());
                None
            }
        },
    };
    let offset = int("offset").unwrap_or(0);
    let limit = int("limit");
    let delimiter = match q.get("delimiter") {
        None => ',',
        Some(d) => {
            let mut chars = d.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !matches!(c, '"' | '\n' | '\r') => c,
                _ => {
                    let problem = "must be one character, not a quote or a line break";
                    details.insert("delimiter".into(), problem.into());
                    ','
                }
            }
        }
    };
    if !details.is_empty() {
        return Err(ApiError::invalid_body(details));
    }
    let list = |key: &str| {
        q.get(key).map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
    };
    let clean = truthy(q.get("clean"));
    Ok(ItemsQuery {
        format,
        offset,
        limit,
        desc: truthy(q.get("desc")),
        skip_hidden: clean || truthy(q.get("skipHidden")),
        skip_empty: clean || truthy(q.get("skipEmpty")),
        fields: list("fields"),
        omit: list("omit").unwrap_or_default(),
        unwind: list("unwind").unwrap_or_default(),
        flatten: list("flatten").unwrap_or_default(),
        bom: q.get("bom").map(|v| truthy(Some(v))),
        delimiter,
        skip_header_row: truthy(q.get("skipHeaderRow")),
        attachment: truthy(q.get("attachment")),
    })
}

/// The items as the query shapes them: `unwind`, then `flatten`, hidden fields and
/// empty items dropped, then `fields` and `omit`.
fn shape(items: Vec<Value>, q: &ItemsQuery) -> Vec<Value> {
    let items = q
        .unwind
        .iter()
        .fold(items, |items, field| unwind(items, field));
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Object(mut map) = item else {
                return Some(item);
            };
            for field in &q.flatten {
                match map.remove(field) {
                    Some(Value::Object(inner)) => dotted(field, inner, &mut map),
                    Some(other) => {
                        map.insert(field.clone(), other);
                    }
                    None => {}
                }
            }
            if q.skip_hidden {
                map.retain(|k, _| !k.starts_with('#'));
            }
            if q.skip_empty && map.is_empty() {
                return None;
            }
            if let Some(fields) = &q.fields {
                let mut picked = Map::new();
                for f in fields {
                    if let Some(v) = map.remove(f) {
                        picked.insert(f.clone(), v);
                    }
                }
                map = picked;
            }
            for f in &q.omit {
                map.remove(f);
            }
            Some(Value::Object(map))
        })
        .collect()
}

/// Records one answer may hold after `unwind` (two array fields unwound multiply):
/// the rest are left out.
const MAX_UNWOUND: usize = 100_000;

/// Apify's `unwind` of one field: an array makes a record per element (an object
/// element merged into the item, its keys winning; another value in the field's
/// place), an object is merged into the item; an item without the field, or with
/// another kind of value there, stays as it is. At most [`MAX_UNWOUND`] records.
fn unwind(items: Vec<Value>, field: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if out.len() >= MAX_UNWOUND {
            break;
        }
        let Value::Object(mut map) = item else {
            out.push(item);
            continue;
        };
        match map.remove(field) {
            Some(Value::Array(elements)) => {
                let room = MAX_UNWOUND - out.len();
                for element in elements.into_iter().take(room) {
                    let mut record = map.clone();
                    match element {
                        Value::Object(fields) => record.extend(fields),
                        other => {
                            record.insert(field.to_owned(), other);
                        }
                    }
                    out.push(Value::Object(record));
                }
            }
            Some(Value::Object(fields)) => {
                map.extend(fields);
                out.push(Value::Object(map));
            }
            Some(other) => {
                map.insert(field.to_owned(), other);
                out.push(Value::Object(map));
            }
            None => out.push(Value::Object(map)),
        }
    }
    out
}

/// `flatten`: an object's fields as `prefix.key` (nested objects too) in `out`.
fn dotted(prefix: &str, inner: Map<String, Value>, out: &mut Map<String, Value>) {
    for (k, v) in inner {
        let key = format!("{prefix}.{k}");
        match v {
            Value::Object(m) => dotted(&key, m, out),
            other => {
                out.insert(key, other);
            }
        }
    }
}

/// Nested objects flattened to `a/b` columns, as Apify's CSV export does. Text
/// cells are made safe for spreadsheets (see [`spreadsheet_safe`]).
fn columns_of(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}/{k}")
                };
                columns_of(&key, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                columns_of(&format!("{prefix}/{i}"), v, out);
            }
        }
        Value::Null => out.push((prefix.to_owned(), String::new())),
        Value::String(s) => out.push((prefix.to_owned(), spreadsheet_safe(s))),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// A text cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a
/// tab or carriage return before one) gets a leading `'`, as OWASP advises; crawled
/// pages are anyone's text.
pub(crate) fn spreadsheet_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// A CSV cell, quoted when it holds the delimiter, a quote or a line break.
pub(crate) fn csv_field(s: &str) -> String {
    csv_cell(s, ',')
}

fn csv_cell(s: &str, delimiter: char) -> String {
    if s.contains(['"', '\n', '\r']) || s.contains(delimiter) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Columns of one CSV export; the rest of an item's fields are left out.
const MAX_CSV_COLUMNS: usize = 2_000;

/// How a CSV export is written: its delimiter and whether it has a header row.
#[derive(Clone, Copy)]
struct CsvStyle {
    delimiter: char,
    header: bool,
}

impl Default for CsvStyle {
    fn default() -> Self {
        CsvStyle {
            delimiter: ',',
            header: true,
        }
    }
}

/// CSV; with `fields`, columns follow their order. Linear in the number of cells.
fn to_csv(items: &[Value], fields: Option<&[String]>, style: CsvStyle) -> String {
    let rows: Vec<Vec<(String, String)>> = items
        .iter()
        .map(|i| {
            let mut row = Vec::new();
            columns_of("", i, &mut row);
            row
        })
        .collect();
    let mut columns: Vec<String> = Vec::new();
    let mut known: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for row in &rows {
        for (k, _) in row {
            if columns.len() < MAX_CSV_COLUMNS && known.insert(k.as_str()) {
                columns.push(k.clone());
            }
        }
    }
    if let Some(fields) = fields {
        let rank = |c: &String| {
            let top = c.split('/').next().unwrap_or("");
            fields.iter().position(|f| f == top).unwrap_or(usize::MAX)
        };
        columns.sort_by_key(rank);
    }
    let index: std::collections::HashMap<&str, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let delimiter = style.delimiter.to_string();
    let mut out = String::new();
    if style.header {
        // Column names come from the items (a crawled site's, with `unwind`).
        let header: Vec<String> = (columns.iter())
            .map(|c| csv_cell(&spreadsheet_safe(c), style.delimiter))
            .collect();
        out.push_str(&header.join(&delimiter));
        out.push('\n');
    }
    let mut cells = vec![String::new(); columns.len()];
    for row in &rows {
        cells.iter_mut().for_each(String::clear);
        for (k, v) in row {
            if let Some(&i) = index.get(k.as_str()) {
                cells[i] = csv_cell(v, style.delimiter);
            }
        }
        out.push_str(&cells.join(&delimiter));
        out.push('\n');
    }
    out
}

/// The items, shaped by the query and written in its format, with Apify's
/// pagination headers (`count` is the items read, before shaping), the byte order
/// mark where it goes, and `Content-Disposition` for `attachment`.
pub(crate) fn respond(
    items: Vec<Value>,
    total: i64,
    query: &ItemsQuery,
    dataset_id: &str,
) -> Response {
    let count = items.len();
    let (content_type, body) = encode_items(shape(items, query), query);
    let csv = query.format == "csv";
    let body = if query.bom.unwrap_or(csv) {
        format!("\u{feff}{body}")
    } else {
        body
    };
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if query.attachment {
        // The dataset id is letters and digits; anything else is left out.
        let name: String = (dataset_id.chars())
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let value = format!("attachment; filename=\"dataset_{name}.{}\"", query.format);
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    pagination_headers(h, query, count, total);
    res
}

/// Dataset items in the query's format: JSON (an array), JSONL or CSV.
fn encode_items(items: Vec<Value>, query: &ItemsQuery) -> (&'static str, String) {
    let fields = query.fields.as_deref();
    match query.format.as_str() {
        "jsonl" => (
            "application/jsonl; charset=utf-8",
            items
                .iter()
                .map(|i| format!("{}\n", item_json(i, fields)))
                .collect::<String>(),
        ),
        "csv" => {
            let style = CsvStyle {
                delimiter: query.delimiter,
                header: !query.skip_header_row,
            };
            ("text/csv; charset=utf-8", to_csv(&items, fields, style))
        }
        _ => {
            let items: Vec<String> = items.iter().map(|i| item_json(i, fields)).collect();
            (
                "application/json; charset=utf-8",
                format!("[{}]", items.join(",")),
            )
        }
    }
}

/// An item as JSON; with `fields`, its fields in their order there, as Apify
/// writes them ("you can use this feature to effectively fix the output format").
fn item_json(item: &Value, fields: Option<&[String]>) -> String {
    let (Some(fields), Value::Object(map)) = (fields, item) else {
        return item.to_string();
    };
    let members: Vec<String> = fields
        .iter()
        .filter_map(|f| {
            map.get(f)
                .map(|v| format!("{}:{v}", Value::from(f.as_str())))
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Apify's `x-apify-pagination-*` headers of a dataset read.
fn pagination_headers(h: &mut HeaderMap, query: &ItemsQuery, count: usize, total: i64) {
    let limit = query
        .limit
        .map_or(total.max(0), |l| l)
        .min(agentbase_service::crawl_runs::MAX_ITEMS_PER_READ);
    h.insert(
        "x-apify-pagination-desc",
        HeaderValue::from_static(if query.desc { "true" } else { "false" }),
    );
    for (name, value) in [
        ("x-apify-pagination-offset", query.offset),
        ("x-apify-pagination-limit", limit),
        ("x-apify-pagination-count", count as i64),
        ("x-apify-pagination-total", total),
    ] {
        h.insert(name, HeaderValue::from(value));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(pairs: &[(&str, &str)]) -> QueryMap {
        QueryMap(
            (pairs.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn query(list: &[(&str, &str)]) -> ItemsQuery {
        items_query(&pairs(list)).unwrap()
    }

    #[test]
    fn csv_flattens_nested_fields_into_slash_columns_and_quotes() {
        let items = vec![
            json!({"url": "https://a", "crawl": {"depth": 0}, "text": "x, \"y\""}),
            json!({"url": "https://b", "crawl": {"depth": 1}, "metadata": {"title": null}}),
        ];
        assert_eq!(
            to_csv(&items, None, CsvStyle::default()),
            "crawl/depth,text,url,metadata/title\n0,\"x, \"\"y\"\"\",https://a,\n1,,https://b,\n"
        );
        let fields = ["url".to_owned(), "crawl".to_owned()];
        assert!(to_csv(&items, Some(&fields), CsvStyle::default()).starts_with("url,crawl/depth,"));
        // Column names are a crawled site's too: no formulas there either.
        let named = to_csv(&[json!({"+1+1": 2})], None, CsvStyle::default());
        assert!(named.starts_with("'+1+1\n"), "{named}");
        // Another delimiter quotes what holds it, and the header row can go.
        let style = CsvStyle {
            delimiter: ';',
            header: false,
        };
        assert_eq!(
            to_csv(&[json!({"a": "x;y", "b": "p,q"})], None, style),
            "\"x;y\";p,q\n"
        );
    }

    #[test]
    fn csv_cells_cannot_become_formulas_and_wide_items_stay_linear() {
        let items = vec![
            json!({"title": "=HYPERLINK(\"http://x\")", "a": "+1", "b": "-2", "c": "@SUM(A1)", "d": -3, "e": "fine"}),
        ];
        let csv = to_csv(&items, None, CsvStyle::default());
        let row = csv.lines().nth(1).unwrap();
        assert_eq!(
            row,
            "'+1,'-2,'@SUM(A1),-3,fine,\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        // 100,000 fields in one item: the export is capped and quick.
        let wide: Map<String, Value> = (0..100_000).map(|i| (format!("k{i}"), json!(i))).collect();
        let started = std::time::Instant::now();
        let csv = to_csv(&[Value::Object(wide)], None, CsvStyle::default());
        assert!(started.elapsed().as_secs() < 5);
        assert_eq!(
            csv.lines().next().unwrap().split(',').count(),
            MAX_CSV_COLUMNS
        );
    }

    #[test]
    fn clean_fields_and_omit_shape_items() {
        let items = vec![
            json!({"#debug": 1, "url": "u", "text": "t"}),
            json!({"#only": 2}),
        ];
        assert_eq!(
            shape(items.clone(), &query(&[("clean", "1")])),
            vec![json!({"url": "u", "text": "t"})]
        );
        assert_eq!(
            shape(items.clone(), &query(&[("fields", "url")])),
            vec![json!({"url": "u"}), json!({})]
        );
        assert_eq!(
            shape(
                items.clone(),
                &query(&[("clean", "true"), ("omit", "text")])
            ),
            vec![json!({"url": "u"})]
        );
        // skipHidden and skipEmpty each do their half of `clean`.
        assert_eq!(
            shape(items.clone(), &query(&[("skipHidden", "1")])),
            vec![json!({"url": "u", "text": "t"}), json!({})]
        );
        assert_eq!(
            shape(
                vec![json!({}), json!({"#a": 1})],
                &query(&[("skipEmpty", "1")])
            ),
            vec![json!({"#a": 1})]
        );
    }

    #[test]
    fn unwind_and_flatten_reshape_items_as_apify_does() {
        let item = json!({"url": "u", "links": [{"href": "a"}, {"href": "b"}], "tags": ["x", "y"],
            "metadata": {"title": "T", "og": {"type": "article"}}, "n": 1});
        let unwound = shape(vec![item.clone()], &query(&[("unwind", "links,tags")]));
        assert_eq!(unwound.len(), 4, "{unwound:?}");
        assert_eq!(unwound[0]["href"], "a");
        assert_eq!(unwound[0]["tags"], "x");
        assert_eq!(unwound[3]["href"], "b");
        assert_eq!(unwound[3]["tags"], "y");
        assert!(unwound.iter().all(|r| r.get("links").is_none()));
        let merged = shape(vec![item.clone()], &query(&[("unwind", "metadata,n,nope")]));
        assert_eq!(merged[0]["title"], "T");
        assert_eq!(merged[0]["n"], 1);
        let flat = shape(
            vec![item],
            &query(&[
                ("flatten", "metadata"),
                ("fields", "url,metadata.title,metadata.og.type"),
            ]),
        );
        assert_eq!(
            flat,
            vec![json!({"url": "u", "metadata.title": "T", "metadata.og.type": "article"})]
        );
        assert_eq!(
            shape(vec![json!({"e": []})], &query(&[("unwind", "e")])),
            Vec::<Value>::new()
        );
        // Two long arrays unwound multiply: the answer stops at its bound.
        let long: Vec<Value> = (0..1_000).map(Value::from).collect();
        let wide = json!({"a": long.clone(), "b": long});
        let out = shape(vec![wide], &query(&[("unwind", "a,b")]));
        assert_eq!(out.len(), MAX_UNWOUND);
    }

    #[tokio::test]
    async fn bad_delimiters_are_refused_and_csv_gets_a_byte_order_mark_by_default() {
        for bad in [";;", "\"", "\n"] {
            assert!(
                items_query(&pairs(&[("delimiter", bad)])).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(query(&[("delimiter", "\t")]).delimiter, '\t');
        let body = |list: &[(&str, &str)]| {
            let res = respond(vec![json!({"a": 1})], 1, &query(list), "ds1");
            async move {
                let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await;
                String::from_utf8(bytes.unwrap().to_vec()).unwrap()
            }
        };
        assert_eq!(body(&[("format", "csv")]).await, "\u{feff}a\n1\n");
        assert_eq!(body(&[("format", "csv"), ("bom", "0")]).await, "a\n1\n");
        assert_eq!(body(&[("bom", "1")]).await, "\u{feff}[{\"a\":1}]");
        assert_eq!(body(&[]).await, "[{\"a\":1}]");
        let res = respond(
            Vec::new(),
            0,
            &query(&[("attachment", "1"), ("format", "jsonl")]),
            "ds1",
        );
        assert_eq!(
            res.headers()[header::CONTENT_DISPOSITION],
            "attachment; filename=\"dataset_ds1.jsonl\""
        );
    }
}
