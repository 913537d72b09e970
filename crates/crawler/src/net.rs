//! SSRF guard: which addresses a crawl may connect to, and a DNS resolver for reqwest
//! that refuses the others, so the connection goes to an address that was checked
//! (no second lookup that DNS rebinding could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An address refused by the guard.
#[derive(Debug, Clone, thiserror::Error)]
#[error("refused to connect to {host}: {reason} (set crawler.allow_private_networks to allow)")]
pub struct Blocked {
    pub host: String,
    pub reason: &'static str,
}

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_private() {
        Some("private address")
    } else if ip.is_link_local() {
        Some("link-local address")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("carrier-grade NAT address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignment address")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking address")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_unspecified() {
        Some("unspecified address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("unique local address")
    } else if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        Some("link-local address")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64: judge the embedded IPv4 address.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        v4_reason(v4)
    } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0 {
        // IPv4-compatible (deprecated) ::a.b.c.d
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        v4_reason(v4).or(Some("IPv4-compatible address"))
    } else {
        None
    }
}

/// Resolver that drops non-public addresses and fails when none is left.
#[derive(Debug, Default, Clone)]
pub(crate) struct GuardedResolver {
    /// Host names whose addresses are not checked.
    pub allowlist: Vec<String>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let exempt = self.allowlist.iter().any(|h| h.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut reason = "no address";
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match non_public_reason(a.ip()).filter(|_| !exempt) {
                    Some(r) => {
                        reason = r;
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(Blocked { host, reason });
                return Err(err);
            }
            let iter: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(iter)
        })
    }
}

/// Finds a [`Blocked`] anywhere in an error's source chain.
pub(crate) fn find_blocked(err: &(dyn std::error::Error + 'static)) -> Option<Blocked> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(b) = e.downcast_ref::<Blocked>() {
            return Some(b.clone());
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_mapped_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "ff02::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(non_public_reason(ip).is_some(), "{ip} should be refused");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(non_public_reason(ip), None, "{ip} is public");
        }
    }
}
