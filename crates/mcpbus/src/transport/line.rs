//! Newline-delimited JSON framing (the MCP stdio transport).

use std::io;

use mcpbus_proto::jsonrpc::{ErrorObject, InvalidMessage, parse_message};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use super::{Inbound, Transport, TransportReader, TransportWriter};

/// The longest line accepted by default (16 MiB); longer lines are answered with `-32600`.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Newline-delimited JSON over a reader and a writer.
///
/// Each line is one JSON-RPC message. Empty lines are skipped, a trailing `\r` is ignored, and a
/// line that is not a message yields the error it deserves while the stream goes on.
#[derive(Debug)]
pub struct LineTransport<R, W> {
    reader: R,
    writer: W,
    max_line_bytes: usize,
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// Frames messages over `reader` and `writer`.
    pub fn new(reader: R, writer: W) -> Self {
        LineTransport {
            reader,
            writer,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Sets the longest accepted line.
    pub fn max_line_bytes(mut self, max: usize) -> Self {
        self.max_line_bytes = max;
        self
    }
}

impl<R, W> Transport for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Reader = LineReader<R>;
    type Writer = LineWriter<W>;

    fn split(self) -> (LineReader<R>, LineWriter<W>) {
        (
            LineReader {
                reader: BufReader::with_capacity(64 * 1024, self.reader),
                buf: Vec::with_capacity(4096),
                max_line_bytes: self.max_line_bytes,
                eof: false,
            },
            LineWriter {
                writer: BufWriter::with_capacity(64 * 1024, self.writer),
            },
        )
    }
}

/// The reading half of a [`LineTransport`].
#[derive(Debug)]
pub struct LineReader<R> {
    reader: BufReader<R>,
    buf: Vec<u8>,
    max_line_bytes: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin + Send + 'static> LineReader<R> {
    /// Reads one line into `self.buf` (without the newline). Returns `Ok(false)` at end of input.
    /// A line over the limit is consumed to its end and reported as too long.
    async fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                self.eof = true;
                return Ok(if self.buf.is_empty() && !too_long {
                    None
                } else {
                    Some(too_long)
                });
            }
            let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], Some(i)),
                None => (available, None),
            };
            if !too_long {
                if self.buf.len() + chunk.len() > self.max_line_bytes {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            let consumed = found.map_or(available.len(), |i| i + 1);
            self.reader.consume(consumed);
            if found.is_some() {
                return Ok(Some(too_long));
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> TransportReader for LineReader<R> {
    async fn recv(&mut self) -> Option<Inbound> {
        loop {
            if self.eof {
                return None;
            }
            let too_long = match self.read_line().await {
                Ok(Some(too_long)) => too_long,
                Ok(None) => return None,
                Err(e) => {
                    tracing::debug!(error = %e, "transport read failed; treating as end of input");
                    return None;
                }
            };
            if too_long {
                return Some(Err(InvalidMessage {
                    id: None,
                    error: ErrorObject::invalid_request(format_args!(
                        "message exceeds the limit of {} bytes",
                        self.max_line_bytes
                    )),
                }));
            }
            let mut line: &[u8] = &self.buf;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(parse_message(line));
        }
    }
}

/// The writing half of a [`LineTransport`].
#[derive(Debug)]
pub struct LineWriter<W> {
    writer: BufWriter<W>,
}

impl<W: AsyncWrite + Unpin + Send + 'static> TransportWriter for LineWriter<W> {
    async fn send(&mut self, frame: bytes::Bytes) -> io::Result<()> {
        self.writer.write_all(&frame).await?;
        self.writer.write_all(b"\n").await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.writer.flush().await?;
        self.writer.shutdown().await
    }
}

/// The process's own stdin and stdout as a transport (for servers launched by a client).
pub fn stdio() -> LineTransport<tokio::io::Stdin, tokio::io::Stdout> {
    LineTransport::new(tokio::io::stdin(), tokio::io::stdout())
}

/// Two connected in-memory transports, e.g. a client and a server in one test.
#[allow(clippy::type_complexity)]
pub fn duplex(
    buffer: usize,
) -> (
    LineTransport<
        tokio::io::ReadHalf<tokio::io::DuplexStream>,
        tokio::io::WriteHalf<tokio::io::DuplexStream>,
    >,
    LineTransport<
        tokio::io::ReadHalf<tokio::io::DuplexStream>,
        tokio::io::WriteHalf<tokio::io::DuplexStream>,
    >,
) {
    let (a, b) = tokio::io::duplex(buffer);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    (LineTransport::new(ar, aw), LineTransport::new(br, bw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpbus_proto::Message;

    #[tokio::test]
    async fn reads_lines_skips_blanks_and_reports_bad_ones() {
        let input: &[u8] = b"{\"jsonrpc\":\"2.0\",\"method\":\"a\"}\r\n\n   \nnot json\n{\"jsonrpc\":\"2.0\",\"method\":\"b\"}";
        let (mut r, _w) = LineTransport::new(input, tokio::io::sink()).split();
        assert_eq!(r.recv().await, Some(Ok(Message::notification("a", None))));
        assert_eq!(
            r.recv().await.and_then(|m| m.err()).map(|e| e.error.code),
            Some(-32700)
        );
        assert_eq!(r.recv().await, Some(Ok(Message::notification("b", None))));
        assert_eq!(r.recv().await, None);
    }

    #[tokio::test]
    async fn long_lines_are_refused_and_skipped() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\n{\"jsonrpc\":\"2.0\",\"method\":\"ok\"}\n");
        let input: &'static [u8] = Box::leak(input.into_boxed_slice());
        let (mut r, _w) = LineTransport::new(input, tokio::io::sink())
            .max_line_bytes(50)
            .split();
        assert_eq!(
            r.recv().await.and_then(|m| m.err()).map(|e| e.error.code),
            Some(-32600)
        );
        assert_eq!(r.recv().await, Some(Ok(Message::notification("ok", None))));
    }
}
