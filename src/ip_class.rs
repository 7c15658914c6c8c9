//! Address classes an operator cares about: an address that is not reachable from the public
//! internet, named by the range it is in.

use std::net::IpAddr;

/// Why `ip` is not a public address, or `None` when it is: loopback, RFC 1918 private,
/// link-local, CGNAT shared space (RFC 6598), IPv6 unique local (RFC 4193), unspecified.
/// IPv4-mapped IPv6 addresses are judged as their IPv4 address.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private (RFC 1918)")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("CGNAT shared address space (100.64.0.0/10, RFC 6598)")
            } else if v4.is_unspecified() {
                Some("unspecified (0.0.0.0)")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("unique local (fc00::/7)")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_unspecified() {
                Some("unspecified (::)")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_classes() {
        let cases: &[(&str, Option<&str>)] = &[
            ("198.18.0.1", None),
            ("203.0.113.7", None),
            ("10.1.2.3", Some("private (RFC 1918)")),
            ("172.16.0.1", Some("private (RFC 1918)")),
            ("192.168.1.1", Some("private (RFC 1918)")),
            (
                "100.64.0.1",
                Some("CGNAT shared address space (100.64.0.0/10, RFC 6598)"),
            ),
            (
                "100.127.255.255",
                Some("CGNAT shared address space (100.64.0.0/10, RFC 6598)"),
            ),
            ("100.128.0.1", None),
            ("127.0.0.1", Some("loopback")),
            ("169.254.1.1", Some("link-local")),
            ("0.0.0.0", Some("unspecified (0.0.0.0)")),
            ("::1", Some("loopback")),
            ("fd00::1", Some("unique local (fc00::/7)")),
            ("fe80::1", Some("link-local")),
            ("2001:db8::1", None),
            ("::ffff:10.0.0.1", Some("private (RFC 1918)")),
        ];
        for (ip, want) in cases {
            assert_eq!(non_public(ip.parse().unwrap()), *want, "{ip}");
        }
    }
}
