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
    } else if matches!(
        (o[0], o[1], o[2]),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
    ) {
        Some("documentation address")
    } else {
        None
    }
}

fn v4_from(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let b = ip.octets();
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
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 well-known prefix 64:ff9b::/96: judge the embedded IPv4 address.
        v4_reason(v4_from(s[6], s[7]))
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215). The translator picks the
        // prefix length, so judge both RFC 6052 layouts a /48 network may use: /48
        // (address in octets 6-7 and 9-10) and /96 (the last four octets); a layout
        // whose octets are all zero is not the one in use.
        let layouts = [Ipv4Addr::new(b[6], b[7], b[9], b[10]), v4_from(s[6], s[7])];
        let used: Vec<Ipv4Addr> = layouts
            .into_iter()
            .filter(|v4| !v4.is_unspecified())
            .collect();
        if used.is_empty() {
            return Some("unspecified address");
        }
        used.into_iter().find_map(v4_reason)
    } else if s[0] == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48 relays to AA.BB.CC.DD.
        v4_reason(v4_from(s[1], s[2]))
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: the server is in bits 32-63, the client's address is stored
        // inverted in the last 32 bits.
        v4_reason(v4_from(!s[6], !s[7])).or_else(|| v4_reason(v4_from(s[2], s[3])))
    } else if s[0] == 0x2001 && s[1] == 0xdb8 {
        Some("documentation address")
    } else if s[0] == 0x100 && s[1..4] == [0, 0, 0] {
        Some("discard-only address")
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible (deprecated) ::a.b.c.d
        v4_reason(v4_from(s[6], s[7])).or(Some("IPv4-compatible address"))
    } else if s[0..6] == [0, 0, 0, 0, 0xffff, 0] {
        // IPv4-translated (SIIT, RFC 2765) ::ffff:0:a.b.c.d
        v4_reason(v4_from(s[6], s[7])).or(Some("IPv4-translated address"))
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
            "::ffff:0:127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a9fe:a9:fe00::",
            "64:ff9b:1:7f00:0:100::",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2002:c0a8:101::42",
            // Teredo, client 127.0.0.1 (stored inverted: 80ff:fffe).
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            // Teredo, server 10.0.0.1, public client 1.1.1.1 (inverted: fefe:fefe).
            "2001:0:a00:1::fefe:fefe",
            "2001:db8::1",
            "ff02::1",
            "192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(non_public_reason(ip).is_some(), "{ip} should be refused");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            // The same public address behind each translation is still public.
            "64:ff9b::101:101",
            "64:ff9b:1:101:1:100::",
            "2002:101:101::1",
            "2001:0:4136:e378:8000:63bf:fefe:fefe",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(non_public_reason(ip), None, "{ip} is public");
        }
    }
}
