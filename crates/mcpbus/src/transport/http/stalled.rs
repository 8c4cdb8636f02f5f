//! The bound on a client that stops reading (docs/http.md, "Slow clients"): a connection whose
//! socket has taken no byte for `stalled_stream_timeout` while the server had bytes to write
//! is closed, and counted.
//!
//! The check sits on the socket, under hyper, because that is the only place that sees the
//! stall: once the kernel's buffers are full, hyper stops polling the response body (an SSE
//! stream, a push stream, any answer), so nothing above it runs until the client reads again.
//! Each write the socket refuses arms a timer (one per connection, allocated at its first
//! stall) that any byte taken disarms; when it fires, the write fails with `TimedOut` and
//! hyper ends the connection, dropping the response body (a push stream's request is then
//! cancelled, a session's stream released: the client may resume it).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::accept::ConnectionStats;

/// A server-side TCP connection whose writes fail once the client has taken nothing for the
/// bound while a write waited.
pub(super) struct StallBounded {
    tcp: TcpStream,
    bound: Option<Duration>,
    /// Fires `bound` after the first refused write of the current stall.
    timer: Option<Pin<Box<Sleep>>>,
    /// A write was refused and no byte was taken since: the timer runs.
    stalled: bool,
    stats: ConnectionStats,
}

impl StallBounded {
    /// Wraps an accepted connection; `bound` `None` never ends it for stalling.
    pub(super) fn new(tcp: TcpStream, bound: Option<Duration>, stats: ConnectionStats) -> Self {
        StallBounded {
            tcp,
            bound,
            timer: None,
            stalled: false,
            stats,
        }
    }

    /// What a write came back with, passed through, except that a refusal arms the timer (or
    /// finds it fired: then the write fails) and progress disarms it.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Pending => self.still_stalled(cx),
            Poll::Ready(Ok(n)) if n > 0 => {
                self.stalled = false;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    /// The socket refused a write: starts the stall's clock if it is a new stall, and fails
    /// once the clock has run for the bound. Polling the timer here registers the connection's
    /// task with it, so hyper is woken to retry its write, which then fails.
    fn still_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(bound) = self.bound else {
            return Poll::Pending;
        };
        if !self.stalled {
            self.stalled = true;
            let deadline = Instant::now() + bound;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let fired = self
            .timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
        if !fired {
            return Poll::Pending;
        }
        self.stats.count_stalled();
        // What the client has not taken is dropped with the connection: a reset, so that the
        // kernel does not keep sending it to a peer that does not read.
        if let Err(e) = self.tcp.set_zero_linger() {
            tracing::debug!(error = %e, "could not set SO_LINGER on a stalled connection");
        }
        tracing::info!(
            peer = ?self.tcp.peer_addr().ok(),
            after_ms = bound.as_millis() as u64,
            "closing a connection whose client took nothing while the server had bytes to write"
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took no byte for the stalled stream timeout",
        )))
    }
}

impl AsyncRead for StallBounded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallBounded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connected pair on loopback: the wrapped server side and the raw client side.
    async fn pair(bound: Option<Duration>, stats: &ConnectionStats) -> (StallBounded, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (accepted, client) = tokio::join!(listener.accept(), client);
        let server = StallBounded::new(accepted.unwrap().0, bound, stats.clone());
        (server, client.unwrap())
    }

    /// Writes until a write is refused or fails.
    async fn write_until_stalled(server: &mut StallBounded) -> io::Result<usize> {
        let chunk = vec![b'x'; 64 * 1024];
        let mut total = 0;
        loop {
            match tokio::time::timeout(Duration::from_millis(50), server.write(&chunk)).await {
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(total),
            }
        }
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off_and_counted() {
        let stats = ConnectionStats::default();
        let (mut server, _client) = pair(Some(Duration::from_millis(200)), &stats).await;
        write_until_stalled(&mut server).await.unwrap();
        let chunk = vec![b'x'; 1024];
        let err = server.write_all(&chunk).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(stats.stalled_closed(), 1);
    }

    #[tokio::test]
    async fn a_client_that_reads_again_in_time_is_not() {
        let stats = ConnectionStats::default();
        let (mut server, mut client) = pair(Some(Duration::from_millis(500)), &stats).await;
        let written = write_until_stalled(&mut server).await.unwrap();
        // The client takes everything, then the server writes on: a fresh stall each time.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0; 64 * 1024];
            let mut read = 0;
            while read < written + 1024 {
                read += client.read(&mut buf).await.unwrap();
            }
            client
        });
        server.write_all(&[b'y'; 1024]).await.unwrap();
        let _client = reader.await.unwrap();
        assert_eq!(stats.stalled_closed(), 0);
    }

    #[tokio::test]
    async fn without_a_bound_a_stall_waits() {
        let stats = ConnectionStats::default();
        let (mut server, _client) = pair(None, &stats).await;
        write_until_stalled(&mut server).await.unwrap();
        let write = tokio::time::timeout(Duration::from_millis(300), server.write(&[b'z'; 1024]));
        assert!(write.await.is_err(), "the write should still wait");
        assert_eq!(stats.stalled_closed(), 0);
    }
}
