//! The server loop on a real socket: idle and slow clients are let go, open connections
//! are capped, and the client's address reaches the handlers (security.md, finding 4).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use kith_web::serve::{Limits, serve};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let app = Router::new()
        .route("/who", get(|ConnectInfo(addr): ConnectInfo<SocketAddr>| async move { addr.ip().to_string() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, app, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Sends one request and reads the reply until the server closes or 2 s pass.
async fn ask(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /who HTTP/1.1\r\nHost: kith.test\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).into_owned()
}

/// Waits for the server to close `stream`, up to `within`; true when it did.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(within, stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test]
async fn idle_and_slow_clients_are_let_go_and_connections_are_capped() {
    let limits = Limits {
        max_connections: 2,
        header_timeout: Duration::from_millis(400),
        shutdown_grace: Duration::from_secs(1),
    };
    let (addr, stop) = start(limits).await;

    // The client's address reaches the handler.
    let mut first = TcpStream::connect(addr).await.unwrap();
    let reply = ask(&mut first).await;
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("127.0.0.1"), "{reply}");

    // A connection that sends nothing, and one that sends half its headers, are closed.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /who HTTP/1.1\r\nHost: ki").await.unwrap();
    // Both places are taken: a third client waits in the queue, unanswered.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(b"GET /who HTTP/1.1\r\nHost: kith.test\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut early = [0u8; 16];
    let waited = tokio::time::timeout(Duration::from_millis(200), third.read(&mut early)).await;
    assert!(waited.is_err(), "no answer while the cap is reached");
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await, "a silent client is let go");
    assert!(closed_within(&mut slow, Duration::from_secs(3)).await, "a slow client is let go");
    assert!(started.elapsed() >= Duration::from_millis(350), "not before the time limit");
    // With the places free, the queued client is answered.
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), third.read_to_end(&mut reply)).await;
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&reply));

    // A kept-alive connection that goes quiet after a request is closed too.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /who HTTP/1.1\r\nHost: kith.test\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), kept.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await, "an idle kept-alive connection is let go");

    // Shutdown stops accepting.
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = TcpStream::connect(addr).await;
    assert!(after.is_err(), "the listener is closed after shutdown");
}
