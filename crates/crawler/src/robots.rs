//! robots.txt: the group for our token (`agentbase-crawler`) or `*`, Allow/Disallow with
//! `*` and `$`, longest match wins (Allow on ties), Crawl-delay, Sitemap lines.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Robots {
    rules: Vec<(bool, String)>,
    pub crawl_delay: Option<f64>,
    pub sitemaps: Vec<String>,
}

pub const ROBOTS_TOKEN: &str = "agentbase-crawler";

#[derive(Default)]
struct Group {
    agents: Vec<String>,
    rules: Vec<(bool, String)>,
    delay: Option<f64>,
}

impl Robots {
    pub fn parse(text: &str) -> Robots {
        let mut groups: Vec<Group> = Vec::new();
        let mut sitemaps = Vec::new();
        let mut in_agents = false;
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if !in_agents {
                        groups.push(Group::default());
                    }
                    in_agents = true;
                    if let Some(g) = groups.last_mut() {
                        g.agents.push(value.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    in_agents = false;
                    if let Some(g) = groups.last_mut()
                        && !(key == "disallow" && value.is_empty())
                    {
                        g.rules.push((key == "allow", value.to_string()));
                    }
                }
                "crawl-delay" => {
                    in_agents = false;
                    if let Some(g) = groups.last_mut() {
                        g.delay = value
                            .parse::<f64>()
                            .ok()
                            .filter(|d| d.is_finite() && *d >= 0.0);
                    }
                }
                "sitemap" => sitemaps.push(value.to_string()),
                _ => {}
            }
        }
        let specific = groups.iter().position(|g| {
            g.agents
                .iter()
                .any(|a| a != "*" && ROBOTS_TOKEN.starts_with(a.as_str()))
        });
        let chosen = specific.or_else(|| {
            groups
                .iter()
                .position(|g| g.agents.iter().any(|a| a == "*"))
        });
        match chosen {
            Some(i) => {
                let g = &groups[i];
                Robots {
                    rules: g.rules.clone(),
                    crawl_delay: g.delay,
                    sitemaps,
                }
            }
            None => Robots {
                sitemaps,
                ..Robots::default()
            },
        }
    }

    /// Whether `path` (path and query of the URL) may be fetched.
    pub fn allowed(&self, path: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if rule_matches(pattern, path) {
                let len = pattern.len();
                match best {
                    Some((l, a)) if l > len || (l == len && a) => {}
                    _ => best = Some((len, *allow)),
                }
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

fn rule_matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            pos = part.len();
        } else if i == parts.len() - 1 && anchored {
            return path.len() >= pos + part.len() && path.ends_with(part);
        } else {
            match path[pos..].find(part) {
                Some(at) => pos += at + part.len(),
                None => return false,
            }
        }
    }
    !anchored || pos == path.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_rule_wins_and_wildcards_work() {
        let r = Robots::parse(
            "User-agent: other\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\nAllow: /private/open\nDisallow: /*.pdf$\nCrawl-delay: 2\nSitemap: https://x.test/sitemap.xml\n",
        );
        assert!(r.allowed("/"));
        assert!(!r.allowed("/private/x"));
        assert!(r.allowed("/private/open/1"));
        assert!(!r.allowed("/a/b.pdf"));
        assert!(r.allowed("/a/b.pdf?x=1"));
        assert_eq!(r.crawl_delay, Some(2.0));
        assert_eq!(r.sitemaps, vec!["https://x.test/sitemap.xml".to_string()]);
    }

    #[test]
    fn our_own_group_beats_the_star_group() {
        let r = Robots::parse(
            "User-agent: *\nDisallow: /\n\nUser-agent: agentbase-crawler\nDisallow: /no\n",
        );
        assert!(r.allowed("/yes"));
        assert!(!r.allowed("/no"));
    }
}
