//! An in-process server on a free loopback port, stopped when dropped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Completes when the server must shut down (handed to the serve function).
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server serving `http://ADDR/mcp` on a task; shut down when dropped or [stopped](Self::stop).
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    /// The serving task.
    pub task: JoinHandle<io::Result<()>>,
}

impl TestServer {
    /// Binds a free loopback port and spawns `serve(listener, shutdown)`, e.g.
    /// `|l, stop| serve_http(l, "/mcp", server, config, stop)`. (The test kit does not depend on
    /// the `mcpbus` crate, so the caller names the serve function.)
    pub async fn start<F, S>(serve: F) -> TestServer
    where
        F: FnOnce(TcpListener, Shutdown) -> S,
        S: Future<Output = io::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown: Shutdown = Box::pin(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(serve(listener, shutdown));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// `http://ADDR/mcp`
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops the server and waits (up to 5 s) for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
