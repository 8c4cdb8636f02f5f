//! A server spawned as a child process, spoken to over its stdin and stdout.

use std::io;
use std::process::Stdio;

use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::line::{LineReader, LineTransport, LineWriter};
use super::{Inbound, Transport, TransportReader, TransportWriter};

/// A spawned MCP server: its stdout is read as messages, its stdin written; stderr is inherited
/// (MCP servers log there). The process is killed if the transport is dropped while it runs.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    inner: LineTransport<ChildStdout, ChildStdin>,
}

impl ChildProcess {
    /// Spawns `command` with piped stdin and stdout.
    pub fn spawn(mut command: Command) -> io::Result<Self> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("child stdout was not captured"))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("child stdin was not captured"))?;
        Ok(ChildProcess {
            child,
            inner: LineTransport::new(stdout, stdin),
        })
    }

    /// The OS process id, while the process runs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Transport for ChildProcess {
    type Reader = ChildReader;
    type Writer = ChildWriter;

    fn split(self) -> (ChildReader, ChildWriter) {
        let (reader, writer) = self.inner.split();
        (
            ChildReader {
                reader,
                child: Some(self.child),
            },
            ChildWriter { writer },
        )
    }
}

/// Reads the child's stdout; owns the process so that it lives as long as its output is read.
#[derive(Debug)]
pub struct ChildReader {
    reader: LineReader<ChildStdout>,
    child: Option<Child>,
}

impl TransportReader for ChildReader {
    async fn recv(&mut self) -> Option<Inbound> {
        let next = self.reader.recv().await;
        if next.is_none() {
            // The child closed its stdout: reap it so that no zombie is left behind.
            if let Some(mut child) = self.child.take() {
                let _ = child.wait().await;
            }
        }
        next
    }
}

/// Writes the child's stdin; closing it asks a well-behaved server to exit.
#[derive(Debug)]
pub struct ChildWriter {
    writer: LineWriter<ChildStdin>,
}

impl TransportWriter for ChildWriter {
    async fn send(&mut self, frame: bytes::Bytes) -> io::Result<()> {
        self.writer.send(frame).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.writer.close().await
    }
}
