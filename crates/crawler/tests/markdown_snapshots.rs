//! Markdown of real Rust documentation pages (Apache-2.0/MIT, copied from the toolchain's
//! `share/doc/rust/html`) against committed snapshots, plus structural checks that the
//! headings, lists, tables and code blocks survive. Regenerate with
//! `UPDATE_SNAPSHOTS=1 cargo test -p agentbase-crawler --test markdown_snapshots`.

use std::path::PathBuf;

use agentbase_crawler::{ExtractOptions, extract};

fn markdown_of(name: &str, url: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let html = std::fs::read_to_string(dir.join("fixtures").join(format!("{name}.html")))
        .expect("read fixture");
    let out = extract(&html, url, &ExtractOptions::default());
    let md = out.markdown.expect("markdown is saved by default");
    let snap = dir.join("snapshots").join(format!("{name}.md"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snap, &md).expect("write snapshot");
    }
    let expected = std::fs::read_to_string(&snap).expect("read snapshot");
    assert_eq!(md, expected, "Markdown of {name} differs from its snapshot");
    md
}

fn assert_has(md: &str, needle: &str) {
    assert!(md.contains(needle), "expected {needle:?} in:\n{md}");
}

#[test]
fn book_data_types_keeps_headings_tables_and_rust_code() {
    let md = markdown_of(
        "book-data-types",
        "http://127.0.0.1/book/ch03-02-data-types.html",
    );
    assert_has(&md, "### Scalar Types");
    assert_has(&md, "#### Integer Types");
    assert_has(
        &md,
        "\n- Wrap in all modes with the `wrapping_*` methods, such as `wrapping_add`.\n- Return",
    );
    assert_has(&md, "| Length | Signed | Unsigned |");
    assert_has(&md, "| 8-bit | `i8` | `u8` |");
    assert_has(&md, "```rust");
    assert_has(
        &md,
        "let guess: u32 = \"42\".parse().expect(\"Not a number!\");",
    );
    assert!(
        !md.contains("Keyboard shortcuts"),
        "navigation chrome leaked:\n{md}"
    );
}

#[test]
fn book_vectors_keeps_lists_links_and_code() {
    let md = markdown_of("book-vectors", "http://127.0.0.1/book/ch08-01-vectors.html");
    assert_has(&md, "### Creating a New Vector");
    assert_has(&md, "```rust");
    assert_has(&md, "let v: Vec<i32> = Vec::new();");
    assert_has(&md, "](http://127.0.0.1/");
}

#[test]
fn book_operators_appendix_renders_pipe_tables() {
    let md = markdown_of(
        "book-operators",
        "http://127.0.0.1/book/appendix-02-operators.html",
    );
    assert_has(&md, "| Operator | Example | Explanation | Overloadable? |");
    assert_has(&md, "| --- | --- | --- | --- |");
    assert!(md.matches("\n| ").count() > 50, "tables lost rows:\n{md}");
}

#[test]
fn reference_numeric_types_keeps_table_and_headings() {
    let md = markdown_of(
        "reference-numeric",
        "http://127.0.0.1/reference/types/numeric.html",
    );
    assert_has(&md, "| Type | Minimum | Maximum |");
    assert_has(&md, "## Integer types");
}

#[test]
fn std_keyword_page_keeps_code_and_lists() {
    let md = markdown_of("std-keyword-loop", "http://127.0.0.1/std/keyword.loop.html");
    assert_has(&md, "loop");
    assert_has(&md, "```rust");
    assert_has(&md, "let mut i = 1;");
}
