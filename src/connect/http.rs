//! Two-host signaling over plain HTTP. The answering side (`--listen ADDR:PORT`) runs a tiny
//! axum endpoint under a random session token; the offering side (`--peer URL`) talks to it
//! with reqwest:
//!
//! - `POST /{token}/messages` — one [`SignalMsg`] (JSON) from the offerer to the answerer;
//! - `GET /{token}/messages` — long poll (up to 20 s): a JSON array of messages for the
//!   offerer, possibly empty; `410 Gone` once the answerer has finished.
//!
//! A wrong token gets `403`; a body that is not a signaling message gets `400`.
#![allow(clippy::disallowed_methods)] // the I/O edge: long polls keep their own clock

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, watch, Notify};

use super::signal::{decode_message, decode_messages, Signal, SignalError, SignalMsg};

/// How long one long poll waits for a message.
const LONG_POLL: Duration = Duration::from_secs(20);
/// Deadline of one HTTP request (long polls get [`LONG_POLL`] on top).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh random session token (128 bits, hex).
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

struct Shared {
    token: String,
    to_answerer: mpsc::UnboundedSender<SignalMsg>,
    to_offerer: Mutex<VecDeque<SignalMsg>>,
    notify: Notify,
    finished: std::sync::atomic::AtomicBool,
}

type AppState = Arc<Shared>;

fn text(status: StatusCode, body: &str) -> Response {
    (status, format!("{body}\n")).into_response()
}

fn token_ok(s: &Shared, token: &str) -> bool {
    // Same length for every real token; a plain compare leaks at most the length.
    s.token.len() == token.len() && s.token.bytes().zip(token.bytes()).all(|(a, b)| a == b)
}

async fn post_message(
    State(s): State<AppState>,
    Path(token): Path<String>,
    body: String,
) -> Response {
    if !token_ok(&s, &token) {
        return text(StatusCode::FORBIDDEN, "wrong session token");
    }
    match decode_message(&body) {
        Ok(m) => {
            let _ = s.to_answerer.send(m);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn poll_messages(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    if !token_ok(&s, &token) {
        return text(StatusCode::FORBIDDEN, "wrong session token");
    }
    let until = tokio::time::Instant::now() + LONG_POLL;
    loop {
        let notified = s.notify.notified();
        {
            let mut q = s.to_offerer.lock().unwrap_or_else(|e| e.into_inner());
            if !q.is_empty() {
                let msgs: Vec<SignalMsg> = q.drain(..).collect();
                return axum::Json(msgs).into_response();
            }
        }
        if s.finished.load(std::sync::atomic::Ordering::Acquire) {
            return text(StatusCode::GONE, "the answering side has finished");
        }
        if tokio::time::timeout_at(until, notified).await.is_err() {
            return axum::Json(Vec::<SignalMsg>::new()).into_response();
        }
    }
}

/// The answering side's signaling: an HTTP endpoint the offerer talks to.
pub struct ListenSignal {
    shared: AppState,
    rx: mpsc::UnboundedReceiver<SignalMsg>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ListenSignal {
    fn drop(&mut self) {
        self.shared
            .finished
            .store(true, std::sync::atomic::Ordering::Release);
        self.shared.notify.notify_waiters();
        // Let a pending long poll see 410, then stop serving.
        let server = self.server.abort_handle();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            server.abort();
        });
    }
}

/// Bind `addr`, print the URL to give the offerer on stderr, and serve until dropped.
pub async fn listen(
    addr: SocketAddr,
    _deadline: Instant,
    _cancel: watch::Receiver<bool>,
) -> Result<ListenSignal, SignalError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| SignalError::Unreachable(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().unwrap_or(addr);
    let token = new_token();
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        token: token.clone(),
        to_answerer: tx,
        to_offerer: Mutex::new(VecDeque::new()),
        notify: Notify::new(),
        finished: false.into(),
    });
    let app = Router::new()
        .route("/{token}/messages", get(poll_messages).post(post_message))
        .with_state(shared.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    eprintln!("iceprobe: signaling on http://{local}/{token}");
    eprintln!("iceprobe: on the other host run: iceprobe connect --peer http://{local}/{token}");
    Ok(ListenSignal { shared, rx, server })
}

#[async_trait::async_trait]
impl Signal for ListenSignal {
    async fn send(&mut self, msg: SignalMsg) -> Result<(), SignalError> {
        self.shared
            .to_offerer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(msg);
        self.shared.notify.notify_waiters();
        Ok(())
    }
    async fn recv(&mut self) -> Result<Option<SignalMsg>, SignalError> {
        match self.rx.recv().await {
            Some(m) => Ok(Some(m)),
            None => std::future::pending().await,
        }
    }
    fn trickle(&self) -> bool {
        true
    }
}

/// The offering side's signaling: reqwest against the answerer's endpoint.
pub struct PeerSignal {
    client: reqwest::Client,
    url: String,
    /// `url` without the token, for errors.
    shown: String,
    rx: mpsc::UnboundedReceiver<Result<SignalMsg, SignalError>>,
    poller: tokio::task::JoinHandle<()>,
}

impl Drop for PeerSignal {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

fn status_error(status: reqwest::StatusCode, body: &str) -> SignalError {
    let body = body.trim();
    match status.as_u16() {
        403 | 404 => SignalError::Rejected(format!(
            "HTTP {status}: {body} (check the token: it is the last part of the URL the listening side printed)"
        )),
        410 => SignalError::Vanished("the listening side has finished".into()),
        _ => SignalError::Garbage(format!("HTTP {status}: {body}")),
    }
}

/// `url` as errors show it: the path is the session token, a secret, so it is replaced.
pub fn redact_peer_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    match rest.split_once('/') {
        Some((host, path)) if !path.is_empty() => format!("{scheme}{host}/[token]"),
        _ => url.to_string(),
    }
}

/// A failed request. reqwest's own message names the URL, which carries the token: it is left
/// out, and `shown` (already redacted) is used instead.
fn send_error(e: reqwest::Error, shown: &str) -> SignalError {
    if e.is_connect() {
        SignalError::Unreachable(format!("{shown}: connection refused or unreachable"))
    } else if e.is_timeout() {
        SignalError::Vanished(format!("{shown}: no answer in time"))
    } else {
        SignalError::Vanished(format!("{shown}: {}", e.without_url()))
    }
}

/// Start talking to the listening side at `base` (`http://HOST:PORT`) with `token`.
pub async fn connect(
    base: &str,
    token: &str,
    _deadline: Instant,
    _cancel: watch::Receiver<bool>,
) -> Result<PeerSignal, SignalError> {
    let client = reqwest::Client::builder()
        .connect_timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| SignalError::Unreachable(format!("HTTP client: {e}")))?;
    let url = format!("{}/{token}/messages", base.trim_end_matches('/'));
    let shown = redact_peer_url(&url);
    let (tx, rx) = mpsc::unbounded_channel();
    let poll_client = client.clone();
    let poll_url = url.clone();
    let poll_shown = shown.clone();
    let poller = tokio::spawn(async move {
        loop {
            let r = poll_client
                .get(&poll_url)
                .timeout(LONG_POLL + REQUEST_TIMEOUT)
                .send()
                .await;
            let resp = match r {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(send_error(e, &poll_shown)));
                    return;
                }
            };
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if !status.is_success() {
                let _ = tx.send(Err(status_error(status, &body)));
                return;
            }
            match decode_messages(&body) {
                Ok(msgs) => {
                    for m in msgs {
                        let _ = tx.send(Ok(m));
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    Ok(PeerSignal {
        client,
        url,
        shown,
        rx,
        poller,
    })
}

#[async_trait::async_trait]
impl Signal for PeerSignal {
    async fn send(&mut self, msg: SignalMsg) -> Result<(), SignalError> {
        let body = serde_json::to_string(&msg).unwrap_or_default();
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| send_error(e, &self.shown))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(status_error(status, &body))
    }
    async fn recv(&mut self) -> Result<Option<SignalMsg>, SignalError> {
        match self.rx.recv().await {
            Some(r) => r.map(Some),
            None => std::future::pending().await,
        }
    }
    fn trickle(&self) -> bool {
        true
    }
}

/// Split `http://HOST:PORT/TOKEN` into the base and the token (pure). With `token` given
/// separately, the URL must not carry one. Errors never show the token.
pub fn split_peer_url(url: &str, token: Option<&str>) -> Result<(String, String), String> {
    let shown = redact_peer_url(url);
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{shown:?}: expected http://HOST:PORT/TOKEN (plain HTTP, as --listen prints it)")
    })?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, p.trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(format!("{shown:?}: no host"));
    }
    let token = match (path.is_empty(), token) {
        (false, None) => path.to_string(),
        (true, Some(t)) => t.to_string(),
        (false, Some(_)) => {
            return Err(format!(
                "{shown:?}: the URL already carries a token; drop --token"
            ))
        }
        (true, None) => {
            return Err(format!(
                "{shown:?}: no session token: use the whole URL --listen printed, or add --token"
            ))
        }
    };
    if token.is_empty() || token.contains('/') || !token.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(format!(
            "{shown:?}: a session token is letters and digits only"
        ));
    }
    Ok((format!("http://{host}"), token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls() {
        assert_eq!(
            split_peer_url("http://198.18.0.10:8080/abc123", None),
            Ok(("http://198.18.0.10:8080".into(), "abc123".into()))
        );
        assert_eq!(
            split_peer_url("http://h:1/", Some("t0k")),
            Ok(("http://h:1".into(), "t0k".into()))
        );
        for (u, t, want) in [
            ("https://h/x", None, "plain HTTP"),
            ("http://h:1", None, "no session token"),
            ("http://h:1/a", Some("b"), "drop --token"),
            ("http://h:1/a/b", None, "letters and digits"),
            ("http:///a", None, "no host"),
        ] {
            let e = split_peer_url(u, t).unwrap_err();
            assert!(e.contains(want), "{u}: {e}");
        }
    }

    #[test]
    fn errors_never_show_the_token() {
        for (u, t) in [
            ("https://h/s3cretTok", None),
            ("http://h:1/s3cretTok", Some("b")),
            ("http://h:1/s3cretTok/x", None),
            ("http://h:1/s3cret-Tok", None),
            ("http://h:1", Some("s3cret-Tok")),
        ] {
            let e = split_peer_url(u, t).unwrap_err();
            assert!(!e.contains("s3cret"), "{u}: {e}");
        }
        for (url, shown) in [
            ("http://h:1/tok/messages", "http://h:1/[token]"),
            ("http://h:1/", "http://h:1/"),
            ("http://h:1", "http://h:1"),
            ("h:1/tok", "h:1/[token]"),
        ] {
            assert_eq!(redact_peer_url(url), shown);
        }
    }

    #[test]
    fn tokens_are_long_and_random() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
