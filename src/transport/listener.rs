//! The accept loop: our own, in place of `axum::serve`, so that what a hostile host on the court
//! LAN can hold is bounded (issue #12).
//!
//! Each listener (plain `[http] listen`, and the optional TLS `tls_listen`) accepts in one task
//! and serves the router per connection with hyper's HTTP/1 builder (`with_upgrades`, for the
//! WebSocket endpoints). On the way:
//!
//! - **Caps** ([`super::admission`]): a connection over `max_connections` or the per-address
//!   cap is closed at once (zero linger: a reset, no TIME_WAIT kept) and counted. A full
//!   handshake budget evicts its oldest handshake if it has sat for a second, else refuses the
//!   newcomer likewise. A connection's place is a [`Ticket`] that travels inside the socket, so
//!   it is released when the socket closes — also long after a WebSocket upgrade.
//! - **Timeouts**: hyper's header-read timeout (a request's head must arrive in time, on a new
//!   or a kept-alive connection); the handshake timeout from accept to the first response (the
//!   WebSocket's 101; a TLS handshake included); the keep-alive timeout between requests. A
//!   connection past its deadline is dropped and counted by which timeout closed it.
//! - **Accept errors** (EMFILE, ENFILE, ENOBUFS, …) back off from 10 ms to 1 s and are counted;
//!   accepted connections run on their own tasks and are not held up by the wait.
//! - **Shutdown**: the loops stop accepting when the token is cancelled; each connection
//!   finishes the request it is answering and closes (graceful shutdown); upgraded WebSockets
//!   drain through their own handlers. Every connection task is on the shutdown tracker.
//!
//! What `/metrics` shows of it is [`ListenerCollector`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::admission::{
    AcceptBackoff, Admission, Admitted, Caps, Expiry, Phase, Refusal, Ticket, Timeouts,
};
use crate::config::{Settings, SettingsHandle};
use crate::service::Shutdown;

/// hyper's per-connection buffer cap (its default is ~400 KiB): request heads and body chunks
/// larger than this are refused. 64 KiB is far above any request the gateway answers, and
/// keeps a held connection's memory small on a Pi.
const MAX_BUF_BYTES: usize = 64 * 1024;
/// At most one log line per this long about refusals (each refusal is counted on `/metrics`; a
/// flood must not become a flood of log lines on the SD card).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The timeouts every listener serves under (`[http]`; read at start, as the listeners are
/// bound then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// A request's head must arrive within this, on a new or a kept-alive connection.
    pub header_read: Duration,
    pub timeouts: Timeouts,
}

/// The caps of `[limits]`, as the settings in force say now.
fn caps(settings: &Settings) -> Caps {
    Caps {
        total: settings.limits.max_connections,
        per_address: settings.limits.max_connections_per_address,
        handshaking: settings.limits.max_handshaking,
    }
}

/// One bound listener: plain, or TLS (`tls_listen`).
pub struct Bound {
    pub listener: TcpListener,
    pub tls: Option<TlsAcceptor>,
}

/// The listeners' shared state: the caps with what they hold, and the counters `/metrics`
/// reads. One per daemon, so the plain and the TLS listener share one budget.
#[derive(Debug)]
pub struct Gate {
    limits: ListenerLimits,
    /// The caps are read from it at each accept, so a reload applies to the next connection.
    settings: SettingsHandle,
    /// An evicted handshake is told to close through its token.
    admission: Arc<Admission<CancellationToken>>,
    refused: [AtomicU64; 3],
    evicted: AtomicU64,
    timed_out: [AtomicU64; 3],
    accept_errors: AtomicU64,
}

/// Which timeout closed a connection, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timeout {
    HeaderRead,
    Handshake,
    KeepAlive,
}

impl Timeout {
    const ALL: [Timeout; 3] = [Timeout::HeaderRead, Timeout::Handshake, Timeout::KeepAlive];

    fn as_str(self) -> &'static str {
        match self {
            Timeout::HeaderRead => "header_read",
            Timeout::Handshake => "handshake",
            Timeout::KeepAlive => "keep_alive",
        }
    }
}

impl From<Expiry> for Timeout {
    fn from(expiry: Expiry) -> Timeout {
        match expiry {
            Expiry::Handshake => Timeout::Handshake,
            Expiry::KeepAlive => Timeout::KeepAlive,
        }
    }
}

impl Gate {
    pub fn new(limits: ListenerLimits, settings: SettingsHandle) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            settings,
            admission: Admission::new(),
            refused: Default::default(),
            evicted: AtomicU64::new(0),
            timed_out: Default::default(),
            accept_errors: AtomicU64::new(0),
        })
    }

    fn count_refusal(&self, refusal: Refusal) {
        let i = Refusal::ALL.iter().position(|r| *r == refusal).unwrap_or(0);
        self.refused[i].fetch_add(1, Ordering::Relaxed);
    }

    fn count_timeout(&self, timeout: Timeout) {
        let i = Timeout::ALL.iter().position(|t| *t == timeout).unwrap_or(0);
        self.timed_out[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Serves `router` on every listener until `shutdown` begins; connection tasks are left on the
/// shutdown tracker to drain.
pub async fn serve(listeners: Vec<Bound>, router: Router, gate: Arc<Gate>, shutdown: Shutdown) {
    let loops = listeners
        .into_iter()
        .map(|bound| accept_loop(bound, router.clone(), gate.clone(), shutdown.clone()));
    futures_util::future::join_all(loops).await;
}

async fn accept_loop(bound: Bound, router: Router, gate: Arc<Gate>, shutdown: Shutdown) {
    let mut backoff = AcceptBackoff::default();
    let mut refusals = RefusalLog::default();
    let token = &shutdown.token;
    loop {
        let accepted = tokio::select! {
            biased;
            () = token.cancelled() => return,
            accepted = bound.listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                gate.accept_errors.fetch_add(1, Ordering::Relaxed);
                if is_connection_error(&e) {
                    continue;
                }
                let wait = backoff.failed();
                // Once per run of failures: a descriptor table that stays full must not fill the
                // log too (each failure is counted on /metrics).
                if wait == AcceptBackoff::FIRST {
                    log::warn!(
                        "accept failed: {e}; retrying after 10 ms, doubling to 1 s while it fails"
                    );
                } else {
                    log::debug!("accept failed: {e}; retrying in {wait:?}");
                }
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        backoff.succeeded();
        let evict = CancellationToken::new();
        let accepted = Instant::now();
        let caps = caps(&gate.settings.current());
        match gate
            .admission
            .admit(peer.ip(), accepted.into_std(), &caps, evict.clone())
        {
            Ok(Admitted { ticket, evicted }) => {
                if let Some(oldest) = evicted {
                    oldest.cancel();
                    gate.evicted.fetch_add(1, Ordering::Relaxed);
                }
                let connection = Connection {
                    stream,
                    peer,
                    ticket: Arc::new(ticket),
                    accepted,
                    evicted: evict,
                };
                shutdown.tasks.spawn(connection.serve(
                    bound.tls.clone(),
                    router.clone(),
                    gate.clone(),
                    token.clone(),
                ));
            }
            Err(refusal) => {
                gate.count_refusal(refusal);
                refusals.note(refusal, peer, &caps);
                // A reset instead of a FIN: nothing kept in TIME_WAIT for a refused socket.
                let _ = stream.set_zero_linger();
                drop(stream);
            }
        }
    }
}

/// Errors of one connection that died in the accept queue: the next accept is fine at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    )
}

/// Rate-limits the refusal log: the first refusal, then a count at most every
/// [`REFUSAL_LOG_EVERY`].
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    since_last: u64,
}

impl RefusalLog {
    fn note(&mut self, refusal: Refusal, peer: SocketAddr, caps: &Caps) {
        self.since_last += 1;
        let now = Instant::now();
        if self.last.is_some_and(|at| now < at + REFUSAL_LOG_EVERY) {
            return;
        }
        log::warn!(
            "refusing connections ({} refused since the last report; latest from {peer}: {} reached; caps: {} total, {} per address, {} handshaking)",
            self.since_last,
            refusal.as_str(),
            caps.total,
            caps.per_address,
            caps.handshaking
        );
        self.last = Some(now);
        self.since_last = 0;
    }
}

/// An admitted connection, before its first byte is read.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Arc<Ticket<CancellationToken>>,
    accepted: Instant,
    /// Cancelled if a newcomer evicts this connection from the handshake budget.
    evicted: CancellationToken,
}

impl Connection {
    async fn serve(
        self,
        tls: Option<TlsAcceptor>,
        router: Router,
        gate: Arc<Gate>,
        token: CancellationToken,
    ) {
        let _ = self.stream.set_nodelay(true);
        let (phase_tx, phase_rx) = watch::channel(Phase::accepted(self.accepted.into_std()));
        let service = ConnectionService {
            router,
            peer: self.peer,
            ticket: self.ticket.clone(),
            phase: Arc::new(phase_tx),
        };
        let ticket = self.ticket;
        let evicted = self.evicted;
        match tls {
            None => {
                let io = Counted {
                    io: self.stream,
                    _ticket: ticket,
                };
                drive(io, service, phase_rx, &gate, token, evicted).await;
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(self.stream);
                let deadline = self.accepted + gate.limits.timeouts.handshake;
                let stream = tokio::select! {
                    () = token.cancelled() => return,
                    () = evicted.cancelled() => return,
                    done = tokio::time::timeout_at(deadline, handshake) => match done {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            log::debug!("TLS handshake with {} failed: {e}", self.peer);
                            return;
                        }
                        Err(_) => {
                            gate.count_timeout(Timeout::Handshake);
                            return;
                        }
                    },
                };
                let io = Counted {
                    io: stream,
                    _ticket: ticket,
                };
                drive(io, service, phase_rx, &gate, token, evicted).await;
            }
        }
    }
}

/// Serves HTTP on `io` until it closes, a deadline passes, or shutdown has let it finish.
async fn drive<I>(
    io: Counted<I>,
    service: ConnectionService,
    mut phase: watch::Receiver<Phase>,
    gate: &Gate,
    token: CancellationToken,
    evicted: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(gate.limits.header_read)
        .max_buf_size(MAX_BUF_BYTES);
    let mut conn = pin!(
        builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    let mut draining = false;
    let mut watching = true;
    loop {
        let deadline = phase.borrow().deadline(gate.limits.timeouts);
        let expiry = async move {
            match deadline {
                Some((at, expiry)) => {
                    tokio::time::sleep_until(at.into()).await;
                    expiry
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        gate.count_timeout(Timeout::HeaderRead);
                    } else {
                        log::debug!("connection ended: {e}");
                    }
                }
                return;
            }
            // Dropping the connection closes the socket (its ticket goes with it).
            expiry = expiry => return gate.count_timeout(expiry.into()),
            // Counted when the newcomer evicted it.
            () = evicted.cancelled() => return,
            changed = phase.changed(), if watching => watching = changed.is_ok(),
            () = token.cancelled(), if !draining => {
                // A connection with nothing to answer closes now (a silent socket would
                // otherwise hold the drain until its header-read timeout); one answering a
                // request finishes it first.
                if phase.borrow().is_quiet() {
                    return;
                }
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The router, as one connection's hyper service: adds the peer address (`ConnectInfo`) and
/// moves the connection through its phases as requests come and responses go.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    ticket: Arc<Ticket<CancellationToken>>,
    phase: Arc<watch::Sender<Phase>>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.phase.send_modify(|p| *p = p.request());
        let answer = tower_service::Service::call(&mut self.router.clone(), request);
        let (ticket, phase) = (self.ticket.clone(), self.phase.clone());
        Box::pin(async move {
            let response = answer.await?;
            let upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            ticket.handshake_done();
            let now = std::time::Instant::now();
            phase.send_modify(|p| *p = p.responded(upgraded, now));
            Ok(response)
        })
    }
}

/// A socket that holds its connection's place under the caps until it is dropped.
struct Counted<I> {
    io: I,
    _ticket: Arc<Ticket<CancellationToken>>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Descriptors the daemon needs beside its connections, with headroom: stdio, the runtime,
/// listeners, the journal's files and readers, the uplinks' sockets (15–20 measured).
pub const DESCRIPTOR_RESERVE: u64 = 128;

/// Warns at start when the process may open fewer descriptors than `max_connections` plus
/// [`DESCRIPTOR_RESERVE`]: the caps would then not be what runs out first, and a flood would
/// end in accept errors (EMFILE) and failed journal segment rolls instead of counted refusals.
pub fn warn_if_descriptors_short(max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let Some(soft) = soft_open_files_limit(&limits) else {
        return;
    };
    let needed = max_connections as u64 + DESCRIPTOR_RESERVE;
    if soft < needed {
        log::warn!(
            "the descriptor limit is {soft} but limits.max_connections = {max_connections} needs about {needed}: raise LimitNOFILE (the shipped unit sets 2048) or lower the cap"
        );
    }
}

/// The soft limit of open files from `/proc/self/limits` text; `None` when unlimited or
/// unreadable.
fn soft_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .strip_prefix("Max open files")?
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// The listeners' figures on `/metrics`: connections open and in their handshake, refusals by
/// cap, closes by timeout, accept errors.
#[derive(Debug)]
pub struct ListenerCollector(pub Arc<Gate>);

impl Collector for ListenerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gate = &self.0;
        let int = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let gauges = [
            (
                "connections_open",
                "HTTP and WebSocket connections open (plain and TLS listeners)",
                int(gate.admission.open()),
            ),
            (
                "connections_handshaking",
                "Open connections that have not had their first response yet (limits.max_handshaking)",
                int(gate.admission.handshaking()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let mut refused = encoder.encode_descriptor(
            "connections_refused",
            "Connections closed at accept because a cap was reached: total_cap (limits.max_connections), per_address_cap (limits.max_connections_per_address), handshake_budget (limits.max_handshaking)",
            None,
            MetricType::Counter,
        )?;
        for (refusal, count) in Refusal::ALL.iter().zip(&gate.refused) {
            ConstCounter::new(count.load(Ordering::Relaxed))
                .encode(refused.encode_family(&[("reason", refusal.as_str())])?)?;
        }
        let mut timed_out = encoder.encode_descriptor(
            "connections_timed_out",
            "Connections closed by a timeout: header_read (http.header_read_timeout), handshake (http.handshake_timeout), keep_alive (http.keep_alive_timeout)",
            None,
            MetricType::Counter,
        )?;
        for (timeout, count) in Timeout::ALL.iter().zip(&gate.timed_out) {
            ConstCounter::new(count.load(Ordering::Relaxed))
                .encode(timed_out.encode_family(&[("timeout", timeout.as_str())])?)?;
        }
        let evicted = ConstCounter::new(gate.evicted.load(Ordering::Relaxed));
        evicted.encode(encoder.encode_descriptor(
            "connections_evicted",
            "Connections still in their handshake after 1 s, closed to make room for a newcomer when limits.max_handshaking was full",
            None,
            evicted.metric_type(),
        )?)?;
        let errors = ConstCounter::new(gate.accept_errors.load(Ordering::Relaxed));
        errors.encode(encoder.encode_descriptor(
            "accept_errors",
            "Failed accepts (EMFILE, ENFILE, ENOBUFS, …); each waits 10 ms doubling to 1 s before the next",
            None,
            errors.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The accept loop on a loopback port, with `/healthz`, under `settings`.
    async fn serving(settings: &SettingsHandle) -> (SocketAddr, Arc<Gate>, Shutdown) {
        let limits = ListenerLimits {
            header_read: Duration::from_secs(10),
            timeouts: Timeouts {
                handshake: Duration::from_secs(10),
                keep_alive: Duration::from_secs(5),
            },
        };
        let gate = Gate::new(limits, settings.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }));
        let shutdown = Shutdown::new();
        let bound = vec![Bound {
            listener,
            tls: None,
        }];
        shutdown
            .tasks
            .spawn(serve(bound, router, gate.clone(), shutdown.clone()));
        (addr, gate, shutdown)
    }

    /// Reads until the peer closes; what it sent before.
    async fn until_closed(stream: &mut TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut text = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf));
            match read.await.expect("closed within 10 s") {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&text).into_owned(),
                Ok(n) => text.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn a_reloaded_cap_applies_from_the_next_connection_and_shutdown_closes_the_rest() {
        use tokio::io::AsyncWriteExt;
        let text =
            "[gateway]\nvenue = \"v\"\ncourt = \"c\"\n[limits]\nmax_connections_per_address = 1\n";
        let settings = crate::config::load_str(std::path::Path::new("court.toml"), text).unwrap();
        let handle = SettingsHandle::new(settings.clone());
        let (addr, gate, shutdown) = serving(&handle).await;

        let mut held = TcpStream::connect(addr).await.unwrap();
        held.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        while gate.admission.open() < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert_eq!(
            until_closed(&mut second).await,
            "",
            "over the per-address cap"
        );

        let mut raised = settings;
        raised.limits.max_connections_per_address = 2;
        handle.reload(raised).unwrap();
        let mut third = TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(&mut third).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(gate.refused[1].load(Ordering::Relaxed), 1);

        // Shutdown: the loop stops accepting and the half-open connection is closed at once,
        // not left to its header-read timeout.
        assert!(shutdown.drain(Duration::from_secs(10)).await, "drained");
        assert_eq!(until_closed(&mut held).await, "");
        assert_eq!(gate.admission.open(), 0);
        assert_eq!(
            gate.timed_out
                .iter()
                .map(|t| t.load(Ordering::Relaxed))
                .sum::<u64>(),
            0
        );
    }

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 524288               files     \n\
Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn the_soft_open_files_limit_is_read_from_proc_limits() {
        assert_eq!(soft_open_files_limit(LIMITS), Some(1024));
        let unlimited = LIMITS.replace(
            "1024                 524288",
            "unlimited            unlimited",
        );
        assert_eq!(soft_open_files_limit(&unlimited), None);
        assert_eq!(soft_open_files_limit("Max cpu time 1 1 seconds\n"), None);
    }

    proptest! {
        /// Any soft limit written in the kernel's layout is read back; any text is read
        /// without a panic.
        #[test]
        fn any_soft_limit_is_read_back_and_no_text_panics(soft in any::<u64>(), hard in any::<u64>(), noise in ".{0,200}") {
            let text = format!("{noise}\nMax open files            {soft:<20} {hard:<20} files     \n");
            prop_assert_eq!(soft_open_files_limit(&text), Some(soft));
            let _ = soft_open_files_limit(&noise);
        }
    }
}
