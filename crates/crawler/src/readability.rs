//! Main-content detection in the manner of Mozilla Readability: paragraphs score their
//! ancestors by length and commas, candidates are weighted by tag and class/id hints and
//! discounted by link density, the best candidate is merged with related siblings and
//! then cleaned of low-content blocks (link lists, forms, share bars, captions of
//! galleries).
//!
//! Works on a copy of the arena so a failed attempt can be retried with looser rules.

use crate::dom::{Data, Dom, Id, normalized_len};

const UNLIKELY: &[&str] = &[
    "-ad-",
    "ai2html",
    "banner",
    "breadcrumb",
    "combx",
    "comment",
    "community",
    "cover-wrap",
    "disqus",
    "extra",
    "footer",
    "gdpr",
    "header",
    "legends",
    "menu",
    "related",
    "remark",
    "replies",
    "rss",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "social",
    "sponsor",
    "supplemental",
    "ad-break",
    "agegate",
    "pagination",
    "pager",
    "popup",
    "yom-remote",
    "newsletter",
    "subscribe",
    "cookie",
    "consent",
    "paywall",
    "promo",
    "recirc",
    "outbrain",
    "taboola",
    "share",
];
const MAYBE: &[&str] = &[
    "and", "article", "body", "column", "content", "main", "shadow",
];
const POSITIVE: &[&str] = &[
    "article", "body", "content", "entry", "hentry", "h-entry", "main", "page", "post", "text",
    "blog", "story", "prose",
];
const NEGATIVE: &[&str] = &[
    "hidden",
    "banner",
    "combx",
    "comment",
    "com-",
    "contact",
    "footer",
    "gdpr",
    "masthead",
    "media",
    "meta",
    "outbrain",
    "promo",
    "related",
    "scroll",
    "share",
    "shoutbox",
    "sidebar",
    "skyscraper",
    "sponsor",
    "shopping",
    "tags",
    "widget",
    "byline",
    "author",
    "dateline",
    "caption",
    "newsletter",
    "signup",
    "subscribe",
    "recommend",
    "most-popular",
    "trending",
    "toolbar",
    "breadcrumb",
];
/// Class/id words of short blocks inside an article that are not its text: captions,
/// credits, bylines, datelines, share bars, teasers.
const BOILERPLATE: &[&str] = &[
    "share",
    "byline",
    "social",
    "caption",
    "credit",
    "dateline",
    "timestamp",
    "published",
    "updated",
    "related",
    "trending",
    "newsletter",
    "subscribe",
    "promo",
    "sponsor",
    "breadcrumb",
    "read-more",
    "readmore",
    "recommend",
    "signup",
    "toolbar",
    "author",
    "tags",
];
const UNLIKELY_ROLES: &[&str] = &[
    "menu",
    "menubar",
    "complementary",
    "navigation",
    "alert",
    "alertdialog",
    "dialog",
    "contentinfo",
    "banner",
    "search",
];
const BLOCKISH: &[&str] = &[
    "a",
    "blockquote",
    "dl",
    "div",
    "img",
    "ol",
    "p",
    "pre",
    "table",
    "ul",
    "section",
    "article",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "aside",
    "main",
];
/// Elements that start a new block when rendering; everything else is phrasing content.
pub(crate) const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "li",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
    "caption",
];

#[derive(Clone, Copy)]
struct Flags {
    strip_unlikely: bool,
    weight_classes: bool,
    clean_conditionally: bool,
}

/// The outcome: a new arena whose root (`root`) holds the article content.
pub(crate) struct Article {
    pub dom: Dom,
    pub root: Id,
    pub text_len: usize,
    /// Score of the winning candidate (0 when nothing scored).
    pub top_score: f64,
}

fn contains_any(hay: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| hay.contains(n))
}

fn class_id(dom: &Dom, id: Id) -> String {
    let mut s = String::new();
    if let Some(c) = dom.attr(id, "class") {
        s.push_str(c);
    }
    s.push(' ');
    if let Some(i) = dom.attr(id, "id") {
        s.push_str(i);
    }
    s.to_ascii_lowercase()
}

fn class_weight(dom: &Dom, id: Id, flags: Flags) -> f64 {
    if !flags.weight_classes {
        return 0.0;
    }
    let mut w = 0.0;
    for key in ["class", "id"] {
        if let Some(v) = dom.attr(id, key) {
            let v = v.to_ascii_lowercase();
            if v.is_empty() {
                continue;
            }
            if contains_any(&v, NEGATIVE) {
                w -= 25.0;
            }
            if contains_any(&v, POSITIVE) {
                w += 25.0;
            }
        }
    }
    w
}

fn is_hidden(dom: &Dom, id: Id) -> bool {
    if dom.attr(id, "hidden").is_some() {
        return true;
    }
    if dom.attr(id, "aria-hidden") == Some("true") {
        let cls = dom.attr(id, "class").unwrap_or("");
        if !cls.contains("fallback-image") {
            return true;
        }
    }
    if let Some(style) = dom.attr(id, "style") {
        let s: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        if s.contains("display:none") || s.contains("visibility:hidden") {
            return true;
        }
    }
    false
}

/// Link density: characters inside `<a>` over all characters.
fn link_density(dom: &Dom, id: Id, text_len: usize) -> f64 {
    if text_len == 0 {
        return 0.0;
    }
    let mut link_len = 0usize;
    for d in dom.descendants(id) {
        if dom.tag(d) == "a" {
            let href = dom.attr(d, "href").unwrap_or("");
            let coeff = if href.starts_with('#') { 0.3 } else { 1.0 };
            link_len += (normalized_len(&dom.text(d)) as f64 * coeff) as usize;
        }
    }
    link_len as f64 / text_len as f64
}

/// Runs the readability passes, loosening the rules while the result stays under
/// `char_threshold` characters; returns the longest attempt.
pub(crate) fn extract_article(
    dom: &Dom,
    root: Id,
    char_threshold: usize,
    title: Option<&str>,
) -> Option<Article> {
    let attempts = [
        Flags {
            strip_unlikely: true,
            weight_classes: true,
            clean_conditionally: true,
        },
        Flags {
            strip_unlikely: false,
            weight_classes: true,
            clean_conditionally: true,
        },
        Flags {
            strip_unlikely: false,
            weight_classes: false,
            clean_conditionally: true,
        },
        Flags {
            strip_unlikely: false,
            weight_classes: false,
            clean_conditionally: false,
        },
    ];
    // Readability's own default (500) decides when to loosen the rules; the caller's
    // threshold (WCC passes 100) only decides whether the result counts as an article.
    let retry_below = char_threshold.max(500);
    let mut results: Vec<Article> = Vec::new();
    for flags in attempts {
        let mut work = dom.clone();
        if let Some(article) = grab_article(&mut work, root, flags, title) {
            let done = article.text_len >= retry_below;
            results.push(article);
            if done {
                break;
            }
        }
    }
    // The first attempt that is long enough, or has a clearly winning candidate (a
    // short article found under strict rules beats a long page of comments found under
    // loose ones); otherwise the longest attempt.
    let confident = results.iter().position(|a| {
        a.text_len >= retry_below || (a.text_len >= char_threshold && a.top_score >= 20.0)
    });
    match confident {
        Some(i) => Some(results.swap_remove(i)),
        None => results
            .into_iter()
            .filter(|a| a.text_len > 0)
            .max_by_key(|a| a.text_len),
    }
}

/// One pass of Readability's `grabArticle`: prune, score, pick the top candidate,
/// widen it to what holds the content, then gather its siblings.
fn grab_article(dom: &mut Dom, root: Id, flags: Flags, title: Option<&str>) -> Option<Article> {
    let to_score = prune(dom, root, flags);
    let mut scores = Scores::new(dom.nodes.len());
    let ranked = scores.rank(dom, root, flags, &to_score);
    let mut top = match ranked.first() {
        Some((_, id)) if *id != root => *id,
        _ => {
            // Nothing scored: the whole body is the article.
            return finish(dom, root, 0.0, flags, title, &scores.score);
        }
    };
    top = shared_ancestor(dom, root, top, &ranked, scores.score[top]);
    scores.init(dom, top, flags);
    top = climb(dom, root, top, &scores);
    scores.init(dom, top, flags);
    let top_score = scores.score[top];
    let article_root = gather_siblings(dom, top, &scores);
    finish(dom, article_root, top_score, flags, title, &scores.score)
}

/// Step 1: removes hidden and unlikely nodes, turns text-only divs into paragraphs
/// and wraps loose phrasing content of mixed divs into paragraphs. Returns the
/// nodes whose text is scored.
fn prune(dom: &mut Dom, root: Id, flags: Flags) -> Vec<Id> {
    let mut to_score: Vec<Id> = Vec::new();
    let mut stack: Vec<Id> = dom.nodes[root].children.iter().rev().copied().collect();
    while let Some(id) = stack.pop() {
        if !dom.is_element(id) || dom.nodes[id].parent.is_none() {
            continue;
        }
        let tag = dom.tag(id).to_string();
        if is_hidden(dom, id)
            || (flags.strip_unlikely && is_unlikely(dom, id, &tag))
            || matches!(tag.as_str(), "nav" | "aside" | "footer")
        {
            dom.remove(id);
            continue;
        }
        if matches!(
            tag.as_str(),
            "section" | "h2" | "h3" | "h4" | "h5" | "h6" | "p" | "td" | "pre"
        ) {
            to_score.push(id);
        }
        if tag == "div" {
            let has_block = dom
                .descendants(id)
                .iter()
                .any(|d| BLOCKISH.contains(&dom.tag(*d)));
            if !has_block {
                dom.set_tag(id, "p");
                to_score.push(id);
            } else {
                wrap_phrasing_runs(dom, id, &mut to_score);
            }
        }
        for c in dom.nodes[id].children.iter().rev() {
            stack.push(*c);
        }
    }
    to_score
}

/// An element whose role, class or id says it is not content (comments, sidebars,
/// ads), unless it is structural or inside a table or code.
fn is_unlikely(dom: &Dom, id: Id, tag: &str) -> bool {
    if let Some(role) = dom.attr(id, "role")
        && UNLIKELY_ROLES.contains(&role.to_ascii_lowercase().as_str())
    {
        return true;
    }
    let ci = class_id(dom, id);
    ci.trim().len() > 1
        && contains_any(&ci, UNLIKELY)
        && !contains_any(&ci, MAYBE)
        && !matches!(tag, "body" | "a" | "main" | "article")
        && !dom.has_ancestor_tag(id, &["table", "code", "pre"], 3)
}

/// Content scores of the candidates, indexed by node id; a node has a score once
/// it is initialized.
struct Scores {
    score: Vec<f64>,
    initialized: Vec<bool>,
}

impl Scores {
    fn new(nodes: usize) -> Self {
        Scores {
            score: vec![0.0; nodes],
            initialized: vec![false; nodes],
        }
    }

    /// Gives `id` its initial score (from its tag and class) the first time; true
    /// when it was new.
    fn init(&mut self, dom: &Dom, id: Id, flags: Flags) -> bool {
        if self.initialized[id] {
            return false;
        }
        self.initialized[id] = true;
        self.score[id] = initial_score(dom, id, flags);
        true
    }

    /// Step 2: each scored node's text adds to its ancestors (up to five levels,
    /// less the further up); the candidates' scores are then scaled by their link
    /// density. Returns the best five, best first.
    fn rank(&mut self, dom: &Dom, root: Id, flags: Flags, to_score: &[Id]) -> Vec<(f64, Id)> {
        let mut candidates: Vec<Id> = Vec::new();
        for &el in to_score {
            if dom.nodes[el].parent.is_none() || !attached(dom, el, root) {
                continue;
            }
            let text = dom.text(el);
            let len = normalized_len(&text);
            if len < 25 {
                continue;
            }
            let commas = text.matches([',', '，', '、', '،']).count();
            let content_score = 1.0 + commas as f64 + ((len / 100) as f64).min(3.0);
            let mut cur = dom.nodes[el].parent;
            let mut level = 0usize;
            while let Some(anc) = cur {
                if level >= 5 || !dom.is_element(anc) {
                    break;
                }
                if self.init(dom, anc, flags) {
                    candidates.push(anc);
                }
                let divider = match level {
                    0 => 1.0,
                    1 => 2.0,
                    l => l as f64 * 3.0,
                };
                self.score[anc] += content_score / divider;
                if anc == root {
                    break;
                }
                cur = dom.nodes[anc].parent;
                level += 1;
            }
        }
        let mut ranked: Vec<(f64, Id)> = candidates
            .into_iter()
            .map(|c| {
                let text_len = normalized_len(&dom.text(c));
                let s = self.score[c] * (1.0 - link_density(dom, c, text_len));
                self.score[c] = s;
                (s, c)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.truncate(5);
        ranked
    }
}

/// Step 3: when three or more of the other top candidates score within 75% of the
/// top one and share an ancestor, that ancestor is the article.
fn shared_ancestor(dom: &Dom, root: Id, top: Id, ranked: &[(f64, Id)], top_score: f64) -> Id {
    let alternatives: Vec<Id> = ranked[1..]
        .iter()
        .filter(|(s, _)| top_score > 0.0 && *s / top_score >= 0.75)
        .map(|(_, id)| *id)
        .collect();
    if alternatives.len() < 3 {
        return top;
    }
    let mut parent = dom.nodes[top].parent;
    while let Some(p) = parent {
        if p == root {
            break;
        }
        let containing = alternatives
            .iter()
            .filter(|a| is_ancestor(dom, p, **a))
            .count();
        if containing >= 3 {
            return p;
        }
        parent = dom.nodes[p].parent;
    }
    top
}

/// Step 4: climbs while a scored parent scores better (the content is split across
/// its children), then past parents of which `top` is the only element child.
fn climb(dom: &Dom, root: Id, mut top: Id, scores: &Scores) -> Id {
    let mut last_score = scores.score[top];
    let mut parent = dom.nodes[top].parent;
    let score_threshold = last_score / 3.0;
    while let Some(p) = parent {
        if p == root || dom.tag(p) == "body" {
            break;
        }
        if !scores.initialized[p] {
            parent = dom.nodes[p].parent;
            continue;
        }
        let ps = scores.score[p];
        if ps < score_threshold {
            break;
        }
        if ps > last_score {
            top = p;
            break;
        }
        last_score = ps;
        parent = dom.nodes[p].parent;
    }
    // A lone child says nothing: move up to the parent.
    while let Some(p) = dom.nodes[top].parent {
        if p == root
            || dom.nodes[p]
                .children
                .iter()
                .filter(|c| dom.is_element(**c))
                .count()
                != 1
        {
            break;
        }
        top = p;
    }
    top
}

/// Step 5: moves `top` and the siblings that look like part of the article (a good
/// score, the same class, or a paragraph of prose) under a new `div`, returned.
fn gather_siblings(dom: &mut Dom, top: Id, scores: &Scores) -> Id {
    let article_root = dom.new_element("div", None);
    let top_score = scores.score[top];
    let sibling_threshold = (top_score * 0.2).max(10.0);
    let top_class = dom.attr(top, "class").unwrap_or("").to_string();
    let siblings: Vec<Id> = match dom.nodes[top].parent {
        Some(p) => dom.nodes[p].children.clone(),
        None => vec![top],
    };
    let mut picked = Vec::new();
    for s in siblings {
        if !dom.is_element(s) {
            continue;
        }
        let mut append = s == top;
        if !append {
            let mut bonus = 0.0;
            if !top_class.is_empty() && dom.attr(s, "class") == Some(top_class.as_str()) {
                bonus += top_score * 0.2;
            }
            if scores.initialized[s] && scores.score[s] + bonus >= sibling_threshold {
                append = true;
            } else if dom.tag(s) == "p" {
                let text = dom.text(s);
                let len = normalized_len(&text);
                let ld = link_density(dom, s, len);
                append = (len > 80 && ld < 0.25)
                    || (len < 80 && len > 0 && ld == 0.0 && ends_sentence(&text));
            }
        }
        if append {
            picked.push(s);
        }
    }
    for s in picked {
        dom.remove(s);
        dom.nodes[s].parent = Some(article_root);
        dom.nodes[article_root].children.push(s);
    }
    article_root
}

fn ends_sentence(text: &str) -> bool {
    let t = text.trim_end();
    t.ends_with('.') || text.contains(". ")
}

fn attached(dom: &Dom, mut id: Id, root: Id) -> bool {
    loop {
        if id == root {
            return true;
        }
        match dom.nodes[id].parent {
            Some(p) => id = p,
            None => return false,
        }
    }
}

fn is_ancestor(dom: &Dom, anc: Id, mut id: Id) -> bool {
    while let Some(p) = dom.nodes[id].parent {
        if p == anc {
            return true;
        }
        id = p;
    }
    false
}

fn initial_score(dom: &Dom, id: Id, flags: Flags) -> f64 {
    let base = match dom.tag(id) {
        "div" | "article" | "main" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    };
    base + class_weight(dom, id, flags)
}

/// Wraps consecutive phrasing children (text, inline elements) of `div` in synthetic
/// `p` elements so that text written straight into a div can be scored.
fn wrap_phrasing_runs(dom: &mut Dom, div: Id, to_score: &mut Vec<Id>) {
    let children = dom.nodes[div].children.clone();
    let mut new_children = Vec::with_capacity(children.len());
    let mut run: Vec<Id> = Vec::new();
    let flush = |dom: &mut Dom, run: &mut Vec<Id>, out: &mut Vec<Id>, to_score: &mut Vec<Id>| {
        if run.is_empty() {
            return;
        }
        let has_text = run.iter().any(|r| !dom.text(*r).trim().is_empty());
        if has_text {
            let p = dom.new_element("p", None);
            dom.nodes[p].parent = Some(div);
            for r in run.drain(..) {
                dom.nodes[r].parent = Some(p);
                dom.nodes[p].children.push(r);
            }
            to_score.push(p);
            out.push(p);
        } else {
            out.append(run);
        }
    };
    for c in children {
        let phrasing = match &dom.nodes[c].data {
            Data::Text(_) => true,
            Data::Element { name, .. } => {
                !BLOCK_TAGS.contains(&name.as_str()) && name != "br" && name != "img"
            }
        };
        if phrasing || (dom.tag(c) == "br" && !run.is_empty()) {
            run.push(c);
        } else {
            flush(dom, &mut run, &mut new_children, to_score);
            new_children.push(c);
        }
    }
    flush(dom, &mut run, &mut new_children, to_score);
    dom.nodes[div].children = new_children;
}

/// Cleans the chosen article (`article_root`) and computes its text length.
fn finish(
    dom: &mut Dom,
    article_root: Id,
    top_score: f64,
    flags: Flags,
    title: Option<&str>,
    score: &[f64],
) -> Option<Article> {
    let title_words = title.map(words).unwrap_or_default();
    // Headers with negative class weight, and share/byline leftovers.
    let descendants = dom.descendants(article_root);
    for &d in &descendants {
        if dom.nodes[d].parent.is_none() {
            continue;
        }
        let tag = dom.tag(d).to_string();
        if matches!(tag.as_str(), "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
            && class_weight(dom, d, flags) < 0.0
        {
            dom.remove(d);
            continue;
        }
        // The headline repeats the page title; the article body does not include it.
        if matches!(tag.as_str(), "h1" | "h2") && !title_words.is_empty() {
            let h = words(&dom.text(d));
            if !h.is_empty()
                && h.iter().filter(|w| title_words.contains(*w)).count() * 4 >= h.len() * 3
            {
                dom.remove(d);
                continue;
            }
        }
        if matches!(
            tag.as_str(),
            "form" | "fieldset" | "nav" | "aside" | "footer" | "figcaption"
        ) {
            dom.remove(d);
            continue;
        }
        if flags.weight_classes {
            let ci = class_id(dom, d);
            if contains_any(&ci, BOILERPLATE)
                && normalized_len(&dom.text(d)) < 250
                && !introduces_table(dom, d)
            {
                dom.remove(d);
                continue;
            }
        }
    }
    if flags.clean_conditionally {
        for tag in ["table", "ul", "ol", "div", "section", "figure", "header"] {
            clean_conditionally(dom, article_root, tag, score, flags);
        }
    }
    // Drop elements left without text or media.
    let descendants = dom.descendants(article_root);
    for &d in descendants.iter().rev() {
        if dom.nodes[d].parent.is_none() {
            continue;
        }
        let tag = dom.tag(d);
        if matches!(
            tag,
            "p" | "div" | "section" | "span" | "li" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
        ) && dom.text(d).trim().is_empty()
            && !dom
                .descendants(d)
                .iter()
                .any(|x| matches!(dom.tag(*x), "img" | "br" | "hr" | "table" | "pre"))
        {
            dom.remove(d);
        }
    }
    drop_trailing_headings(dom, article_root);
    let text_len = normalized_len(&dom.text(article_root));
    let d = std::mem::take(dom);
    Some(Article {
        dom: d,
        root: article_root,
        text_len,
        top_score,
    })
}

fn clean_conditionally(dom: &mut Dom, root: Id, tag: &str, score: &[f64], flags: Flags) {
    let nodes: Vec<Id> = dom
        .descendants(root)
        .into_iter()
        .filter(|d| dom.tag(*d) == tag)
        .collect();
    // Innermost first, so a container is judged on what is left inside it.
    for &node in nodes.iter().rev() {
        if dom.nodes[node].parent.is_none() || !attached(dom, node, root) {
            continue;
        }
        let is_list = tag == "ul" || tag == "ol";
        if tag == "table" && is_data_table(dom, node) {
            continue;
        }
        if dom.has_ancestor_tag(node, &["pre", "code"], 0) {
            continue;
        }
        let weight = class_weight(dom, node, flags);
        let s = if node < score.len() { score[node] } else { 0.0 };
        if weight + s < 0.0 {
            dom.remove(node);
            continue;
        }
        let text = dom.text(node);
        if text.matches(',').count() >= 10 {
            continue;
        }
        let desc = dom.descendants(node);
        let count = |t: &str| desc.iter().filter(|d| dom.tag(**d) == t).count();
        let p = count("p") as f64;
        let img = count("img") as f64;
        let li = count("li") as f64 - 100.0;
        let input = count("input") as f64;
        let headings = desc
            .iter()
            .filter(|d| matches!(dom.tag(**d), "h1" | "h2" | "h3" | "h4" | "h5" | "h6"))
            .count();
        let embed = count("iframe") + count("video") + count("object") + count("embed");
        let content_len = normalized_len(&text);
        let ld = link_density(dom, node, content_len);
        let in_figure = tag == "figure" || dom.has_ancestor_tag(node, &["figure"], 0);
        let list_len = if is_list { 1.0 } else { 0.0 };
        let heading_density = if content_len == 0 {
            0.0
        } else {
            desc.iter()
                .filter(|d| matches!(dom.tag(**d), "h1" | "h2" | "h3" | "h4" | "h5" | "h6"))
                .map(|d| normalized_len(&dom.text(*d)))
                .sum::<usize>() as f64
                / content_len as f64
        };
        let _ = headings;
        let remove = (img > 1.0 && p / img < 0.5 && !in_figure)
            || (!is_list && li > p)
            || (input > (p / 3.0).floor())
            || (!is_list
                && heading_density < 0.9
                && content_len < 25
                && (img == 0.0 || img > 2.0)
                && !in_figure)
            || (!is_list && weight < 25.0 && ld > 0.2 + list_len * 0.0)
            || (weight >= 25.0 && ld > 0.5)
            || ((embed == 1 && content_len < 75) || embed > 1)
            || (is_list && ld > 0.5 && weight < 25.0);
        if remove {
            dom.remove(node);
        }
    }
}

fn is_data_table(dom: &Dom, table: Id) -> bool {
    if dom.attr(table, "role") == Some("presentation") {
        return false;
    }
    let desc = dom.descendants(table);
    if desc.iter().any(|d| {
        matches!(
            dom.tag(*d),
            "caption" | "thead" | "tfoot" | "th" | "col" | "colgroup"
        )
    }) {
        return true;
    }
    if desc.iter().any(|d| dom.tag(*d) == "table") {
        return false;
    }
    let rows = desc.iter().filter(|d| dom.tag(**d) == "tr").count();
    let cells = desc.iter().filter(|d| dom.tag(**d) == "td").count();
    rows >= 10 || cells > 4 * rows.max(1) || (rows >= 2 && cells >= 4)
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A heading with nothing after it ("You may also like", "Related") introduced content
/// that was cleaned away; it is not part of the article.
fn drop_trailing_headings(dom: &mut Dom, root: Id) {
    loop {
        // The last element in document order that carries text.
        let mut cur = root;
        let last = loop {
            let next = dom.nodes[cur]
                .children
                .iter()
                .rev()
                .copied()
                .find(|c| !dom.text(*c).trim().is_empty());
            match next {
                Some(c) if dom.is_element(c) => {
                    if matches!(dom.tag(c), "h1" | "h2" | "h3" | "h4" | "h5" | "h6") {
                        break Some(c);
                    }
                    cur = c;
                }
                _ => break None,
            }
        };
        match last {
            Some(h) => dom.remove(h),
            None => return,
        }
    }
}

/// Whether the next element after `id` (or after its parent, for a caption wrapped in a
/// paragraph) is a table: a table caption is content.
fn introduces_table(dom: &Dom, id: Id) -> bool {
    next_is_table(dom, id) || dom.nodes[id].parent.is_some_and(|p| next_is_table(dom, p))
}

fn next_is_table(dom: &Dom, id: Id) -> bool {
    let Some(p) = dom.nodes[id].parent else {
        return false;
    };
    let siblings = &dom.nodes[p].children;
    let Some(pos) = siblings.iter().position(|c| *c == id) else {
        return false;
    };
    siblings[pos + 1..]
        .iter()
        .find(|c| dom.is_element(**c))
        .is_some_and(|c| {
            dom.tag(*c) == "table" || dom.descendants(*c).iter().any(|d| dom.tag(*d) == "table")
        })
}
