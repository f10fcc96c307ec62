//! The HTTP listeners' connection loop: what `axum::serve` does, plus the
//! timeouts it leaves out. axum gives hyper no timer, and without one hyper
//! never times out a request's headers, so a client that opens connections
//! and sends its headers a byte a second (slowloris) could hold each one
//! for as long as it liked.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Bytes hyper reads to tell HTTP/1 from HTTP/2 (the HTTP/2 preface)
/// before its header timer starts.
const SNIFF_BYTES: usize = 24;

/// Serves `app` on `listener` until `shutdown`, then lets the connections
/// finish the requests they have started. On HTTP/1 a request's headers
/// must arrive within `header_timeout` of the connection going idle, or the
/// connection is closed (hyper sends no response), so an idle keep-alive
/// connection is closed after as long. HTTP/2 has no such timer in hyper:
/// its connections are pinged, which lets go of dead peers only.
pub async fn serve<L>(
    mut listener: L,
    app: axum::Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) where
    L: axum::serve::Listener,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout);
    let mut connections = JoinSet::new();
    loop {
        let (io, _peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let io = TokioIo::new(FirstBytes::new(io, header_timeout));
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let connection = builder.serve_connection(io, service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::trace!(error = %e, "connection ended");
            }
        });
    }
    // Closed now, as axum does: new clients are refused rather than left
    // waiting in the backlog while the others drain.
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// A connection whose first [`SNIFF_BYTES`] must arrive within a deadline:
/// hyper reads them to choose the protocol before any of its own timers
/// run, so a client that connects and sends nothing would never be let go.
struct FirstBytes<IO> {
    io: IO,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    awaited: usize,
}

impl<IO> FirstBytes<IO> {
    fn new(io: IO, within: Duration) -> Self {
        Self {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
            awaited: SNIFF_BYTES,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FirstBytes<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                this.awaited = this.awaited.saturating_sub(read);
                if this.awaited == 0 || read == 0 {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    let e = io::Error::new(io::ErrorKind::TimedOut, "no request arrived in time");
                    return Poll::Ready(Err(e));
                }
                Poll::Pending
            }
            failed => failed,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FirstBytes<IO> {
    // An answer being written means a request arrived, however short
    // (`GET / HTTP/1.0` and a blank line is under 24 bytes): hyper's own
    // timers take over.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.deadline = None;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.deadline = None;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
