"""Writes the embedding benchmark's input: chunks of ~200-250 BERT tokens (180 words)
of the Rust Book's text, one JSON string per line. The book ships with rustup's
rust-docs component, so both sides read the same real prose and code.

    python3 bench/llm/make_chunks.py BOOK_HTML_DIR OUT.jsonl [MAX_CHUNKS]
"""

import html.parser
import json
import pathlib
import sys

WORDS_PER_CHUNK = 180


class Text(html.parser.HTMLParser):
    """Collects the text of <main>, skipping scripts, styles and navigation."""

    def __init__(self):
        super().__init__()
        self.parts, self.depth, self.skip = [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag == "main":
            self.depth += 1
        if tag in ("script", "style", "nav"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag == "main":
            self.depth -= 1
        if tag in ("script", "style", "nav"):
            self.skip -= 1

    def handle_data(self, data):
        if self.depth > 0 and self.skip == 0:
            self.parts.append(data)


def main():
    book, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    pages = sorted(book.glob("ch*.html"))
    if not pages:
        sys.exit(f"no ch*.html pages under {book}")
    chunks = []
    for page in pages:
        parser = Text()
        parser.feed(page.read_text(encoding="utf-8"))
        words = " ".join(parser.parts).split()
        for i in range(0, len(words) - WORDS_PER_CHUNK + 1, WORDS_PER_CHUNK):
            chunks.append(" ".join(words[i : i + WORDS_PER_CHUNK]))
    chunks = chunks[:limit]
    out.write_text("".join(json.dumps(c) + "\n" for c in chunks), encoding="utf-8")
    print(f"{len(chunks)} chunks of {WORDS_PER_CHUNK} words from {len(pages)} pages -> {out}")


if __name__ == "__main__":
    main()
