//! Serving the router over HTTP/1.1 with the limits a public server needs, which
//! `axum::serve` does not set: a cap on open connections (each holds a file handle, and a
//! server out of them cannot open its database or index), a time limit for a request's
//! headers (a client that opens a connection and sends nothing, or sends headers a byte
//! at a time, is let go), and the same limit on a kept-alive connection waiting for its
//! next request. Shutdown stops accepting, lets requests in flight finish, and closes
//! idle connections.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::{Service, ServiceExt};

/// What a server allows each client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; more wait in the kernel's queue until one closes.
    pub max_connections: usize,
    /// Time for a request's headers to arrive, and for a kept-alive connection's next
    /// request to begin.
    pub header_timeout: Duration,
    /// Time given to requests in flight at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // 512 stays well inside the usual limit of 1024 open files, leaving room for the
        // database, the index and the log.
        Limits {
            max_connections: 512,
            header_timeout: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes. Each request carries the
/// client's address as `ConnectInfo<SocketAddr>`, as `axum::serve` gives it.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut make = app.into_make_service_with_connect_info::<SocketAddr>();
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // A free place first, then a connection: past the cap, clients wait in the
        // listen queue rather than hold a file handle each.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file handles, or a connection reset before it was taken:
                    // wait a moment rather than spin.
                    tracing::warn!(error = %e, "a connection could not be accepted");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(service) = make.call(remote).await;
        let service = service.map_request(|request: Request<Incoming>| request.map(Body::new));
        let mut closed = closed.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let mut connection = pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "a connection ended with an error");
                    }
                }
                _ = closed.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = closing.send(true);
    let drained =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(left = connections.len(), "requests still running at the end of shutdown were cut off");
    }
    Ok(())
}
