//! The `--metrics` endpoint: `GET /metrics` over HTTP/1.1 (hyper), on a
//! thread and a runtime of its own, so that a scrape, or a flood of them,
//! costs the capture nothing but a copy of the counters.
//!
//! Each scrape encodes a snapshot ([`SharedCounters::snapshot`]). At most
//! [`MAX_CONNECTIONS`] are kept at once: a new one beyond that closes the
//! one idle the longest ([`Clients`]: not being answered, least recently
//! answered), so idle or stuck clients never keep a scraper out. A client
//! gets [`HEADER_TIMEOUT`] to send its request and a connection lives at
//! most [`CONNECTION_LIFETIME`].

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{encode, About, Format};
use crate::clients::Clients;
use crate::stats::SharedCounters;

/// Connections kept at once.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay open (a scraper reconnects).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("--metrics {addr}: cannot listen: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start a metrics thread: {0}")]
    Thread(io::Error),
}

/// A bound, not yet serving, metrics endpoint. Bound before privileges
/// are dropped (a port below 1024 needs them), served after.
pub struct MetricsServer {
    listener: std::net::TcpListener,
}

impl MetricsServer {
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(MetricsServer { listener })
    }

    /// The address it listens on (the port chosen for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `counters` until the process ends.
    pub fn spawn(self, counters: SharedCounters, about: About) -> Result<(), MetricsError> {
        let listener = self.listener;
        super::spawn_thread("metrics", move || {
            serve(listener, counters, Arc::new(about))
        })
    }
}

async fn serve(listener: std::net::TcpListener, counters: SharedCounters, about: Arc<About>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log::error!("--metrics: {e}");
            return;
        }
    };
    let mut clients = Clients::new(MAX_CONNECTIONS, counters.metrics_dropped());
    let mut tasks = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                // Out of descriptors: an idle client gives its up.
                Err(e) if crate::clients::is_out_of_fds(&e) && clients.evict_idlest() => continue,
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    log::warn!("--metrics: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                clients.joined(done);
                continue;
            }
        };
        if !clients.make_room() {
            // Every connection is being answered: closed unanswered.
            counters
                .metrics_dropped()
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        let counters = counters.clone();
        let about = about.clone();
        let activity = clients.activity();
        let act = activity.clone();
        let task = tasks.spawn(async move {
            let service = service_fn(move |req| {
                act.busy();
                let reply = respond(&req, &counters, &about);
                act.idle();
                async move { Ok::<_, Infallible>(reply) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
        });
        clients.started(activity, task);
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The reply to one request.
fn respond(
    req: &Request<Incoming>,
    counters: &SharedCounters,
    about: &About,
) -> Response<Full<Bytes>> {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    match req.uri().path() {
        "/metrics" if get => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            let body = encode(counters.snapshot(), about, format);
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            r
        }
        "/" if get => text(StatusCode::OK, "tcpeek: metrics are at /metrics\n"),
        "/metrics" | "/" => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and HEAD are served here\n",
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        ),
    }
}
