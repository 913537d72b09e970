//! A small arena DOM that the readability pass can score, rewrite and prune cheaply.
//!
//! The HTML is parsed by `scraper` (html5ever); the CSS selectors of the remove/keep
//! options run on that tree, and the surviving part is copied into this arena, where
//! every node has an index so per-node scores are plain vectors.

use std::collections::HashSet;

use scraper::{Html, Node as SNode};
use url::Url;

pub(crate) type Id = usize;

#[derive(Debug, Clone)]
pub(crate) enum Data {
    Element {
        name: String,
        attrs: Vec<(String, String)>,
    },
    Text(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub parent: Option<Id>,
    pub children: Vec<Id>,
    pub data: Data,
}

/// The children of a document's `<body>` (or of the document when it has none).
fn body_children(html: &Html) -> Vec<ego_tree::NodeRef<'_, SNode>> {
    let body = html
        .tree
        .root()
        .descendants()
        .find(|n| n.value().as_element().is_some_and(|e| e.name() == "body"));
    match body {
        Some(b) => b.children().collect(),
        None => html.tree.root().children().collect(),
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Dom {
    pub nodes: Vec<Node>,
}

/// Elements whose content is never text of the page.
pub(crate) const SKIP_TAGS: &[&str] = &[
    "head", "script", "style", "noscript", "template", "svg", "math", "canvas", "iframe", "object",
    "embed", "select", "option", "button", "input", "textarea", "link", "meta", "title", "base",
    "audio", "video", "source", "track", "map", "dialog",
];

/// An iframe's document, inlined where the `<iframe src>` naming it stands.
pub(crate) struct Frame<'a> {
    /// The frame's absolute URL, as the page's `src` resolves.
    pub url: &'a str,
    pub doc: &'a Html,
    /// Its nodes the remove selector matched.
    pub removed: HashSet<ego_tree::NodeId>,
    /// What its relative links resolve against.
    pub base: Option<Url>,
}

impl Dom {
    pub fn new_element(&mut self, name: &str, parent: Option<Id>) -> Id {
        let id = self.nodes.len();
        self.nodes.push(Node {
            parent,
            children: Vec::new(),
            data: Data::Element {
                name: name.to_string(),
                attrs: Vec::new(),
            },
        });
        if let Some(p) = parent {
            self.nodes[p].children.push(id);
        }
        id
    }

    fn push(&mut self, data: Data, parent: Id) -> Id {
        let id = self.nodes.len();
        self.nodes.push(Node {
            parent: Some(parent),
            children: Vec::new(),
            data,
        });
        self.nodes[parent].children.push(id);
        id
    }

    /// Copies the `<body>` of `html` (or the matches of `keep`, when given) into an arena
    /// rooted at a synthetic `body`, leaving out the nodes in `removed` and elements that
    /// never carry page text. An `<iframe>` whose `src` (resolved against `base`) names
    /// one of `frames` becomes a `div` holding that document's body, its links and
    /// images made absolute against the frame's own address.
    pub fn from_html(
        html: &Html,
        removed: &HashSet<ego_tree::NodeId>,
        keep: Option<&[ego_tree::NodeId]>,
        frames: &[Frame<'_>],
        base: Option<&Url>,
    ) -> (Dom, Id) {
        let mut dom = Dom::default();
        let root = dom.new_element("body", None);
        let starts: Vec<ego_tree::NodeRef<'_, SNode>> = match keep {
            Some(ids) => ids.iter().filter_map(|id| html.tree.get(*id)).collect(),
            None => body_children(html),
        };
        // Iterative copy: (source node, arena parent, 0 for the page or 1 + frame index).
        let mut stack: Vec<(ego_tree::NodeRef<'_, SNode>, Id, usize)> =
            starts.into_iter().rev().map(|n| (n, root, 0)).collect();
        while let Some((node, parent, tree)) = stack.pop() {
            let skip = match tree {
                0 => removed,
                i => &frames[i - 1].removed,
            };
            if skip.contains(&node.id()) {
                continue;
            }
            match node.value() {
                SNode::Text(t) => {
                    dom.push(Data::Text(t.to_string()), parent);
                }
                SNode::Element(e) => {
                    let name = e.name().to_ascii_lowercase();
                    if name == "iframe" && tree == 0 {
                        let src = e
                            .attr("src")
                            .and_then(|s| match base {
                                Some(b) => b.join(s.trim()).ok(),
                                None => Url::parse(s.trim()).ok(),
                            })
                            .map(|u| u.to_string());
                        if let Some((i, frame)) = src
                            .and_then(|src| frames.iter().enumerate().find(|(_, f)| f.url == src))
                        {
                            let div = dom.push(
                                Data::Element {
                                    name: "div".to_string(),
                                    attrs: vec![("data-iframe-src".into(), frame.url.into())],
                                },
                                parent,
                            );
                            for c in body_children(frame.doc).into_iter().rev() {
                                stack.push((c, div, i + 1));
                            }
                            continue;
                        }
                    }
                    if SKIP_TAGS.contains(&name.as_str()) {
                        continue;
                    }
                    let frame_base = match tree {
                        0 => None,
                        i => frames[i - 1].base.as_ref(),
                    };
                    let attrs = e
                        .attrs()
                        .map(|(k, v)| {
                            let k = k.to_ascii_lowercase();
                            let v = match frame_base {
                                // Inlined into the page, a frame's relative links would
                                // otherwise resolve against the page's address.
                                Some(fb) if (k == "href" || k == "src") && !v.starts_with('#') => {
                                    fb.join(v.trim()).map(|u| u.to_string()).unwrap_or_default()
                                }
                                _ => v.to_string(),
                            };
                            (k, v)
                        })
                        .collect();
                    let id = dom.push(Data::Element { name, attrs }, parent);
                    let children: Vec<_> = node.children().collect();
                    for c in children.into_iter().rev() {
                        stack.push((c, id, tree));
                    }
                }
                SNode::Document | SNode::Fragment => {
                    let children: Vec<_> = node.children().collect();
                    for c in children.into_iter().rev() {
                        stack.push((c, parent, tree));
                    }
                }
                _ => {}
            }
        }
        (dom, root)
    }

    pub fn tag(&self, id: Id) -> &str {
        match &self.nodes[id].data {
            Data::Element { name, .. } => name,
            Data::Text(_) => "#text",
        }
    }

    pub fn is_element(&self, id: Id) -> bool {
        matches!(self.nodes[id].data, Data::Element { .. })
    }

    pub fn attr(&self, id: Id, key: &str) -> Option<&str> {
        match &self.nodes[id].data {
            Data::Element { attrs, .. } => attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
            Data::Text(_) => None,
        }
    }

    pub fn set_tag(&mut self, id: Id, new: &str) {
        if let Data::Element { name, .. } = &mut self.nodes[id].data {
            *name = new.to_string();
        }
    }

    /// Detaches `id` from its parent (the node stays in the arena, unreachable).
    pub fn remove(&mut self, id: Id) {
        if let Some(p) = self.nodes[id].parent.take() {
            self.nodes[p].children.retain(|c| *c != id);
        }
    }

    /// Appends the text content of `id` to `out`, raw (whitespace untouched).
    pub fn text_into(&self, id: Id, out: &mut String) {
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            match &self.nodes[n].data {
                Data::Text(t) => out.push_str(t),
                Data::Element { .. } => {
                    for c in self.nodes[n].children.iter().rev() {
                        stack.push(*c);
                    }
                }
            }
        }
    }

    pub fn text(&self, id: Id) -> String {
        let mut s = String::new();
        self.text_into(id, &mut s);
        s
    }

    /// Elements below `id` (not including it), in document order.
    pub fn descendants(&self, id: Id) -> Vec<Id> {
        let mut out = Vec::new();
        let mut stack: Vec<Id> = self.nodes[id].children.iter().rev().copied().collect();
        while let Some(n) = stack.pop() {
            if self.is_element(n) {
                out.push(n);
                for c in self.nodes[n].children.iter().rev() {
                    stack.push(*c);
                }
            }
        }
        out
    }

    pub fn has_ancestor_tag(&self, id: Id, tags: &[&str], max_depth: usize) -> bool {
        let mut cur = self.nodes[id].parent;
        let mut depth = 0;
        while let Some(p) = cur {
            if max_depth > 0 && depth >= max_depth {
                return false;
            }
            if tags.contains(&self.tag(p)) {
                return true;
            }
            cur = self.nodes[p].parent;
            depth += 1;
        }
        false
    }
}

/// Number of characters of `s` once whitespace runs are collapsed and the ends trimmed.
pub(crate) fn normalized_len(s: &str) -> usize {
    let mut n = 0;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = n > 0;
        } else {
            if pending_space {
                n += 1;
                pending_space = false;
            }
            n += 1;
        }
    }
    n
}
