//! Local interface addresses: the host candidates.

use std::net::IpAddr;

use super::dns::Families;

/// One local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    /// Interface name.
    pub interface: String,
    /// Interface index in enumeration order (for local preference).
    pub index: u32,
    /// The address.
    pub ip: IpAddr,
}

/// Which addresses to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFilter {
    /// Families to keep.
    pub families: Families,
    /// Keep loopback addresses (the demo runs on loopback).
    pub loopback: bool,
    /// Keep IPv6 link-local addresses (fe80::/10), which browsers skip.
    pub link_local: bool,
}

/// Whether `ip` passes `f` (pure, table-tested).
pub fn keep(ip: IpAddr, f: &HostFilter) -> bool {
    if !f.families.allows(ip) || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    if ip.is_loopback() {
        return f.loopback;
    }
    match ip {
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => f.link_local,
        IpAddr::V4(v4) if v4.is_link_local() => f.link_local,
        _ => true,
    }
}

/// The machine's addresses that pass the filter, in interface order.
pub fn local_addresses(f: &HostFilter) -> std::io::Result<Vec<LocalAddr>> {
    let mut names: Vec<String> = vec![];
    let mut out = vec![];
    for i in if_addrs::get_if_addrs()? {
        let ip = i.ip();
        if !keep(ip, f) {
            continue;
        }
        let index = match names.iter().position(|n| *n == i.name) {
            Some(p) => p,
            None => {
                names.push(i.name.clone());
                names.len() - 1
            }
        } as u32;
        out.push(LocalAddr {
            interface: i.name,
            index,
            ip,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_table() {
        let both = Families { v4: true, v6: true };
        let plain = HostFilter {
            families: both,
            loopback: false,
            link_local: false,
        };
        let lo = HostFilter {
            loopback: true,
            ..plain
        };
        let ll = HostFilter {
            link_local: true,
            ..plain
        };
        let v4only = HostFilter {
            families: Families {
                v4: true,
                v6: false,
            },
            ..plain
        };
        let cases: &[(&str, HostFilter, bool)] = &[
            ("198.18.0.10", plain, true),
            ("100.64.0.2", plain, true),
            ("fd00::10", plain, true),
            ("fd00::10", v4only, false),
            ("127.0.0.1", plain, false),
            ("127.0.0.1", lo, true),
            ("::1", lo, true),
            ("fe80::1", plain, false),
            ("fe80::1", ll, true),
            ("169.254.1.1", plain, false),
            ("0.0.0.0", lo, false),
        ];
        for (ip, f, want) in cases {
            assert_eq!(keep(ip.parse().unwrap(), f), *want, "{ip} {f:?}");
        }
    }
}
