//! URL globs as WCC takes them (minimatch-style on the whole URL): `*` matches within a
//! path segment, `**` across segments, `?` one character, `[a-z]`/`[!x]` classes and
//! `{a,b}` alternatives.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Star,
    DoubleStar,
    Any,
    Class {
        ranges: Vec<(char, char)>,
        negate: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    alternatives: Vec<Vec<Tok>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob {glob:?}: {reason}")]
pub struct GlobError {
    pub glob: String,
    pub reason: &'static str,
}

/// Bounds on what one tenant-written glob may cost. Brace expansion recurses once per
/// `{}` group, so the number of groups bounds the recursion; nesting and length bound
/// the scans; the expansion count bounds memory and the matcher's work.
pub const MAX_PATTERN_CHARS: usize = 2048;
pub const MAX_BRACE_DEPTH: usize = 8;
pub const MAX_BRACE_GROUPS: usize = 32;
pub const MAX_EXPANSIONS: usize = 256;

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let err = |reason| GlobError {
            glob: pattern.chars().take(120).collect(),
            reason,
        };
        if pattern.trim().is_empty() {
            return Err(err("empty pattern"));
        }
        check_shape(pattern).map_err(err)?;
        let expanded = expand_braces(pattern).map_err(err)?;
        let alternatives = expanded
            .iter()
            .map(|p| tokenize(p).map_err(err))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Glob {
            source: pattern.to_string(),
            alternatives,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        self.alternatives.iter().any(|toks| matches(toks, &chars))
    }

    /// Tokens over every alternative: what one match costs per character of the URL.
    pub fn cost(&self) -> usize {
        self.alternatives.iter().map(Vec::len).sum()
    }
}

/// Length, brace nesting and brace-group count, checked in one pass before anything
/// recurses.
fn check_shape(p: &str) -> Result<(), &'static str> {
    if p.chars().count() > MAX_PATTERN_CHARS {
        return Err("the pattern is longer than 2048 characters");
    }
    // Every `{` counts, escaped or not, as it does in `expand_braces`.
    let (mut depth, mut groups) = (0usize, 0usize);
    for c in p.chars() {
        match c {
            '{' => {
                depth += 1;
                groups += 1;
                if depth > MAX_BRACE_DEPTH {
                    return Err("'{}' groups are nested more than 8 deep");
                }
                if groups > MAX_BRACE_GROUPS {
                    return Err("more than 32 '{}' groups");
                }
            }
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn expand_braces(p: &str) -> Result<Vec<String>, &'static str> {
    let chars: Vec<char> = p.chars().collect();
    // Find the first top-level `{ ... }` group.
    let Some(open) = chars.iter().position(|c| *c == '{') else {
        return Ok(vec![p.to_string()]);
    };
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, c) in chars.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let close = close.ok_or("unclosed '{'")?;
    let prefix: String = chars[..open].iter().collect();
    let suffix: String = chars[close + 1..].iter().collect();
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt: String = chars[w[0] + 1..w[1]].iter().collect();
        for tail in expand_braces(&format!("{alt}{suffix}"))? {
            out.push(format!("{prefix}{tail}"));
            if out.len() > MAX_EXPANSIONS {
                return Err("too many '{}' alternatives");
            }
        }
    }
    Ok(out)
}

fn tokenize(p: &str) -> Result<Vec<Tok>, &'static str> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    while chars.get(i + 1) == Some(&'*') {
                        i += 1;
                    }
                    toks.push(Tok::DoubleStar);
                } else {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::Any),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                toks.push(Tok::Lit(chars[i]));
            }
            '[' => {
                let mut j = i + 1;
                let negate = matches!(chars.get(j), Some('!') | Some('^'));
                if negate {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                while j < chars.len() && (chars[j] != ']' || first) {
                    first = false;
                    let lo = chars[j];
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|c| *c != ']')
                    {
                        ranges.push((lo, chars[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((lo, lo));
                        j += 1;
                    }
                }
                if j >= chars.len() {
                    return Err("unclosed '['");
                }
                toks.push(Tok::Class { ranges, negate });
                i = j;
            }
            c => toks.push(Tok::Lit(c)),
        }
        i += 1;
    }
    Ok(toks)
}

fn matches(toks: &[Tok], s: &[char]) -> bool {
    // Dynamic programming over (token, position) keeps pathological globs linear-ish.
    let n = s.len();
    let mut cur = vec![false; n + 1];
    cur[0] = true;
    for tok in toks {
        let mut next = vec![false; n + 1];
        match tok {
            Tok::DoubleStar => {
                let mut reach = false;
                for i in 0..=n {
                    reach |= cur[i];
                    next[i] = reach;
                }
            }
            Tok::Star => {
                let mut reach = false;
                for i in 0..=n {
                    if cur[i] {
                        reach = true;
                    }
                    next[i] = reach;
                    if i < n && s[i] == '/' {
                        reach = false;
                    }
                }
            }
            _ => {
                for i in 0..n {
                    if cur[i] && single(tok, s[i]) {
                        next[i + 1] = true;
                    }
                }
            }
        }
        cur = next;
        if !cur.iter().any(|b| *b) {
            return false;
        }
    }
    cur[n]
}

fn single(tok: &Tok, c: char) -> bool {
    match tok {
        Tok::Lit(l) => *l == c,
        Tok::Any => c != '/',
        Tok::Class { ranges, negate } => {
            ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
        }
        Tok::Star | Tok::DoubleStar => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_star_crosses_segments_and_single_star_does_not() {
        let g = Glob::new("https://example.com/docs/**").unwrap();
        assert!(g.is_match("https://example.com/docs/a/b/c.html"));
        assert!(g.is_match("https://example.com/docs/"));
        assert!(!g.is_match("https://example.com/blog/a"));
        let g = Glob::new("https://example.com/*/index.html").unwrap();
        assert!(g.is_match("https://example.com/a/index.html"));
        assert!(!g.is_match("https://example.com/a/b/index.html"));
    }

    #[test]
    fn braces_classes_and_question_marks() {
        let g = Glob::new("https://{store,docs}.example.com/v[0-9]/?.html").unwrap();
        assert!(g.is_match("https://docs.example.com/v2/a.html"));
        assert!(g.is_match("https://store.example.com/v9/z.html"));
        assert!(!g.is_match("https://blog.example.com/v2/a.html"));
        assert!(!g.is_match("https://docs.example.com/vx/a.html"));
        assert!(Glob::new("https://{a,b").is_err());
        assert!(Glob::new("https://[a-").is_err());
        assert!(Glob::new("  ").is_err());
    }

    #[test]
    fn hostile_braces_are_refused_before_anything_recurses() {
        let deep = format!(
            "https://example.com/{}a{}",
            "{".repeat(20_000),
            "}".repeat(20_000)
        );
        let e = Glob::new(&deep).unwrap_err();
        assert!(e.reason.contains("longer than"), "{e}");
        assert!(e.glob.len() <= 120);
        let nested = format!("https://x/{}a{}", "{".repeat(9), "}".repeat(9));
        assert!(Glob::new(&nested).unwrap_err().reason.contains("nested"));
        let groups = format!("https://x/{}", "{a,b}".repeat(33));
        assert!(Glob::new(&groups).unwrap_err().reason.contains("groups"));
        let fan_out = format!("https://x/{}", "{a,b}".repeat(9));
        assert!(
            Glob::new(&fan_out)
                .unwrap_err()
                .reason
                .contains("alternatives")
        );
        let fine = format!("https://x/{}", "{a,b}".repeat(8));
        assert_eq!(Glob::new(&fine).unwrap().alternatives.len(), 256);
    }
}
