//! Markdown-aware chunking: splits a document into retrieval-sized pieces that keep
//! their heading path as context, never cut a fenced code block, overlap within a
//! section, and break at paragraph, then sentence, then word boundaries.
//!
//! Lengths are counted in `char`s. The only place a chunk can exceed `max_chars` is a
//! fenced code block longer than that, which stays whole in a chunk of its own, and the
//! only place a cut falls inside a word is a single "word" (no whitespace) longer than
//! `max_chars`, such as an inline base64 blob.

/// How big chunks get and how much consecutive chunks of one section share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Upper bound on a chunk's text in chars (fenced code blocks excepted). Values
    /// below 1 are treated as 1.
    pub max_chars: usize,
    /// How much of the end of a chunk is repeated at the start of the next chunk of the
    /// same section, in chars, taken at sentence or word boundaries. Clamped to half of
    /// `max_chars`.
    pub overlap_chars: usize,
}

impl Default for ChunkOptions {
    /// 1000 / 150, chosen on the Rust-docs evaluation set (bench/rag/RESULTS.md).
    fn default() -> Self {
        Self {
            max_chars: 1000,
            overlap_chars: 150,
        }
    }
}

/// One piece of a document, ready to be embedded and indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The headings above this chunk, outermost first, e.g.
    /// `["Common Collections", "Storing UTF-8 Encoded Text with Strings"]`. Empty for
    /// text before the first heading and for plain text.
    pub heading_path: Vec<String>,
    /// The chunk's Markdown (fences kept on code blocks), without its headings.
    pub text: String,
}

/// Splits Markdown into chunks. ATX (`## Title`) and setext (`Title` over `===`/`---`)
/// headings start sections; fenced code blocks (```` ``` ```` or `~~~`) are never split.
pub fn chunk_markdown(markdown: &str, options: &ChunkOptions) -> Vec<Chunk> {
    assemble(parse_blocks(markdown, true), options)
}

/// Splits plain text into chunks: paragraphs are separated by blank lines and nothing
/// is read as a heading or a code fence.
pub fn chunk_plain(text: &str, options: &ChunkOptions) -> Vec<Chunk> {
    assemble(parse_blocks(text, false), options)
}

/// The text to embed and to index lexically for a chunk: the document title, the
/// heading path joined with ` > ` (its first heading dropped when it repeats the
/// title), a blank line, then the chunk text. Giving the model the headings lets a
/// chunk in the middle of a section still say what it is about.
pub fn embedding_text(title: &str, chunk: &Chunk) -> String {
    let title = title.trim();
    let mut headings: &[String] = &chunk.heading_path;
    if let Some(first) = headings.first()
        && first.trim().eq_ignore_ascii_case(title)
    {
        headings = &headings[1..];
    }
    let mut out = String::with_capacity(title.len() + chunk.text.len() + 64);
    out.push_str(title);
    if !headings.is_empty() {
        if !out.is_empty() {
            out.push_str(" > ");
        }
        out.push_str(&headings.join(" > "));
    }
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&chunk.text);
    out
}

#[derive(Debug, PartialEq)]
enum Block {
    Heading { level: usize, text: String },
    Code(String),
    Para(String),
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `(fence char, fence length)` when `line` opens a fenced code block.
fn fence_open(line: &str) -> Option<(char, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let c = rest.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = rest.chars().take_while(|&x| x == c).count();
    if n < 3 {
        return None;
    }
    // A backtick fence's info string may not contain backticks (CommonMark).
    if c == '`' && rest[n..].contains('`') {
        return None;
    }
    Some((c, n))
}

fn fence_closes(line: &str, c: char, n: usize) -> bool {
    let t = line.trim();
    let run = t.chars().take_while(|&x| x == c).count();
    run >= n && run == t.chars().count() && line.len() - line.trim_start_matches(' ').len() <= 3
}

fn atx_heading(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let level = rest.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    if !after.is_empty() && !after.starts_with([' ', '\t']) {
        return None;
    }
    let mut text = after.trim();
    // Optional closing sequence: `## Title ##`.
    let stripped = text.trim_end_matches('#');
    if stripped.is_empty() || stripped.ends_with([' ', '\t']) {
        text = stripped.trim_end();
    }
    Some((level, text.to_owned()))
}

fn setext_level(line: &str) -> Option<usize> {
    let t = line.trim();
    if !t.is_empty() && t.chars().all(|c| c == '=') {
        Some(1)
    } else if t.len() >= 3 && t.chars().all(|c| c == '-') {
        Some(2)
    } else {
        None
    }
}

fn is_thematic_break(text: &str) -> bool {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    t.len() >= 3
        && (t.chars().all(|c| c == '-')
            || t.chars().all(|c| c == '*')
            || t.chars().all(|c| c == '_'))
}

fn parse_blocks(text: &str, markdown: bool) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let mut fence: Option<(char, usize, Vec<&str>)> = None;

    fn flush(para: &mut Vec<&str>, blocks: &mut Vec<Block>) {
        if para.is_empty() {
            return;
        }
        let text = para.join("\n");
        para.clear();
        let trimmed = text.trim();
        if !trimmed.is_empty() && !is_thematic_break(trimmed) {
            blocks.push(Block::Para(trimmed.to_owned()));
        }
    }

    for line in text.lines() {
        if let Some((c, n, lines)) = fence.as_mut() {
            lines.push(line);
            if fence_closes(line, *c, *n) {
                blocks.push(Block::Code(lines.join("\n")));
                fence = None;
            }
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut para, &mut blocks);
            continue;
        }
        if markdown {
            if let Some((c, n)) = fence_open(line) {
                flush(&mut para, &mut blocks);
                fence = Some((c, n, vec![line]));
                continue;
            }
            if let Some((level, heading)) = atx_heading(line) {
                flush(&mut para, &mut blocks);
                blocks.push(Block::Heading {
                    level,
                    text: heading,
                });
                continue;
            }
            if para.len() == 1
                && let Some(level) = setext_level(line)
            {
                let heading = para[0].trim().to_owned();
                para.clear();
                blocks.push(Block::Heading {
                    level,
                    text: heading,
                });
                continue;
            }
        }
        para.push(line);
    }
    // An unclosed fence runs to the end of the document, as in CommonMark.
    if let Some((_, _, lines)) = fence {
        blocks.push(Block::Code(lines.join("\n")));
    }
    flush(&mut para, &mut blocks);
    blocks
}

/// Splits a paragraph into sentence-like units: after `.`, `!`, `?` (optionally
/// followed by a closing quote or bracket) and whitespace, and before a line that
/// starts a list item, table row or quote. Each unit carries the separator that
/// joins it to the previous one (`"\n"` when the original break had a newline).
fn split_units(text: &str) -> Vec<(&'static str, &str)> {
    let mut units = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut sep = "";
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let mut end = None;
        if matches!(b, b'.' | b'!' | b'?') {
            let mut j = i + 1;
            while j < bytes.len() && matches!(bytes[j], b'"' | b'\'' | b')' | b']') {
                j += 1;
            }
            if j < bytes.len() && bytes[j].is_ascii_whitespace() {
                end = Some(j);
            }
        } else if b == b'\n' && starts_block_line(&text[i + 1..]) {
            end = Some(i);
        }
        if let Some(e) = end {
            let mut k = e;
            let mut newline = false;
            while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                newline |= bytes[k] == b'\n';
                k += 1;
            }
            let unit = text[start..e].trim();
            if !unit.is_empty() {
                units.push((sep, unit));
                sep = if newline { "\n" } else { " " };
            }
            start = k;
            i = k;
            continue;
        }
        i += 1;
    }
    let unit = text[start..].trim();
    if !unit.is_empty() {
        units.push((sep, unit));
    }
    units
}

fn starts_block_line(rest: &str) -> bool {
    let t = rest.trim_start_matches([' ', '\t']);
    if t.starts_with("- ") || t.starts_with("* ") || t.starts_with("+ ") {
        return true;
    }
    if t.starts_with('|') || t.starts_with('>') {
        return true;
    }
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && (t[digits..].starts_with(". ") || t[digits..].starts_with(") "))
}

/// Cuts `text` into pieces of at most `max` chars at whitespace; a single word longer
/// than `max` is cut at a char boundary (the one unavoidable mid-word split).
fn split_words(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for word in text.split_whitespace() {
        let wlen = char_len(word);
        if wlen > max {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                current_len = 0;
            }
            let chars: Vec<char> = word.chars().collect();
            for part in chars.chunks(max) {
                out.push(part.iter().collect());
            }
            continue;
        }
        let extra = if current.is_empty() { wlen } else { wlen + 1 };
        if current_len + extra > max {
            out.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if !current.is_empty() {
            current.push(' ');
            current_len += 1;
        }
        current.push_str(word);
        current_len += wlen;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

struct Piece {
    /// Joins this piece to the previous one in the chunk.
    sep: &'static str,
    text: String,
    len: usize,
    code: bool,
}

struct Builder<'a> {
    max: usize,
    overlap: usize,
    path: Vec<String>,
    pieces: Vec<Piece>,
    /// How many leading pieces were carried over from the previous chunk.
    carried: usize,
    out: &'a mut Vec<Chunk>,
}

impl Builder<'_> {
    fn len(&self) -> usize {
        self.pieces
            .iter()
            .enumerate()
            .map(|(i, p)| p.len + if i == 0 { 0 } else { p.sep.len() })
            .sum()
    }

    fn add(&mut self, piece: Piece) {
        let extra = piece.len + piece.sep.len();
        if !self.pieces.is_empty() && self.len() + extra > self.max {
            if self.carried == self.pieces.len() {
                // Only overlap so far, and the new piece does not fit beside it.
                self.pieces.clear();
                self.carried = 0;
            } else {
                self.flush(true);
                if !self.pieces.is_empty() && self.len() + extra > self.max {
                    self.pieces.clear();
                    self.carried = 0;
                }
            }
        }
        self.pieces.push(piece);
    }

    /// Emits the current chunk (unless it holds only carried-over overlap) and, when
    /// `carry` is set, keeps its tail as the start of the next one.
    fn flush(&mut self, carry: bool) {
        if self.pieces.len() > self.carried {
            let mut text = String::new();
            for (i, p) in self.pieces.iter().enumerate() {
                if i > 0 {
                    text.push_str(p.sep);
                }
                text.push_str(&p.text);
            }
            self.out.push(Chunk {
                heading_path: self.path.clone(),
                text,
            });
        }
        let pieces = std::mem::take(&mut self.pieces);
        self.carried = 0;
        if !carry || self.overlap == 0 {
            return;
        }
        let mut tail: Vec<Piece> = Vec::new();
        let mut total = 0;
        for p in pieces.iter().rev() {
            if p.code {
                break;
            }
            let add = p.len + if tail.is_empty() { 0 } else { p.sep.len() };
            if total + add > self.overlap {
                break;
            }
            total += add;
            tail.push(Piece {
                sep: p.sep,
                text: p.text.clone(),
                len: p.len,
                code: false,
            });
        }
        if tail.is_empty()
            && let Some(last) = pieces.last().filter(|p| !p.code)
        {
            // The last piece alone is longer than the overlap: take its end, starting
            // at a word.
            let words: Vec<&str> = last.text.split_whitespace().collect();
            let mut taken = 0;
            let mut n = 0;
            for w in words.iter().rev() {
                let add = char_len(w) + usize::from(n > 0);
                if taken + add > self.overlap {
                    break;
                }
                taken += add;
                n += 1;
            }
            if n > 0 {
                let text = words[words.len() - n..].join(" ");
                tail.push(Piece {
                    sep: last.sep,
                    len: char_len(&text),
                    text,
                    code: false,
                });
            }
        }
        tail.reverse();
        self.carried = tail.len();
        self.pieces = tail;
    }
}

fn assemble(blocks: Vec<Block>, options: &ChunkOptions) -> Vec<Chunk> {
    let max = options.max_chars.max(1);
    let overlap = options.overlap_chars.min(max / 2);
    let mut out = Vec::new();
    let mut b = Builder {
        max,
        overlap,
        path: Vec::new(),
        pieces: Vec::new(),
        carried: 0,
        out: &mut out,
    };
    for block in blocks {
        match block {
            Block::Heading { level, text } => {
                b.flush(false);
                // Headings that skip levels (`#` then `###`) nest under what is there.
                let mut path = std::mem::take(&mut b.path);
                path.truncate(level - 1);
                path.push(text);
                b.path = path;
            }
            Block::Code(code) => {
                let len = char_len(&code);
                if len > max {
                    b.flush(false);
                    b.out.push(Chunk {
                        heading_path: b.path.clone(),
                        text: code,
                    });
                } else {
                    b.add(Piece {
                        sep: "\n\n",
                        text: code,
                        len,
                        code: true,
                    });
                }
            }
            Block::Para(text) => {
                let len = char_len(&text);
                if len <= max {
                    b.add(Piece {
                        sep: "\n\n",
                        text,
                        len,
                        code: false,
                    });
                    continue;
                }
                let mut first = true;
                for (sep, unit) in split_units(&text) {
                    let sep = if first { "\n\n" } else { sep };
                    first = false;
                    let ulen = char_len(unit);
                    if ulen <= max {
                        b.add(Piece {
                            sep,
                            text: unit.to_owned(),
                            len: ulen,
                            code: false,
                        });
                        continue;
                    }
                    for (i, part) in split_words(unit, max).into_iter().enumerate() {
                        b.add(Piece {
                            sep: if i == 0 { sep } else { " " },
                            len: char_len(&part),
                            text: part,
                            code: false,
                        });
                    }
                }
            }
        }
    }
    b.flush(false);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(max: usize, overlap: usize) -> ChunkOptions {
        ChunkOptions {
            max_chars: max,
            overlap_chars: overlap,
        }
    }

    #[test]
    fn heading_path_follows_nesting_and_resets_on_a_shallower_heading() {
        let md = "# Common Collections\n\nIntro.\n\n## Storing UTF-8 Encoded Text with Strings\n\nStrings are UTF-8.\n\n### Creating a New String\n\nUse String::new.\n\n## Hash Maps ##\n\nMaps.\n";
        let chunks = chunk_markdown(md, &ChunkOptions::default());
        let paths: Vec<Vec<&str>> = chunks
            .iter()
            .map(|c| c.heading_path.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            paths,
            vec![
                vec!["Common Collections"],
                vec![
                    "Common Collections",
                    "Storing UTF-8 Encoded Text with Strings"
                ],
                vec![
                    "Common Collections",
                    "Storing UTF-8 Encoded Text with Strings",
                    "Creating a New String"
                ],
                vec!["Common Collections", "Hash Maps"],
            ]
        );
        assert_eq!(chunks[2].text, "Use String::new.");
    }

    #[test]
    fn setext_headings_and_text_before_the_first_heading() {
        let md = "Preamble text.\n\nTitle\n=====\n\nBody one.\n\nSub\n---\n\nBody two.\n";
        let chunks = chunk_markdown(md, &ChunkOptions::default());
        assert_eq!(chunks.len(), 3);
        assert!(chunks[0].heading_path.is_empty());
        assert_eq!(chunks[1].heading_path, vec!["Title"]);
        assert_eq!(chunks[2].heading_path, vec!["Title", "Sub"]);
    }

    #[test]
    fn a_code_block_longer_than_max_stays_whole_in_its_own_chunk() {
        let code_body: String = (0..40).map(|i| format!("let x{i} = {i};\n")).collect();
        let code = format!("```rust\n{code_body}```");
        let md = format!("# T\n\nBefore the code.\n\n{code}\n\nAfter the code.\n");
        let chunks = chunk_markdown(&md, &opts(100, 20));
        let with_code: Vec<&Chunk> = chunks
            .iter()
            .filter(|c| c.text.contains("let x0"))
            .collect();
        assert_eq!(with_code.len(), 1);
        assert_eq!(with_code[0].text, code);
        assert!(chunks.iter().any(|c| c.text.contains("Before the code.")));
        assert!(chunks.iter().any(|c| c.text.contains("After the code.")));
    }

    #[test]
    fn headings_and_blank_lines_inside_a_fence_are_code() {
        let md = "# Real\n\n~~~\n# not a heading\n\nstill code\n~~~\n\ntext\n";
        let chunks = chunk_markdown(md, &ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].heading_path, vec!["Real"]);
        assert!(
            chunks[0]
                .text
                .starts_with("~~~\n# not a heading\n\nstill code\n~~~")
        );
    }

    #[test]
    fn no_chunk_splits_a_small_code_block_even_when_it_does_not_fit_the_remainder() {
        let para = "word ".repeat(30);
        let code = format!("```\n{}\n```", "code ".repeat(25));
        let md = format!("{para}\n\n{code}\n\n{para}");
        for chunk in chunk_markdown(&md, &opts(200, 40)) {
            let opens = chunk.text.matches("```").count();
            assert!(opens == 0 || opens == 2, "split fence in {:?}", chunk.text);
        }
    }

    #[test]
    fn long_paragraphs_split_at_sentences_and_never_mid_word() {
        let sentence = "The quick brown fox jumps over the lazy dog.";
        let para = vec![sentence; 20].join(" ");
        let chunks = chunk_markdown(&para, &opts(200, 0));
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(char_len(&c.text) <= 200, "{}", c.text);
            assert!(c.text.starts_with("The quick"), "{}", c.text);
            assert!(c.text.ends_with("dog."), "{}", c.text);
        }
    }

    #[test]
    fn a_sentence_longer_than_max_splits_at_words() {
        let words: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let text = words.join(" ");
        let chunks = chunk_plain(&text, &opts(50, 0));
        let rejoined: Vec<String> = chunks
            .iter()
            .flat_map(|c| c.text.split(' ').map(str::to_owned))
            .collect();
        assert_eq!(rejoined, words);
        assert!(chunks.iter().all(|c| char_len(&c.text) <= 50));
    }

    #[test]
    fn consecutive_chunks_of_a_section_overlap_but_sections_do_not() {
        let s: Vec<String> = (0..30)
            .map(|i| format!("Sentence number {i} is here."))
            .collect();
        let md = format!("# A\n\n{}\n\n# B\n\nOther section text.", s.join(" "));
        let chunks = chunk_markdown(&md, &opts(200, 60));
        let a: Vec<&Chunk> = chunks.iter().filter(|c| c.heading_path == ["A"]).collect();
        assert!(a.len() >= 3);
        for pair in a.windows(2) {
            let first_sentence = pair[1].text.split(". ").next().unwrap();
            assert!(
                pair[0].text.contains(first_sentence),
                "no overlap between {:?} and {:?}",
                pair[0].text,
                pair[1].text
            );
        }
        let b: Vec<&Chunk> = chunks.iter().filter(|c| c.heading_path == ["B"]).collect();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].text, "Other section text.");
    }

    #[test]
    fn overlap_longer_than_a_sentence_takes_whole_words_from_the_end() {
        let long = "alpha ".repeat(40);
        let md = format!("{}.\n\n{}", long.trim(), "beta ".repeat(30).trim());
        let chunks = chunk_plain(&md, &opts(250, 30));
        assert_eq!(chunks.len(), 2);
        assert!(chunks[1].text.starts_with("alpha"));
        assert!(chunks[1].text.contains("beta"));
        assert!(chunks.iter().all(|c| char_len(&c.text) <= 250));
    }

    #[test]
    fn list_items_are_split_points_in_a_long_list() {
        let items: Vec<String> = (0..20)
            .map(|i| format!("- item {i} with some words"))
            .collect();
        let md = items.join("\n");
        let chunks = chunk_markdown(&md, &opts(120, 0));
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(c.text.starts_with("- item"), "{}", c.text);
            assert!(c.text.lines().all(|l| l.starts_with("- item")));
        }
    }

    #[test]
    fn plain_text_reads_no_markdown() {
        let text = "# not a heading\n\n```\nnot code\n```";
        let chunks = chunk_plain(text, &ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].heading_path.is_empty());
        assert!(chunks[0].text.starts_with("# not a heading"));
    }

    #[test]
    fn empty_input_and_headings_without_body_give_no_chunks() {
        assert!(chunk_markdown("", &ChunkOptions::default()).is_empty());
        assert!(chunk_markdown("# A\n## B\n\n   \n", &ChunkOptions::default()).is_empty());
        assert!(chunk_markdown("x", &opts(0, 0)).len() == 1);
    }

    #[test]
    fn embedding_text_puts_title_and_headings_first_without_repeating_the_title() {
        let chunk = Chunk {
            heading_path: vec!["Common Collections".into(), "Strings".into()],
            text: "Body.".into(),
        };
        assert_eq!(
            embedding_text("Common Collections", &chunk),
            "Common Collections > Strings\n\nBody."
        );
        assert_eq!(
            embedding_text("The Book", &chunk),
            "The Book > Common Collections > Strings\n\nBody."
        );
        let bare = Chunk {
            heading_path: vec![],
            text: "Body.".into(),
        };
        assert_eq!(embedding_text("", &bare), "Body.");
    }
}
