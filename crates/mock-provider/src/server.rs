//! HTTP/1.1 server plumbing on hyper: accept loop, per-connection control
//! (abortive close with TCP RST), response body type and the stream driver
//! that injects delays and faults.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::behaviour::Behaviour;
use crate::{router, MockConfig, RecordedRequest};

/// Shared state of one mock server.
pub(crate) struct Shared {
    pub config: MockConfig,
    pub cancel: CancellationToken,
    requests: Mutex<Vec<RecordedRequest>>,
    set: Mutex<HashMap<String, Behaviour>>,
    pushed: Mutex<HashMap<String, VecDeque<Behaviour>>>,
    /// Access tokens issued by the token endpoint, with their expiry (Unix seconds).
    tokens: Mutex<HashMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(config: MockConfig, cancel: CancellationToken) -> Self {
        Self {
            config,
            cancel,
            requests: Mutex::new(Vec::new()),
            set: Mutex::new(HashMap::new()),
            pushed: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn issue_token(&self, token: &str, expires_at: u64) {
        lock(&self.tokens).insert(token.to_string(), expires_at);
    }

    /// Whether `token` was issued here and has not expired.
    pub fn token_valid(&self, token: &str, now: u64) -> bool {
        lock(&self.tokens).get(token).is_some_and(|exp| *exp > now)
    }

    pub fn expire_tokens(&self) {
        for exp in lock(&self.tokens).values_mut() {
            *exp = 0;
        }
    }

    pub fn tokens_issued(&self) -> usize {
        lock(&self.tokens).len()
    }

    pub fn record(&self, r: RecordedRequest) {
        lock(&self.requests).push(r);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    pub fn set_behaviour(&self, model: &str, b: Behaviour) {
        lock(&self.set).insert(model.to_string(), b);
    }

    pub fn push_behaviour(&self, model: &str, b: Behaviour) {
        lock(&self.pushed)
            .entry(model.to_string())
            .or_default()
            .push_back(b);
    }

    pub fn models(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.set).keys().cloned().collect();
        names.extend(lock(&self.pushed).keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    /// Directive > pushed one-shot > set > default. A pushed behaviour is only
    /// consumed when no directive is present.
    pub fn resolve(&self, model: &str, directive: Option<Behaviour>) -> Behaviour {
        if let Some(b) = directive {
            return b;
        }
        if let Some(b) = lock(&self.pushed)
            .get_mut(model)
            .and_then(VecDeque::pop_front)
        {
            return b;
        }
        lock(&self.set).get(model).cloned().unwrap_or_default()
    }
}

/// Per-connection control used to abort a connection with a TCP RST.
pub(crate) struct ConnCtl {
    abort: AtomicBool,
    notify: Notify,
}

impl ConnCtl {
    fn new() -> Self {
        Self {
            abort: AtomicBool::new(false),
            notify: Notify::new(),
        }
    }

    /// Marks the connection for an abortive close and wakes its task.
    pub fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// TCP stream wrapper: when dropped after [`ConnCtl::abort`], sets a zero
/// linger so that closing the socket sends RST instead of FIN.
struct AbortableStream {
    inner: TcpStream,
    ctl: Arc<ConnCtl>,
}

impl Drop for AbortableStream {
    fn drop(&mut self) {
        if self.ctl.abort.load(Ordering::SeqCst) {
            if let Err(e) = self.inner.set_zero_linger() {
                tracing::debug!("set_zero_linger failed: {e}");
            }
        }
    }
}

impl AsyncRead for AbortableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts connections until the shared cancellation token fires.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(serve_connection(stream, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!("mock provider accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let ctl = Arc::new(ConnCtl::new());
    let io = TokioIo::new(AbortableStream {
        inner: stream,
        ctl: ctl.clone(),
    });
    let svc_shared = shared.clone();
    let svc_ctl = ctl.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        let ctl = svc_ctl.clone();
        async move { handle(req, shared, ctl).await }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::select! {
        res = conn => {
            if let Err(e) = res {
                tracing::debug!("mock provider connection ended: {e}");
            }
        }
        _ = ctl.notify.notified() => {}
        _ = shared.cancel.cancelled() => {}
    }
}

/// Error returned to hyper to drop a connection without a response.
#[derive(Debug)]
pub(crate) struct ServeError(String);

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    ctl: Arc<ConnCtl>,
) -> Result<Response<MockBody>, ServeError> {
    let (parts, mut body) = req.into_parts();
    let mut raw = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ServeError(format!("reading request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            raw.extend_from_slice(&data);
        }
    }
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let json: Option<serde_json::Value> = serde_json::from_slice(&raw).ok();
    let recorded = RecordedRequest {
        method: parts.method.as_str().to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string()),
        headers,
        body: json.clone().unwrap_or(serde_json::Value::Null),
    };
    shared.record(recorded.clone());
    let ctx = router::Ctx {
        req: recorded,
        body_is_json: json.is_some() || raw.is_empty(),
        raw: bytes::Bytes::from(raw),
        dialect: router::Dialect::Native,
        model_override: None,
        shared,
        ctl: ctl.clone(),
    };
    match router::route(ctx).await {
        Outcome::Respond(resp) => Ok(*resp),
        Outcome::Reset => {
            ctl.abort();
            Err(ServeError(
                "mock fault: connection reset before headers".into(),
            ))
        }
    }
}

/// Result of handling one request.
pub(crate) enum Outcome {
    Respond(Box<Response<MockBody>>),
    /// Abort the connection without a response.
    Reset,
}

/// Response body: a full buffer or a driven stream of events.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Stream(BoxStream<'static, io::Result<Bytes>>),
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            MockBody::Full(data) => Poll::Ready(data.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Stream(s) => s
                .poll_next_unpin(cx)
                .map(|item| item.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            MockBody::Full(None) => SizeHint::with_exact(0),
            MockBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// Role of a stream event for fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EvKind {
    /// Structural event (message_start, role chunk, block start/stop, ping).
    Other,
    /// Counted content event (a delta carrying text, reasoning or tool data).
    Content,
    /// Terminal section (finish chunk, usage chunk, `[DONE]`, message_delta…).
    Tail,
}

/// One pre-rendered stream event.
pub(crate) struct Ev {
    pub kind: EvKind,
    pub bytes: Bytes,
}

impl Ev {
    pub fn new(kind: EvKind, bytes: impl Into<Bytes>) -> Self {
        Self {
            kind,
            bytes: bytes.into(),
        }
    }
}

/// What happens once `after_chunks` content events went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamFault {
    Reset,
    Stall,
    Error,
    /// Send bytes the format's decoder must refuse, then end the body.
    Corrupt,
}

/// A stream to drive.
pub(crate) struct StreamPlan {
    pub events: Vec<Ev>,
    /// In-stream error event used by `error_after_chunks`.
    pub error_event: Bytes,
    /// Undecodable bytes used by `corrupt_after_chunks`.
    pub corrupt_event: Bytes,
    pub chunk_delay: Duration,
    pub fault: Option<(StreamFault, usize)>,
}

struct DriverState {
    events: VecDeque<Ev>,
    error_event: Bytes,
    corrupt_event: Bytes,
    chunk_delay: Duration,
    fault: Option<(StreamFault, usize)>,
    content_sent: usize,
    sent_any: bool,
    finished: bool,
    ctl: Arc<ConnCtl>,
    cancel: CancellationToken,
}

/// Time given to hyper to flush what was sent before an abortive close.
const FLUSH_MARGIN: Duration = Duration::from_millis(30);

/// Turns a plan into a response body stream.
pub(crate) fn drive(plan: StreamPlan, ctl: Arc<ConnCtl>, cancel: CancellationToken) -> MockBody {
    let state = DriverState {
        events: plan.events.into(),
        error_event: plan.error_event,
        corrupt_event: plan.corrupt_event,
        chunk_delay: plan.chunk_delay,
        fault: plan.fault,
        content_sent: 0,
        sent_any: false,
        finished: false,
        ctl,
        cancel,
    };
    MockBody::Stream(futures_util::stream::unfold(state, step).boxed())
}

async fn step(mut st: DriverState) -> Option<(io::Result<Bytes>, DriverState)> {
    if st.finished {
        return None;
    }
    let ev = st.events.pop_front()?;
    if let Some((fault, n)) = st.fault {
        let trigger = match ev.kind {
            EvKind::Content => st.content_sent >= n,
            EvKind::Tail => true,
            EvKind::Other => false,
        };
        if trigger {
            st.fault = None;
            match fault {
                StreamFault::Reset => {
                    tokio::time::sleep(FLUSH_MARGIN).await;
                    st.ctl.abort();
                    st.finished = true;
                    let err = io::Error::new(io::ErrorKind::ConnectionReset, "mock fault: reset");
                    return Some((Err(err), st));
                }
                StreamFault::Stall => {
                    st.cancel.cancelled().await;
                    return None;
                }
                StreamFault::Error => {
                    pause(&st).await;
                    st.finished = true;
                    let bytes = st.error_event.clone();
                    return Some((Ok(bytes), st));
                }
                StreamFault::Corrupt => {
                    pause(&st).await;
                    st.finished = true;
                    let bytes = st.corrupt_event.clone();
                    return Some((Ok(bytes), st));
                }
            }
        }
    }
    pause(&st).await;
    st.sent_any = true;
    if ev.kind == EvKind::Content {
        st.content_sent += 1;
    }
    Some((Ok(ev.bytes), st))
}

async fn pause(st: &DriverState) {
    if st.sent_any && !st.chunk_delay.is_zero() {
        tokio::time::sleep(st.chunk_delay).await;
    }
}
