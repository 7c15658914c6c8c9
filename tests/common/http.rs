//! [`http_get`]: a plain HTTP/1.1 GET from inside a namespace, for `iceprobe serve`.

use super::netns::Netns;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Percent-encodes a query value.
pub fn query_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` on `addr` from inside `ns` with `Connection: close`; returns (status, body).
/// Panics when nothing answers within 60 s.
pub fn http_get(ns: &Netns, addr: &str, path: &str) -> (u16, String) {
    http_get_with(ns, addr, path, &[])
}

/// [`http_get`] with extra request headers.
pub fn http_get_with(
    ns: &Netns,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let addr = addr.to_string();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    ns.in_ns(move || {
        let mut s = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    })
}

/// Waits (at most 10 s) until something accepts TCP connections on `addr` inside `ns`.
pub fn wait_listening(ns: &Netns, addr: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let a = addr.to_string();
        if ns.in_ns(move || TcpStream::connect(a).is_ok()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listening on {addr}");
}
