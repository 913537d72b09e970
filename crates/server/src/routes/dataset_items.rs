//! Apify's dataset item export (`GET /v2/datasets/{id}/items` and the run's, and
//! `run-sync-get-dataset-items`): the query, how items are shaped by it, and how they
//! are written in the seven formats Apify's clients ask for, with Apify's pagination
//! headers.
//!
//! - The query: `format`, `offset`, `limit`, `desc`, `clean`, `skipHidden`,
//!   `skipEmpty`, `fields`, `omit`, `unwind`, `flatten`, the legacy crawler's
//!   `skipFailedPages` and `simplified`, `bom`, `attachment`; for CSV `delimiter` and
//!   `skipHeaderRow`; for XML `xmlRoot` and `xmlRow`. `view` is refused (see
//!   [`VIEW_REFUSED`]).
//! - The formats, as Apify's API reference (apify-docs,
//!   `apify-api/openapi/paths/datasets/datasets@{datasetId}@items.yaml`) describes
//!   and exemplifies them: `json` (an array) and `jsonl` (a line per item); `csv`,
//!   `html` (a `<table>`) and `xlsx` (a workbook of one sheet), one table with nested
//!   objects flattened into `a/b` columns ([`Table`]); `xml` and `rss`, each item as
//!   elements ([`to_xml`], [`to_rss`]), property names that are not XML names
//!   escaped ([`xml_name`]).
//! - `Content-Type` is the one that reference names for each format
//!   ([`Format::content_type`]); `attachment` names the file
//!   `dataset_{id}.{format}`.
//! - Apify's byte order mark: by default on CSV only, `bom=1` or `bom=0` to choose
//!   (json, jsonl, xml, html and rss have none unless asked). XLSX is a zip file, so
//!   it never has one.
//!
//! Every writer is bounded by what it is given and recurses at most [`MAX_NESTING`]
//! levels; XML and HTML text is escaped and characters XML 1.0 cannot carry are
//! dropped ([`escape_into`]); spreadsheet cells cannot become formulas
//! ([`spreadsheet_safe`]). An export is written whole in memory, as the answer's
//! body, on a blocking thread (the route's `spawn_blocking`), from one read of at
//! most 16 MB of items.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{AutoEscape, Environment, context};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;
use crate::extract::QueryMap;

/// The formats Apify's dataset export writes (its clients offer exactly these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Jsonl,
    Csv,
    Html,
    Xlsx,
    Xml,
    Rss,
}

impl Format {
    /// The `format` parameter, in any case; `None` for anything else.
    fn parse(s: &str) -> Option<Format> {
        Some(match s.to_ascii_lowercase().as_str() {
            "json" => Format::Json,
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv,
            "html" => Format::Html,
            "xlsx" => Format::Xlsx,
            "xml" => Format::Xml,
            "rss" => Format::Rss,
            _ => return None,
        })
    }

    /// The format's name, which is also the attachment's extension.
    fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Html => "html",
            Format::Xlsx => "xlsx",
            Format::Xml => "xml",
            Format::Rss => "rss",
        }
    }

    /// The media types of Apify's API reference (its responses' `content` keys),
    /// with the charset of every text format.
    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Jsonl => "application/jsonl; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Xml => "application/xml; charset=utf-8",
            Format::Rss => "application/rss+xml; charset=utf-8",
        }
    }
}

/// What a dataset request asks for.
pub struct ItemsQuery {
    format: Format,
    pub(crate) offset: i64,
    pub(crate) limit: Option<i64>,
    pub(crate) desc: bool,
    skip_hidden: bool,
    skip_empty: bool,
    fields: Option<Vec<String>>,
    omit: Vec<String>,
    unwind: Vec<String>,
    flatten: Vec<String>,
    /// The legacy crawler's options (see [`legacy_pages`]).
    skip_failed_pages: bool,
    simplified: bool,
    /// The byte order mark (Apify's default for CSV only); never on XLSX.
    bom: Option<bool>,
    /// CSV only: the delimiter and whether the header row is left out.
    delimiter: char,
    skip_header_row: bool,
    /// XML only: the root element's and each item's element's names.
    xml_root: String,
    xml_row: String,
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

/// Why `view` is refused. Apify applies the named view of the dataset's schema (its
/// `transformation`: fields, unwind, flatten, …), and the Website Content Crawler's
/// schema is not public: its Output tab shows a "Text" and an "All fields" view, but
/// their ids and transformations could not be established. Rather than guess and
/// answer with other items than Apify would, every `view` gets a 400 naming the
/// parameters that do the same.
const VIEW_REFUSED: &str = "dataset views are not supported here (the actor's view definitions are \
     not known); choose the fields with fields, omit, unwind and flatten instead";

/// The longest `xmlRoot` or `xmlRow`.
const MAX_XML_NAME: usize = 256;

fn items_query(q: &QueryMap) -> Result<ItemsQuery, ApiError> {
    let mut details = BTreeMap::new();
    let format = Format::parse(q.get("format").unwrap_or("json")).unwrap_or_else(|| {
        let formats = "json, jsonl, csv, html, xlsx, xml or rss";
        details.insert("format".to_owned(), formats.to_owned());
        Format::Json
    });
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
    let delimiter = delimiter(q, &mut details);
    let xml_root = xml_name_param(q, "xmlRoot", "items", &mut details);
    let xml_row = xml_name_param(q, "xmlRow", "item", &mut details);
    if q.get("view").is_some() {
        details.insert("view".into(), VIEW_REFUSED.into());
    }
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
    // `simplified` stands for its own `fields` and `unwind` (see `legacy_pages`).
    let simplified = truthy(q.get("simplified"));
    Ok(ItemsQuery {
        format,
        offset,
        limit,
        desc: truthy(q.get("desc")),
        skip_hidden: clean || truthy(q.get("skipHidden")),
        skip_empty: clean || truthy(q.get("skipEmpty")),
        fields: list("fields").filter(|_| !simplified),
        omit: list("omit").unwrap_or_default(),
        unwind: list("unwind").filter(|_| !simplified).unwrap_or_default(),
        flatten: list("flatten").unwrap_or_default(),
        skip_failed_pages: truthy(q.get("skipFailedPages")),
        simplified,
        bom: q.get("bom").map(|v| truthy(Some(v))),
        delimiter,
        skip_header_row: truthy(q.get("skipHeaderRow")),
        xml_root,
        xml_row,
        attachment: truthy(q.get("attachment")),
    })
}

/// CSV's `delimiter`: one character, not a quote or a line break (`,` by default).
fn delimiter(q: &QueryMap, details: &mut BTreeMap<String, String>) -> char {
    let Some(d) = q.get("delimiter") else {
        return ',';
    };
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

/// `xmlRoot` or `xmlRow` (empty, like any parameter, is absent): the caller's own
/// element name, so one that [`xml_name`] would have to rewrite is refused rather than
/// rewritten.
fn xml_name_param(
    q: &QueryMap,
    key: &str,
    default: &str,
    details: &mut BTreeMap<String, String>,
) -> String {
    match q.get(key) {
        None => default.to_owned(),
        Some(name) if name.len() <= MAX_XML_NAME && xml_name(name) == name => name.to_owned(),
        Some(_) => {
            let problem = "must be an XML element name of at most 256 characters: ASCII letters, \
                           digits, '_', '-' and '.', starting with a letter or '_', not with 'xml'";
            details.insert(key.into(), problem.into());
            default.to_owned()
        }
    }
}

/// The items as the query shapes them: the legacy crawler's options first, then
/// `unwind`, then `flatten`, hidden fields and empty items dropped, then `fields` and
/// `omit`.
fn shape(items: Vec<Value>, q: &ItemsQuery) -> Vec<Value> {
    let items = legacy_pages(items, q);
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

/// What `simplified` keeps of a page (Apify: it "applies the
/// `fields=url,pageFunctionResult,errorInfo` and `unwind=pageFunctionResult` query
/// parameters").
const SIMPLIFIED_FIELDS: [&str; 3] = ["url", "pageFunctionResult", "errorInfo"];

/// The two options Apify keeps for the legacy Apify Crawler's results, as its API
/// reference documents them:
/// - `skipFailedPages` leaves out "the items with errorInfo property". The legacy
///   crawler writes `errorInfo` on every page, and a "false-ish value (empty string,
///   null or undefined)" when there was no error, so a page counts as failed when its
///   `errorInfo` is what JavaScript takes for true (not `null`, `false`, `0` or `""`).
/// - `simplified` picks `url`, `pageFunctionResult` and `errorInfo`, then unwinds
///   `pageFunctionResult`: a record per result of an array, an object's fields
///   merged in. It replaces the request's own `fields` and `unwind`, and it picks
///   before it unwinds (the general order is the other way round), because the
///   merged result's fields would otherwise be picked away again.
fn legacy_pages(items: Vec<Value>, q: &ItemsQuery) -> Vec<Value> {
    let items: Vec<Value> = if q.skip_failed_pages {
        items.into_iter().filter(|i| !failed_page(i)).collect()
    } else {
        items
    };
    if !q.simplified {
        return items;
    }
    let picked = items
        .into_iter()
        .map(|item| match item {
            Value::Object(mut map) => Value::Object(
                (SIMPLIFIED_FIELDS.iter())
                    .filter_map(|f| map.remove(*f).map(|v| ((*f).to_owned(), v)))
                    .collect(),
            ),
            other => other,
        })
        .collect();
    unwind(picked, "pageFunctionResult")
}

/// Whether an item is a failed page: its `errorInfo` is true to JavaScript.
fn failed_page(item: &Value) -> bool {
    match item.get("errorInfo") {
        None | Some(Value::Null | Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(_) => true,
    }
}

/// Records one answer may hold after `unwind` (two array fields unwound multiply):
/// the rest are left out.
const MAX_UNWOUND: usize = 100_000;

/// Bytes (as [`weight`] counts them) the records of one `unwind` may hold: each
/// record copies the rest of its item, so a page with several long arrays (a
/// crawled site's JSON-LD, say) unwound on each would otherwise multiply past any
/// memory. The records past it are left out.
const MAX_UNWOUND_BYTES: usize = 64 * 1024 * 1024;

/// About how many bytes `v` holds in memory: its text, and a little per value.
fn weight(v: &Value) -> usize {
    const NODE: usize = 16;
    match v {
        Value::String(s) => NODE + s.len(),
        Value::Array(a) => NODE + a.iter().map(weight).sum::<usize>(),
        Value::Object(m) => NODE + weight_of_map(m),
        _ => NODE,
    }
}

/// Apify's `unwind` of one field: an array makes a record per element (an object
/// element merged into the item, its keys winning; another value in the field's
/// place), an object is merged into the item; an item without the field, or with
/// another kind of value there, stays as it is. At most [`MAX_UNWOUND`] records,
/// holding at most [`MAX_UNWOUND_BYTES`] between them.
fn unwind(items: Vec<Value>, field: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(items.len());
    let mut held = 0usize;
    for item in items {
        if out.len() >= MAX_UNWOUND || held >= MAX_UNWOUND_BYTES {
            break;
        }
        let Value::Object(mut map) = item else {
            held += weight(&item);
            out.push(item);
            continue;
        };
        let removed = map.remove(field);
        let rest = weight_of_map(&map);
        match removed {
            Some(Value::Array(elements)) => {
                let room = MAX_UNWOUND - out.len();
                for element in elements.into_iter().take(room) {
                    held += rest + weight(&element);
                    if held > MAX_UNWOUND_BYTES {
                        break;
                    }
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
                held += rest + weight_of_map(&fields);
                map.extend(fields);
                out.push(Value::Object(map));
            }
            Some(other) => {
                held += rest + weight(&other);
                map.insert(field.to_owned(), other);
                out.push(Value::Object(map));
            }
            None => {
                held += rest;
                out.push(Value::Object(map));
            }
        }
    }
    out
}

fn weight_of_map(m: &Map<String, Value>) -> usize {
    m.iter().map(|(k, v)| k.len() + weight(v)).sum()
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

/// How deep the writers follow nested objects and arrays; a value deeper than this
/// is written as its JSON text. (Items read from the store are at most 128 deep
/// already; this keeps every writer's recursion bounded whatever it is given.)
const MAX_NESTING: usize = 128;

/// Columns of one CSV, HTML or XLSX export (Apify's limit for its tables); the rest
/// of an item's fields are left out.
const MAX_TABLE_COLUMNS: usize = 2_000;

/// A table cell's value: a leaf of an item.
enum Leaf<'a> {
    /// `null`: the column is there, the cell is empty.
    Empty,
    Text(Cow<'a, str>),
    Number(&'a Number),
    Bool(bool),
}

/// The table CSV, HTML and XLSX write: nested objects flattened to `a/b` columns
/// (array elements `a/0`), as Apify's CSV export does, in the order the items first
/// show them (with `fields`, in its order); each row holds its cells by column.
struct Table<'a> {
    columns: Vec<String>,
    rows: Vec<Vec<(usize, Leaf<'a>)>>,
}

impl<'a> Table<'a> {
    /// Linear in the number of cells.
    fn of(items: &'a [Value], fields: Option<&[String]>) -> Table<'a> {
        let leaves: Vec<Vec<(String, Leaf<'a>)>> = (items.iter())
            .map(|item| {
                let mut row = Vec::new();
                leaves_of(String::new(), item, 0, &mut row);
                row
            })
            .collect();
        let mut columns: Vec<String> = Vec::new();
        let mut known: HashSet<&str> = HashSet::new();
        for row in &leaves {
            for (k, _) in row {
                if columns.len() < MAX_TABLE_COLUMNS && known.insert(k.as_str()) {
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
        let index: HashMap<&str, usize> = (columns.iter().enumerate())
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let rows = (leaves.into_iter())
            .map(|row| {
                (row.into_iter())
                    .filter_map(|(k, leaf)| index.get(k.as_str()).map(|&i| (i, leaf)))
                    .collect()
            })
            .collect();
        Table { columns, rows }
    }

    /// Each row's cells in column order (`None` where the item has no value; where
    /// two leaves share a column, the later), through one reused buffer.
    fn each_row<E>(
        &self,
        mut f: impl FnMut(&[Option<&Leaf<'a>>]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut cells: Vec<Option<&Leaf<'a>>> = vec![None; self.columns.len()];
        for row in &self.rows {
            cells.iter_mut().for_each(|c| *c = None);
            for (i, leaf) in row {
                if let Some(cell) = cells.get_mut(*i) {
                    *cell = Some(leaf);
                }
            }
            f(&cells)?;
        }
        Ok(())
    }
}

/// An item's leaves under `prefix`, as `a/b` column names.
fn leaves_of<'a>(prefix: String, v: &'a Value, depth: usize, out: &mut Vec<(String, Leaf<'a>)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}/{k}")
        }
    };
    match v {
        Value::Object(m) if depth < MAX_NESTING => {
            for (k, v) in m {
                leaves_of(join(k), v, depth + 1, out);
            }
        }
        Value::Array(a) if depth < MAX_NESTING => {
            for (i, v) in a.iter().enumerate() {
                leaves_of(format!("{prefix}/{i}"), v, depth + 1, out);
            }
        }
        Value::Object(_) | Value::Array(_) => out.push((prefix, Leaf::Text(v.to_string().into()))),
        Value::Null => out.push((prefix, Leaf::Empty)),
        Value::String(s) => out.push((prefix, Leaf::Text(Cow::Borrowed(s)))),
        Value::Number(n) => out.push((prefix, Leaf::Number(n))),
        Value::Bool(b) => out.push((prefix, Leaf::Bool(*b))),
    }
}

/// A cell as text (CSV and HTML): text made safe for spreadsheets, numbers and
/// booleans as JSON writes them, `null` empty.
fn leaf_text<'s>(leaf: &'s Leaf<'_>) -> Cow<'s, str> {
    match leaf {
        Leaf::Empty => Cow::Borrowed(""),
        Leaf::Text(s) => Cow::Owned(spreadsheet_safe(s)),
        Leaf::Number(n) => Cow::Owned(n.to_string()),
        Leaf::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
    }
}

/// A text cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a
/// tab or carriage return before one) gets a leading `'`, as OWASP advises; crawled
/// pages are anyone's text. Every table format gets it: CSV and XLSX are opened by
/// spreadsheets, and so is an HTML table (Excel opens one as a sheet).
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
    let table = Table::of(items, fields);
    let delimiter = style.delimiter.to_string();
    let mut out = String::new();
    if style.header {
        // Column names come from the items (a crawled site's, with `unwind`).
        let header: Vec<String> = (table.columns.iter())
            .map(|c| csv_cell(&spreadsheet_safe(c), style.delimiter))
            .collect();
        out.push_str(&header.join(&delimiter));
        out.push('\n');
    }
    let Ok(()) = table.each_row(|cells| -> Result<(), Infallible> {
        let line: Vec<String> = (cells.iter())
            .map(|c| c.map_or(String::new(), |l| csv_cell(&leaf_text(l), style.delimiter)))
            .collect();
        out.push_str(&line.join(&delimiter));
        out.push('\n');
        Ok(())
    });
    out
}

/// One row of the HTML table (`header` for the column names), auto-escaped.
const HTML_ROW: &str = "<tr>{% for cell in cells %}{% if header %}<th>{{ cell }}</th>\
    {% else %}<td>{{ cell }}</td>{% endif %}{% endfor %}</tr>";

/// The HTML table's row template: minijinja with HTML auto-escaping through
/// [`escape_into`], so every cell is escaped and what XML and HTML cannot carry
/// (NUL and the other control characters) is dropped.
fn html_rows() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_formatter(|out, state, value| match value.as_str() {
            Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
                let mut escaped = String::with_capacity(text.len());
                escape_into(&mut escaped, text, false);
                out.write_str(&escaped).map_err(minijinja::Error::from)
            }
            _ => minijinja::escape_formatter(out, state, value),
        });
        // A constant template, rendered by the unit tests: an error here fails them.
        if let Err(e) = env.add_template("row.html", HTML_ROW) {
            tracing::error!(error = %e, "the dataset table template does not parse");
        }
        env
    })
}

/// The items as Apify's HTML export: one `<table>`, a `<th>` row of the column names
/// and a `<tr>` of `<td>` cells per item (the reference's example,
/// `<table><tr><th>foo</th>…</tr><tr><td>foo</td>…</tr></table>`), nothing around it.
fn to_html(items: &[Value], fields: Option<&[String]>) -> Result<String, minijinja::Error> {
    let table = Table::of(items, fields);
    let row = html_rows().get_template("row.html")?;
    let mut out = String::from("<table>");
    let names: Vec<String> = table.columns.iter().map(|c| spreadsheet_safe(c)).collect();
    out.push_str(&row.render(context! { header => true, cells => names })?);
    table.each_row(|cells| {
        let cells: Vec<Cow<str>> = (cells.iter())
            .map(|c| c.map_or(Cow::Borrowed(""), leaf_text))
            .collect();
        out.push_str(&row.render(context! { header => false, cells => cells })?);
        Ok::<(), minijinja::Error>(())
    })?;
    out.push_str("</table>");
    Ok(out)
}

/// Excel's limit on a cell's text (UTF-16 units); longer text is cut there.
const EXCEL_CELL_CHARS: usize = 32_767;

/// Excel's limit on a sheet's rows (the header row included); later rows are left
/// out.
const EXCEL_ROWS: usize = 1_048_576;

/// The parts of the workbook besides its sheet: the package's content types and
/// relationships, a workbook of one sheet, and the one cell style Excel expects.
const XLSX_PARTS: [(&str, &str); 5] = [
    (
        "[Content_Types].xml",
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
            "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">",
            "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>",
            "<Default Extension=\"xml\" ContentType=\"application/xml\"/>",
            "<Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>",
            "<Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>",
            "<Override PartName=\"/xl/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>",
            "</Types>"
        ),
    ),
    (
        "_rels/.rels",
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
            "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
            "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/>",
            "</Relationships>"
        ),
    ),
    (
        "xl/workbook.xml",
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
            "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" ",
            "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">",
            "<sheets><sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"
        ),
    ),
    (
        "xl/_rels/workbook.xml.rels",
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
            "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
            "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/>",
            "<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" Target=\"styles.xml\"/>",
            "</Relationships>"
        ),
    ),
    (
        "xl/styles.xml",
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
            "<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">",
            "<fonts count=\"1\"><font><sz val=\"11\"/><name val=\"Calibri\"/></font></fonts>",
            "<fills count=\"2\"><fill><patternFill patternType=\"none\"/></fill>",
            "<fill><patternFill patternType=\"gray125\"/></fill></fills>",
            "<borders count=\"1\"><border><left/><right/><top/><bottom/><diagonal/></border></borders>",
            "<cellStyleXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\"/></cellStyleXfs>",
            "<cellXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\"/></cellXfs>",
            "<cellStyles count=\"1\"><cellStyle name=\"Normal\" xfId=\"0\" builtinId=\"0\"/></cellStyles>",
            "</styleSheet>"
        ),
    ),
];

/// The items as an Excel workbook (Office Open XML, what Excel, LibreOffice and
/// openpyxl open): the table of [`Table`] on one sheet, the column names in its
/// first row. Text is written as inline strings, formula-safe ([`spreadsheet_safe`])
/// and cut at Excel's 32,767 characters; numbers as numbers (integers beyond 2^53,
/// which a spreadsheet's doubles would round, as text); booleans as booleans.
fn to_xlsx(items: &[Value], fields: Option<&[String]>) -> zip::result::ZipResult<Vec<u8>> {
    let sheet = sheet_xml(&Table::of(items, fields));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let parts = XLSX_PARTS.iter().copied();
    for (name, part) in parts.chain([("xl/worksheets/sheet1.xml", sheet.as_str())]) {
        zip.start_file(name, options)?;
        zip.write_all(part.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// The worksheet's XML: a `<row>` per row, a `<c>` per cell that has a value.
fn sheet_xml(table: &Table) -> String {
    let mut out = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
        "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">",
        "<sheetData><row r=\"1\">"
    ));
    let letters: Vec<String> = (0..table.columns.len()).map(column_letters).collect();
    for (name, column) in table.columns.iter().zip(&letters) {
        inline_string(&mut out, column, 1, &spreadsheet_safe(name));
    }
    out.push_str("</row>");
    let mut row = 1;
    let Ok(()) = table.each_row(|cells| -> Result<(), Infallible> {
        if row >= EXCEL_ROWS {
            return Ok(());
        }
        row += 1;
        let _ = write!(out, "<row r=\"{row}\">");
        for (cell, column) in cells.iter().zip(&letters) {
            if let Some(leaf) = cell {
                xlsx_cell(&mut out, column, row, leaf);
            }
        }
        out.push_str("</row>");
        Ok(())
    });
    out.push_str("</sheetData></worksheet>");
    out
}

/// Integers up to this size are exact in a spreadsheet's doubles.
const EXACT_IN_DOUBLES: u64 = 1 << 53;

fn xlsx_cell(out: &mut String, column: &str, row: usize, leaf: &Leaf) {
    match leaf {
        Leaf::Empty => {}
        Leaf::Bool(b) => {
            let _ = write!(
                out,
                "<c r=\"{column}{row}\" t=\"b\"><v>{}</v></c>",
                u8::from(*b)
            );
        }
        Leaf::Number(n) => {
            let exact = match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.unsigned_abs() <= EXACT_IN_DOUBLES,
                (None, Some(u)) => u <= EXACT_IN_DOUBLES,
                (None, None) => true,
            };
            if exact {
                let _ = write!(out, "<c r=\"{column}{row}\"><v>{n}</v></c>");
            } else {
                inline_string(out, column, row, &n.to_string());
            }
        }
        Leaf::Text(s) => inline_string(out, column, row, &spreadsheet_safe(s)),
    }
}

/// A text cell: escaped, what XML cannot carry dropped, cut at [`EXCEL_CELL_CHARS`].
fn inline_string(out: &mut String, column: &str, row: usize, text: &str) {
    let _ = write!(
        out,
        "<c r=\"{column}{row}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">"
    );
    let mut units = 0;
    let mut end = text.len();
    for (i, c) in text.char_indices() {
        if xml_char(c) {
            units += c.len_utf16();
            if units > EXCEL_CELL_CHARS {
                end = i;
                break;
            }
        }
    }
    escape_into(out, text.get(..end).unwrap_or(""), false);
    out.push_str("</t></is></c>");
}

/// A column's letters: 0 is `A`, 25 `Z`, 26 `AA`.
fn column_letters(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// Whether XML 1.0 allows `c` in a document: tab, line feed, carriage return and
/// everything from U+0020 on but U+FFFE and U+FFFF (Rust strings hold no
/// surrogates).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// `text` as XML 1.0 (and HTML) character data: `& < > " '` as entities, a carriage
/// return as `&#13;` (a parser would otherwise read it as a line feed), and in an
/// attribute value tabs and line feeds as references too (a parser would read them as
/// spaces). The characters XML 1.0 does not allow in a document (NUL and the other
/// C0 controls but tab, LF and CR; U+FFFE and U+FFFF) are dropped: no parser would
/// read a document that held them, and no reference can stand for them.
fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c if xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// The items as Apify's XML export: the root element `xmlRoot` (`items`), an
/// `xmlRow` element (`item`) per item, each written by [`xml_element`]; indented by
/// two spaces, as the reference's examples are.
fn to_xml(items: &[Value], root: &str, row: &str) -> String {
    let mut out = String::from(XML_DECLARATION);
    let _ = writeln!(out, "<{root}>");
    for item in items {
        xml_element(&mut out, row, item, 1, 0);
    }
    let _ = writeln!(out, "</{root}>");
    out
}

/// The items as Apify's RSS export: the reference's shape,
/// `<rss><channel><item>…</item>…</channel></rss>`, each item written as XML's are
/// (`xmlRoot` and `xmlRow` are XML's alone: RSS's elements have fixed names).
fn to_rss(items: &[Value]) -> String {
    let mut out = String::from(XML_DECLARATION);
    out.push_str("<rss>\n  <channel>\n");
    for item in items {
        xml_element(&mut out, "item", item, 2, 0);
    }
    out.push_str("  </channel>\n</rss>\n");
    out
}

/// One value as elements named `name` (already an XML name), as Apify's API
/// reference describes its XML: an object's properties become child elements; an
/// array repeats the element once per value (`{"a": [1, 2]}` is `<a>1</a><a>2</a>`,
/// an empty array writes nothing); `null` is an empty element; text, numbers and
/// booleans are the element's text. Apify's "XML format extension" is honoured too:
/// an object's `@` object gives the element's attributes, its `#` property the text.
/// Property names go through [`xml_name`]. Past [`MAX_NESTING`] levels a value is
/// written as its JSON text.
fn xml_element(out: &mut String, name: &str, value: &Value, indent: usize, nesting: usize) {
    match value {
        Value::Object(_) | Value::Array(_) if nesting >= MAX_NESTING => {
            xml_leaf(out, name, &value.to_string(), indent);
        }
        Value::Array(values) => {
            for v in values {
                xml_element(out, name, v, indent, nesting + 1);
            }
        }
        Value::Object(map) => xml_object(out, name, map, indent, nesting),
        Value::Null => {
            pad(out, indent);
            let _ = writeln!(out, "<{name}/>");
        }
        other => xml_leaf(out, name, &text_of(other), indent),
    }
}

/// `<name>text</name>` on a line of its own.
fn xml_leaf(out: &mut String, name: &str, text: &str, indent: usize) {
    pad(out, indent);
    let _ = write!(out, "<{name}>");
    escape_into(out, text, false);
    let _ = writeln!(out, "</{name}>");
}

/// An object's element: `@`'s attributes, then its properties as children (`#` as
/// text: alone, inline; among children, a line of its own in their order).
fn xml_object(
    out: &mut String,
    name: &str,
    map: &Map<String, Value>,
    indent: usize,
    nesting: usize,
) {
    pad(out, indent);
    let _ = write!(out, "<{name}");
    let attributes = match map.get("@") {
        Some(Value::Object(attributes)) => Some(attributes),
        _ => None,
    };
    if let Some(attributes) = attributes {
        xml_attributes(out, attributes);
    }
    let children: Vec<(&String, &Value)> = (map.iter())
        .filter(|(k, _)| !(attributes.is_some() && k.as_str() == "@"))
        .collect();
    match children.as_slice() {
        [] => {
            out.push_str("/>\n");
            return;
        }
        [(k, v)] if k.as_str() == "#" => {
            out.push('>');
            escape_into(out, &text_of(v), false);
            let _ = writeln!(out, "</{name}>");
            return;
        }
        _ => out.push_str(">\n"),
    }
    for (k, v) in children {
        if k == "#" {
            pad(out, indent + 1);
            escape_into(out, &text_of(v), false);
            out.push('\n');
        } else {
            xml_element(out, &xml_name(k), v, indent + 1, nesting + 1);
        }
    }
    pad(out, indent);
    let _ = writeln!(out, "</{name}>");
}

/// ` name="value"` per attribute; two whose names [`xml_name`] makes the same keep
/// the first (XML allows an attribute once per element).
fn xml_attributes(out: &mut String, attributes: &Map<String, Value>) {
    let mut written = HashSet::new();
    for (k, v) in attributes {
        let name = xml_name(k);
        if !written.insert(name.clone()) {
            continue;
        }
        let _ = write!(out, " {name}=\"");
        escape_into(out, &text_of(v), true);
        out.push('"');
    }
}

/// A value as element text: strings as they are, `null` as nothing, numbers and
/// booleans (and, past the nesting bound or in `@`/`#`, objects and arrays) as JSON.
fn text_of(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n("  ", indent));
}

/// A property name as an XML element or attribute name that every XML 1.0 parser
/// reads. Items are anyone's JSON (a crawled page's JSON-LD has `@context` and
/// `@type`; headers, `unwind` and `flatten` bring other names), and an element name
/// is much narrower than a JSON key; Apify does not document what it does with one
/// that is not a name, so this is decided here:
/// - ASCII letters, digits, `_`, `-` and `.` are kept;
/// - any other character is written `_xHHHH_`, its code point in hex (the escape
///   Excel and SQL Server use for the same problem), so `@type` becomes
///   `_x0040_type`, `a b` `a_x0020_b` and `název` `n_x00E1_zev`: non-ASCII letters
///   too, since parsers disagree on them (expat, behind Python's ElementTree, keeps
///   XML's older name classes and refuses many newer letters), and `:` too, since a
///   namespace-aware parser would take what precedes it for an undeclared prefix;
/// - a name that would start with a digit, `-` or `.`, is empty, or starts with
///   `xml` in any case (names XML reserves) gets a leading `_`.
///
/// The result is never empty and is always a valid name.
fn xml_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    for c in key.chars() {
        if c.is_ascii_alphabetic() || c == '_' {
            name.push(c);
        } else if c.is_ascii_digit() || c == '-' || c == '.' {
            if name.is_empty() {
                name.push('_');
            }
            name.push(c);
        } else {
            let _ = write!(name, "_x{:04X}_", u32::from(c));
        }
    }
    let reserved = name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"));
    if name.is_empty() || reserved {
        name.insert(0, '_');
    }
    name
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The items, shaped by the query and written in its format, with Apify's
/// pagination headers (`count` is the items read, before shaping), the byte order
/// mark where it goes (never on XLSX, a zip file), and `Content-Disposition` for
/// `attachment`.
pub(crate) fn respond(
    items: Vec<Value>,
    total: i64,
    query: &ItemsQuery,
    dataset_id: &str,
) -> Response {
    let count = items.len();
    let items = shape(items, query);
    let mut body = match encode_items(&items, query) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(error = %error, format = query.format.name(), "a dataset export failed");
            return ApiError::internal().into_response();
        }
    };
    let format = query.format;
    if format != Format::Xlsx && query.bom.unwrap_or(format == Format::Csv) {
        body.splice(0..0, BOM.iter().copied());
    }
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if query.attachment {
        // The dataset id is letters and digits; anything else is left out.
        let name: String = (dataset_id.chars())
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let value = format!("attachment; filename=\"dataset_{name}.{}\"", format.name());
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    pagination_headers(h, query, count, total);
    res
}

/// What writing an export can fail with (the HTML template, the zip writer).
type ExportError = Box<dyn std::error::Error + Send + Sync>;

/// Dataset items in the query's format.
fn encode_items(items: &[Value], query: &ItemsQuery) -> Result<Vec<u8>, ExportError> {
    let fields = query.fields.as_deref();
    Ok(match query.format {
        Format::Json => {
            let items: Vec<String> = items.iter().map(|i| item_json(i, fields)).collect();
            format!("[{}]", items.join(",")).into_bytes()
        }
        Format::Jsonl => (items.iter())
            .map(|i| format!("{}\n", item_json(i, fields)))
            .collect::<String>()
            .into_bytes(),
        Format::Csv => {
            let style = CsvStyle {
                delimiter: query.delimiter,
                header: !query.skip_header_row,
            };
            to_csv(items, fields, style).into_bytes()
        }
        Format::Html => to_html(items, fields)?.into_bytes(),
        Format::Xlsx => to_xlsx(items, fields)?,
        Format::Xml => to_xml(items, &query.xml_root, &query.xml_row).into_bytes(),
        Format::Rss => to_rss(items).into_bytes(),
    })
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
            MAX_TABLE_COLUMNS
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
        // Each record copies the rest of its item: three long arrays of text (a
        // crawled page's) stop at the byte bound, long before the record bound.
        let text: Vec<Value> = (0..2_000).map(|i| json!(format!("{i:0>2000}"))).collect();
        let page = json!({"a": text.clone(), "b": text.clone(), "c": text});
        let out = shape(vec![page], &query(&[("unwind", "a,b,c")]));
        let held: usize = out.iter().map(weight).sum();
        assert!(out.len() < MAX_UNWOUND && !out.is_empty(), "{}", out.len());
        assert!(held <= MAX_UNWOUND_BYTES + 500_000, "{held} bytes");
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

    /// The body of an answer.
    async fn bytes_of(res: Response) -> Vec<u8> {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 26).await;
        bytes.unwrap().to_vec()
    }

    /// The `details` of a refused query, as the error envelope carries them.
    async fn refusal(list: &[(&str, &str)]) -> Value {
        let Err(e) = items_query(&pairs(list)) else {
            panic!("{list:?} is accepted");
        };
        let res = e.into_response();
        assert_eq!(res.status(), 400, "{list:?}");
        let body: Value = serde_json::from_slice(&bytes_of(res).await).unwrap();
        assert_eq!(body["error"]["code"], "VALIDATION_INVALID_BODY");
        body["error"]["details"].clone()
    }

    #[test]
    fn xml_nests_objects_repeats_arrays_and_takes_its_root_and_row_names() {
        // (Keys in sorted order: the map keeps them so either way.)
        let items = vec![
            json!({"crawl": {"depth": 0, "loadedUrl": "https://a/"}, "n": null, "none": [],
                "ok": true, "tags": ["x", "y"], "url": "https://a/"}),
            json!({"url": "https://b/"}),
        ];
        assert_eq!(
            to_xml(&items, "items", "item"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<items>\n  <item>\n    <crawl>\n      \
             <depth>0</depth>\n      <loadedUrl>https://a/</loadedUrl>\n    </crawl>\n    <n/>\n    \
             <ok>true</ok>\n    <tags>x</tags>\n    <tags>y</tags>\n    <url>https://a/</url>\n  \
             </item>\n  <item>\n    <url>https://b/</url>\n  </item>\n</items>\n"
        );
        let q = query(&[("format", "xml"), ("xmlRoot", "pages"), ("xmlRow", "page")]);
        let xml = String::from_utf8(encode_items(&items, &q).unwrap()).unwrap();
        assert!(xml.contains("\n<pages>\n  <page>\n    <crawl>\n"), "{xml}");
        assert!(xml.ends_with("  </page>\n</pages>\n"), "{xml}");
        // Empty names are the defaults; no items is an empty root.
        let q = query(&[("format", "xml"), ("xmlRoot", ""), ("xmlRow", "")]);
        assert_eq!((q.xml_root.as_str(), q.xml_row.as_str()), ("items", "item"));
        assert_eq!(
            to_xml(&[], "items", "item"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<items>\n</items>\n"
        );
    }

    #[test]
    fn xml_follows_the_examples_of_apifys_api_reference() {
        let compact = |item: Value| -> String {
            (to_xml(&[item], "items", "item").lines())
                .map(str::trim)
                .collect()
        };
        let paul = json!({"address": [{"city": "Chicago", "street": "21st", "type": "home"},
            {"city": null, "street": null, "type": "office"}], "name": "Paul Newman"});
        let xml = compact(paul);
        assert!(
            xml.contains(
                "<item><address><city>Chicago</city><street>21st</street><type>home</type></address>\
                 <address><city/><street/><type>office</type></address><name>Paul Newman</name></item>"
            ),
            "{xml}"
        );
        let attributes = json!({"address": [{"@": {"type": "home"}, "city": "Chicago", "street": "21st"},
            {"#": "unknown", "@": {"type": "office"}}]});
        let xml = compact(attributes);
        assert!(
            xml.contains(
                "<address type=\"home\"><city>Chicago</city><street>21st</street></address>\
                 <address type=\"office\">unknown</address>"
            ),
            "{xml}"
        );
        // `@` that is not an object is an ordinary property; `#` among children is text.
        assert!(compact(json!({"@": 5})).contains("<_x0040_>5</_x0040_>"));
        assert!(compact(json!({"#": "t", "a": 1})).contains("<item>t<a>1</a></item>"));
    }

    #[test]
    fn names_that_are_not_xml_names_are_escaped_and_no_attribute_repeats() {
        for (key, name) in [
            ("url", "url"),
            ("ok-1.2_", "ok-1.2_"),
            ("@type", "_x0040_type"),
            ("a b", "a_x0020_b"),
            ("název", "n_x00E1_zev"),
            ("1st", "_1st"),
            ("-x", "_-x"),
            ("", "_"),
            ("xmlns", "_xmlns"),
            ("XMLish", "_XMLish"),
            ("a:b", "a_x003A_b"),
            ("<a>", "_x003C_a_x003E_"),
            ("😀", "_x1F600_"),
            ("\u{0}", "_x0000_"),
        ] {
            assert_eq!(xml_name(key), name, "{key:?}");
        }
        let item = json!({"1": "one", "@": {"a b": 1, "a_x0020_b": 2, "q": "\"<&>'\n\t\r\u{1}"},
            "@context": "https://schema.org"});
        let xml = to_xml(&[item], "items", "item");
        assert!(
            xml.contains("<item a_x0020_b=\"1\" q=\"&quot;&lt;&amp;&gt;&#39;&#10;&#9;&#13;\">"),
            "{xml}"
        );
        assert!(xml.contains("<_1>one</_1>"), "{xml}");
        assert!(
            xml.contains("<_x0040_context>https://schema.org</_x0040_context>"),
            "{xml}"
        );
    }

    #[test]
    fn xml_text_is_escaped_and_characters_xml_cannot_carry_are_dropped() {
        let text = "<script>alert('x')</script> & \u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}ok\u{fffe}\u{ffff}\
                    \r\n\t\u{7f}é😀]]>";
        let xml = to_xml(&[json!({ "t": text })], "items", "item");
        assert!(
            xml.contains(
                "<t>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; ok&#13;\n\t\u{7f}é😀]]&gt;</t>"
            ),
            "{xml:?}"
        );
        assert!(
            xml.chars().all(xml_char),
            "only characters XML allows: {xml:?}"
        );
        let rss = to_rss(&[json!({ "t": text })]);
        assert!(
            rss.chars().all(xml_char) && rss.contains("ok&#13;"),
            "{rss:?}"
        );
    }

    #[test]
    fn rss_is_one_channel_of_items() {
        assert_eq!(
            to_rss(&[json!({"title": "A & B", "url": "https://a/"})]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss>\n  <channel>\n    <item>\n      \
             <title>A &amp; B</title>\n      <url>https://a/</url>\n    </item>\n  </channel>\n</rss>\n"
        );
        // xmlRoot and xmlRow are XML's alone.
        let q = query(&[("format", "rss"), ("xmlRoot", "x"), ("xmlRow", "y")]);
        let rss = String::from_utf8(encode_items(&[json!({"a": 1})], &q).unwrap()).unwrap();
        assert!(
            rss.contains("<rss>\n  <channel>\n    <item>\n      <a>1</a>\n    </item>"),
            "{rss}"
        );
    }

    #[test]
    fn deeply_nested_items_are_written_to_a_bounded_depth() {
        let mut deep = json!("bottom");
        for _ in 0..300 {
            deep = json!({ "d": [deep] });
        }
        let items = vec![json!({ "deep": deep })];
        let xml = to_xml(&items, "items", "item");
        assert!(xml.contains("bottom") && xml.ends_with("</items>\n"));
        let indents = xml.lines().map(|l| l.len() - l.trim_start().len());
        assert!(indents.max().unwrap() <= 2 * (MAX_NESTING + 2));
        let table = Table::of(&items, None);
        assert_eq!(table.columns.len(), 1);
        assert!(table.columns[0].matches('/').count() <= MAX_NESTING);
        assert!(to_html(&items, None).unwrap().contains("bottom"));
        assert!(to_csv(&items, None, CsvStyle::default()).contains("bottom"));
    }

    #[test]
    fn html_is_a_table_with_every_cell_escaped() {
        let items = vec![
            json!({"a": "<img src=x onerror=alert(1)>", "b": "=1+1", "c": 3, "d": null, "e": true}),
            json!({"a": "x\u{0}y & \"z\"", "f": {"g": "h"}}),
        ];
        assert_eq!(
            to_html(&items, None).unwrap(),
            "<table><tr><th>a</th><th>b</th><th>c</th><th>d</th><th>e</th><th>f/g</th></tr>\
             <tr><td>&lt;img src=x onerror=alert(1)&gt;</td><td>&#39;=1+1</td><td>3</td><td></td>\
             <td>true</td><td></td></tr><tr><td>xy &amp; &quot;z&quot;</td><td></td><td></td><td></td>\
             <td></td><td>h</td></tr></table>"
        );
        // Column names are a crawled site's too.
        let named = to_html(&[json!({"<b>": 1, "-x": 2})], None).unwrap();
        assert!(
            named.starts_with("<table><tr><th>&#39;-x</th><th>&lt;b&gt;</th></tr>"),
            "{named}"
        );
    }

    #[test]
    fn xlsx_is_a_zip_whose_sheet_holds_the_cells() {
        use std::io::Read;
        let items = vec![
            json!({"url": "https://a/", "n": 42, "big": 9_007_199_254_740_993u64,
            "ok": false, "formula": "=HYPERLINK(\"http://x\")", "ctl": "a\u{1}b\u{0}\u{ffff}",
            "long": "é".repeat(40_000), "wide": "😀".repeat(20_000), "nested": {"x": "<y>"}, "f": 1.5}),
        ];
        let fields: Vec<String> = "url,n,big,ok,formula,ctl,long,wide,nested,f"
            .split(',')
            .map(str::to_owned)
            .collect();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(
            to_xlsx(&items, Some(&fields)).unwrap(),
        ))
        .unwrap();
        let mut names: Vec<&str> = zip.file_names().collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "[Content_Types].xml",
                "_rels/.rels",
                "xl/_rels/workbook.xml.rels",
                "xl/styles.xml",
                "xl/workbook.xml",
                "xl/worksheets/sheet1.xml"
            ]
        );
        let mut sheet = String::new();
        let mut part = zip.by_name("xl/worksheets/sheet1.xml").unwrap();
        part.read_to_string(&mut sheet).unwrap();
        let text = |r: &str, t: &str| {
            format!("<c r=\"{r}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{t}</t></is></c>")
        };
        assert!(sheet.contains(&format!("<row r=\"1\">{}", text("A1", "url"))));
        assert!(sheet.contains(&format!("<row r=\"2\">{}", text("A2", "https://a/"))));
        assert!(sheet.contains("<c r=\"B2\"><v>42</v></c>"), "a number");
        assert!(
            sheet.contains(&text("C2", "9007199254740993")),
            "beyond doubles: text"
        );
        assert!(
            sheet.contains("<c r=\"D2\" t=\"b\"><v>0</v></c>"),
            "a boolean"
        );
        assert!(sheet.contains(&text("E2", "&#39;=HYPERLINK(&quot;http://x&quot;)")));
        assert!(
            sheet.contains(&text("F2", "ab")),
            "control characters dropped"
        );
        assert!(
            sheet.contains(&text("G2", &"é".repeat(EXCEL_CELL_CHARS))),
            "cut"
        );
        assert!(
            sheet.contains(&text("H2", &"😀".repeat(EXCEL_CELL_CHARS / 2))),
            "cut"
        );
        assert!(
            sheet.contains(&text("I1", "nested/x")) && sheet.contains(&text("I2", "&lt;y&gt;"))
        );
        assert!(sheet.contains("<c r=\"J2\"><v>1.5</v></c>"));
        assert!(sheet.ends_with("</row></sheetData></worksheet>"));
        assert!(sheet.chars().all(xml_char));
        drop(part);
        let mut workbook = String::new();
        zip.by_name("xl/workbook.xml")
            .unwrap()
            .read_to_string(&mut workbook)
            .unwrap();
        assert!(workbook.contains("<sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/>"));
        for (i, letters) in [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (701, "ZZ"),
            (702, "AAA"),
            (1_999, "BXX"),
        ] {
            assert_eq!(column_letters(i), letters);
        }
    }

    #[test]
    fn skip_failed_pages_and_simplified_read_the_legacy_crawlers_results() {
        let pages = vec![
            json!({"url": "a", "errorInfo": null, "loadedUrl": "a",
                "pageFunctionResult": [{"title": "A1"}, {"title": "A2"}]}),
            json!({"url": "b", "errorInfo": "Timed out", "pageFunctionResult": null}),
            json!({"url": "c", "errorInfo": "", "pageFunctionResult": {"title": "C"}}),
            json!({"url": "d", "pageFunctionResult": "plain"}),
        ];
        let urls = |items: Vec<Value>| -> Vec<String> {
            (items.iter())
                .map(|i| i["url"].as_str().unwrap_or("?").to_owned())
                .collect()
        };
        let kept = shape(pages.clone(), &query(&[("skipFailedPages", "1")]));
        assert_eq!(urls(kept), ["a", "c", "d"]);
        assert_eq!(urls(shape(pages.clone(), &query(&[]))).len(), 4);
        // `simplified` stands for its own fields and unwind, whatever the request says.
        let q = query(&[
            ("simplified", "1"),
            ("skipFailedPages", "true"),
            ("fields", "loadedUrl"),
            ("unwind", "url"),
        ]);
        assert_eq!(
            shape(pages, &q),
            vec![
                json!({"url": "a", "errorInfo": null, "title": "A1"}),
                json!({"url": "a", "errorInfo": null, "title": "A2"}),
                json!({"url": "c", "errorInfo": "", "title": "C"}),
                json!({"url": "d", "pageFunctionResult": "plain"}),
            ]
        );
        for (info, failed) in [
            (json!(0), false),
            (json!(0.0), false),
            (json!(false), false),
            (json!(1), true),
            (json!(true), true),
            (json!({}), true),
            (json!([]), true),
        ] {
            assert_eq!(failed_page(&json!({ "errorInfo": info })), failed, "{info}");
        }
        assert!(!failed_page(&json!("errorInfo")));
    }

    #[tokio::test]
    async fn views_bad_formats_and_xml_names_that_are_not_names_are_refused() {
        let details = refusal(&[("view", "overview")]).await;
        assert!(details["view"].as_str().unwrap().contains("not supported"));
        for format in ["xml\0", "yaml", "xls", " json"] {
            let details = refusal(&[("format", format)]).await;
            assert!(
                details["format"].as_str().unwrap().contains("xlsx"),
                "{format:?}"
            );
        }
        let long = "a".repeat(MAX_XML_NAME + 1);
        for (key, bad) in [
            ("xmlRoot", "<a>"),
            ("xmlRoot", "a:b"),
            ("xmlRoot", long.as_str()),
            ("xmlRow", "1row"),
            ("xmlRow", "xmlRow"),
            ("xmlRow", "a b"),
            ("xmlRow", "row\0"),
        ] {
            let details = refusal(&[(key, bad)]).await;
            assert!(details[key].is_string(), "{key}={bad:?}: {details}");
        }
        let q = query(&[
            ("format", "XLSX"),
            ("xmlRoot", "products"),
            ("xmlRow", "product_1.x-y"),
            ("view", ""),
        ]);
        assert_eq!(q.format, Format::Xlsx);
        assert_eq!(q.xml_row, "product_1.x-y");
    }

    #[tokio::test]
    async fn every_format_has_apifys_content_type_and_only_text_may_have_a_byte_order_mark() {
        let formats = [
            ("json", "application/json; charset=utf-8"),
            ("jsonl", "application/jsonl; charset=utf-8"),
            ("csv", "text/csv; charset=utf-8"),
            ("html", "text/html; charset=utf-8"),
            (
                "xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            ("xml", "application/xml; charset=utf-8"),
            ("rss", "application/rss+xml; charset=utf-8"),
        ];
        for (format, content_type) in formats {
            for bom in [None, Some("1"), Some("0")] {
                let mut list = vec![("format", format), ("attachment", "1")];
                list.extend(bom.map(|b| ("bom", b)));
                let res = respond(vec![json!({"a": 1})], 1, &query(&list), "ds-1");
                assert_eq!(res.status(), 200);
                assert_eq!(res.headers()[header::CONTENT_TYPE], content_type);
                assert_eq!(
                    res.headers()[header::CONTENT_DISPOSITION],
                    format!("attachment; filename=\"dataset_ds1.{format}\"").as_str()
                );
                let body = bytes_of(res).await;
                let expected = format != "xlsx" && bom.map_or(format == "csv", |b| b == "1");
                assert_eq!(body.starts_with(BOM), expected, "{format} bom={bom:?}");
                if format == "xlsx" {
                    assert!(body.starts_with(b"PK\x03\x04"), "a zip file");
                }
            }
        }
    }
}
