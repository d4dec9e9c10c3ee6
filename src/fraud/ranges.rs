//! Sets of address ranges (IPv4 and IPv6) matched in O(log n). Pure: no I/O.
//!
//! Every address is a point on one 128-bit line: IPv6 as is, IPv4 at its mapped place
//! `::ffff:a.b.c.d`, so that one sorted list answers for both families and an IPv4
//! client matches `::ffff:0:0/96` entries as well as `a.b.c.d/n` ones. Ranges are
//! merged when the set is built (overlapping and adjacent ones become one), so a lookup
//! is one binary search over the starts and one comparison with the end.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

use super::client::canonical;

/// Longest line accepted in a list file (an IPv6 CIDR with a comment fits easily).
pub const MAX_LINE: usize = 512;

/// An address as a point on the 128-bit line (IPv4 at its mapped place).
pub fn point(ip: IpAddr) -> u128 {
    match canonical(ip) {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The first and last point of a network.
pub fn bounds(net: &IpNet) -> (u128, u128) {
    let net = net.trunc();
    (point(net.network()), point(net.broadcast()))
}

/// The address at a point (IPv4 when the point is in `::ffff:0:0/96`).
pub fn address(p: u128) -> IpAddr {
    canonical(IpAddr::V6(Ipv6Addr::from(p)))
}

/// Sorted, merged, non-overlapping inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    starts: Vec<u128>,
    ends: Vec<u128>,
}

impl RangeSet {
    /// Builds the set from inclusive `(start, end)` ranges in any order.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u128, u128)>) -> RangeSet {
        let mut v: Vec<(u128, u128)> = ranges.into_iter().filter(|(s, e)| s <= e).collect();
        v.sort_unstable();
        let mut set = RangeSet {
            starts: Vec::with_capacity(v.len()),
            ends: Vec::with_capacity(v.len()),
        };
        for (s, e) in v {
            match set.ends.last_mut() {
                // Overlapping or adjacent (end + 1 == s): extend the previous range.
                Some(last) if s <= last.saturating_add(1) => *last = (*last).max(e),
                _ => {
                    set.starts.push(s);
                    set.ends.push(e);
                }
            }
        }
        set
    }

    pub fn from_nets<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> RangeSet {
        Self::from_ranges(nets.into_iter().map(bounds))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_point(point(ip))
    }

    pub fn contains_point(&self, p: u128) -> bool {
        // The number of ranges starting at or before p; the candidate is the last of them.
        let i = self.starts.partition_point(|s| *s <= p);
        i > 0 && p <= self.ends[i - 1]
    }

    /// Merged ranges in the set.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

/// One problem in a list file: its 1-based line number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses a list file: one address or CIDR per line; `#` starts a comment (whole line
/// or after the entry); blank lines are skipped. A CIDR with host bits set
/// (`10.1.2.3/8`) means its network (`10.0.0.0/8`). Any other content is an error
/// naming the line: a list is replaced only by a file that parses completely.
pub fn parse_list(text: &str) -> Result<Vec<IpNet>, LineError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let err = |message: String| LineError { line: i + 1, message };
        if raw.len() > MAX_LINE {
            return Err(err(format!("longer than {MAX_LINE} bytes")));
        }
        let entry = raw.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        out.push(
            parse_entry(entry).ok_or_else(|| err(format!("{entry:?} is not an IP address or CIDR range")))?,
        );
    }
    Ok(out)
}

/// `1.2.3.4`, `1.2.3.0/24`, `2001:db8::/32`, `::ffff:1.2.3.4` (the IPv4 address).
pub fn parse_entry(s: &str) -> Option<IpNet> {
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => IpNet::from(s.parse::<IpAddr>().ok()?),
    };
    Some(net.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> RangeSet {
        let nets: Vec<IpNet> = entries.iter().map(|e| parse_entry(e).unwrap()).collect();
        RangeSet::from_nets(&nets)
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn matches_ipv4_and_ipv6_ranges_at_their_edges() {
        let s = set(&["192.0.2.0/24", "198.51.100.7", "2001:db8::/32", "10.0.0.0/8"]);
        for yes in [
            "192.0.2.0",
            "192.0.2.255",
            "198.51.100.7",
            "10.255.255.255",
            "2001:db8::",
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.0.2.9",
        ] {
            assert!(s.contains(ip(yes)), "{yes}");
        }
        for no in [
            "192.0.1.255",
            "192.0.3.0",
            "198.51.100.6",
            "198.51.100.8",
            "11.0.0.0",
            "2001:db9::",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            "::",
            "::1",
        ] {
            assert!(!s.contains(ip(no)), "{no}");
        }
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let s = set(&[
            "10.0.0.0/24",
            "10.0.1.0/24",
            "10.0.0.128/25",
            "10.0.0.5",
            "10.0.3.0/24",
        ]);
        assert_eq!(s.len(), 2, "10.0.0.0–10.0.1.255 and 10.0.3.0/24");
        assert!(s.contains(ip("10.0.1.200")));
        assert!(!s.contains(ip("10.0.2.0")));
        assert!(set(&[]).is_empty());
        assert!(!set(&[]).contains(ip("1.2.3.4")));
        let all = set(&["::/0"]);
        assert_eq!(all.len(), 1);
        assert!(all.contains(ip("255.255.255.255")) && all.contains(ip("ffff::1")));
    }

    #[test]
    fn the_mapped_block_covers_every_ipv4_address() {
        let s = set(&["::ffff:0:0/96"]);
        assert!(s.contains(ip("1.2.3.4")));
        assert!(!s.contains(ip("2001:db8::1")));
        assert_eq!(address(point(ip("::ffff:1.2.3.4"))), ip("1.2.3.4"));
        assert_eq!(address(point(ip("2001:db8::1"))), ip("2001:db8::1"));
    }

    #[test]
    fn agrees_with_a_linear_scan_on_random_data() {
        // A small LCG: deterministic, no dependency.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            x
        };
        let mut nets = Vec::new();
        for _ in 0..2000 {
            let a = std::net::Ipv4Addr::from((next() >> 32) as u32);
            let len = 8 + (next() % 25) as u8;
            nets.push(IpNet::new(IpAddr::V4(a), len).unwrap().trunc());
        }
        let s = RangeSet::from_nets(&nets);
        for _ in 0..20_000 {
            let probe = IpAddr::V4(std::net::Ipv4Addr::from((next() >> 32) as u32));
            assert_eq!(
                s.contains(probe),
                nets.iter().any(|n| n.contains(&probe)),
                "{probe}"
            );
        }
    }

    #[test]
    fn list_files_take_comments_blank_lines_and_refuse_garbage() {
        let text = "# Tor exits\n\n192.0.2.1\n  198.51.100.0/24   # a /24\n2001:db8::/48\r\n10.1.2.3/8\n";
        let nets = parse_list(text).unwrap();
        assert_eq!(
            nets.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["192.0.2.1/32", "198.51.100.0/24", "2001:db8::/48", "10.0.0.0/8"]
        );
        let e = parse_list("1.2.3.4\nbanana\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("banana"));
        assert_eq!(parse_list("1.2.3.4/33").unwrap_err().line, 1);
        assert_eq!(parse_list(&"1".repeat(600)).unwrap_err().line, 1);
        assert!(parse_list("").unwrap().is_empty());
        assert_eq!(
            parse_list("::ffff:1.2.3.4").unwrap()[0].to_string(),
            "::ffff:1.2.3.4/128"
        );
    }
}
