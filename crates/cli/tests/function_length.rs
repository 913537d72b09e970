//! No function of the workspace is longer than [`MAX_LINES`] lines, test code aside:
//! a longer one is split along its steps. The SIMD kernels in [`ALLOWED`] are the
//! exception (an unrolled inner loop reads best whole).
//!
//! A function runs from the line of its `fn` to the line of its closing brace. The
//! scan blanks comments, string and character literals first, skips `#[cfg(test)]`
//! modules, and does not read tests (`tests/` directories, `tests.rs` files).

use std::fs;

use tree::workspace_root;

mod tree;

const MAX_LINES: usize = 100;

/// `path::fn` of the functions allowed to be longer: the SIMD kernels only.
const ALLOWED: &[&str] = &[
    // The AVX2 chat kernel's register tile (`R` rows × `T` tokens over a whole row).
    "crates/llm/src/fast_llama/avx2.rs::tile",
];

/// `text` with comments, strings and character literals replaced by spaces (line
/// breaks kept), so braces and keywords in them are not seen.
fn blank(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let keep = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(chars[i]));
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"…", r#"…"#, br"…": up to the quote followed by as many hashes.
            let open = i + chars[i..].iter().position(|&c| c == '"').unwrap_or(0);
            for &c in &chars[i..=open] {
                out.push(keep(c));
            }
            i = open + 1;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|h| chars.get(i + h) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                out.push(keep(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    out.push(keep(c));
                }
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'), else a lifetime.
            let end = if next == Some('\\') {
                chars[i + 2..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map(|p| i + 2 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    for _ in i..=end {
                        out.push(' ');
                    }
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At a raw string's `r` (or `br`, `cr`): its number of hashes.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let before = i.checked_sub(1).map(|p| chars[p]);
    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let mut j = i;
    if matches!(chars[j], 'b' | 'c') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The index of the brace closing the one at `open`.
fn matching(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Every function of one file outside `#[cfg(test)]` modules: name, first line,
/// number of lines (all 1-based).
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let blanked = blank(text);
    let chars: Vec<char> = blanked.chars().collect();
    let line_of = {
        let mut lines = Vec::with_capacity(chars.len());
        let mut line = 1;
        for &c in &chars {
            lines.push(line);
            if c == '\n' {
                line += 1;
            }
        }
        lines
    };
    let starts_at = |i: usize, s: &str| chars[i..].starts_with(&s.chars().collect::<Vec<_>>());
    let word_at = |i: usize, word: &str| {
        let w: Vec<char> = word.chars().collect();
        chars[i..].starts_with(&w)
            && (i == 0 || !is_ident(chars[i - 1]))
            && chars.get(i + w.len()).is_none_or(|&c| !is_ident(c))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if starts_at(i, "#[cfg(test)]") {
            // Skip the item it marks if that is a module with a body.
            let j = i + "#[cfg(test)]".len();
            let semi = chars[j..].iter().position(|&c| c == ';').map(|p| j + p);
            let brace = chars[j..].iter().position(|&c| c == '{').map(|p| j + p);
            if let Some(brace) = brace
                && semi.is_none_or(|s| s > brace)
                && (j..brace).any(|k| word_at(k, "mod"))
                && let Some(end) = matching(&chars, brace)
            {
                i = end + 1;
                continue;
            }
        }
        if word_at(i, "fn") {
            let mut j = i + 2;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let name: String = chars[j..].iter().take_while(|&&c| is_ident(c)).collect();
            if !name.is_empty() {
                // The body: the first `{` outside parentheses and brackets, unless a
                // `;` (a declaration without one) comes first.
                let mut depth = 0i32;
                let mut body = None;
                for (k, &c) in chars.iter().enumerate().skip(j) {
                    match c {
                        '(' | '[' => depth += 1,
                        ')' | ']' => depth -= 1,
                        ';' if depth == 0 => break,
                        '{' if depth == 0 => {
                            body = Some(k);
                            break;
                        }
                        _ => {}
                    }
                }
                if let Some(body) = body
                    && let Some(end) = matching(&chars, body)
                {
                    let (first, last) = (line_of[i], line_of[end]);
                    out.push((name, first, last - first + 1));
                }
            }
        }
        i += 1;
    }
    out
}

#[test]
fn no_function_is_over_100_lines() {
    let root = workspace_root();
    let files = tree::rust_files(&["crates", "bench"], &["tests", "tests.rs"]);
    assert!(files.len() > 100, "found only {} Rust files", files.len());
    let mut seen_allowed = Vec::new();
    let mut long = Vec::new();
    let mut counted = 0;
    for file in &files {
        let rel = tree::relative(&root, file);
        let text = fs::read_to_string(file).unwrap_or_default();
        for (name, line, lines) in functions(&text) {
            counted += 1;
            if lines <= MAX_LINES {
                continue;
            }
            let id = format!("{rel}::{name}");
            if ALLOWED.contains(&id.as_str()) {
                seen_allowed.push(id);
            } else {
                long.push(format!("  {rel}:{line}: `{name}` is {lines} lines"));
            }
        }
    }
    assert!(counted > 2000, "found only {counted} functions");
    assert!(
        long.is_empty(),
        "functions over {MAX_LINES} lines (split them along their steps; only SIMD kernels \
         may be listed in ALLOWED in crates/cli/tests/function_length.rs):\n{}",
        long.join("\n")
    );
    let stale: Vec<&&str> = ALLOWED
        .iter()
        .filter(|a| !seen_allowed.iter().any(|s| s == *a))
        .collect();
    assert!(
        stale.is_empty(),
        "ALLOWED lists functions that are no longer over {MAX_LINES} lines (or gone): \
         {stale:?}"
    );
}

#[test]
fn the_scan_finds_functions_and_skips_what_is_not_code() {
    let sample = r##"
fn short() {
    let s = "fn not_a_function() { {{";
    let c = '{';
    let r = r#"}"#;
    // fn commented() {
    /* fn blocked() { */
}

impl<'a> Thing<'a> {
    pub(crate) async fn method(&self, f: fn(u32) -> u32) -> Result<(), ()>
    where
        Self: Sized,
    {
        let x = [0u8; 4];
        Ok(())
    }
}

trait T {
    fn declared(&self);
}

#[cfg(test)]
mod tests {
    fn hidden() {}
}
"##;
    let found: Vec<(String, usize, usize)> = functions(sample);
    assert_eq!(
        found,
        vec![("short".to_owned(), 2, 7), ("method".to_owned(), 11, 7),]
    );
}
