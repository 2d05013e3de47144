//! HTTPS serving (tokio-rustls + hyper-util) and the top-level router.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::faults::ResetConnection;
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            axum::routing::post(crate::token::issue_token),
        )
        .nest("/defender", crate::defender::router(state.clone()))
        .nest("/graph", crate::graph::router(state.clone()))
        .nest("/arm", crate::arm::router(state.clone()))
        .nest("/loganalytics", crate::loganalytics::router(state.clone()))
        .nest("/_sandbox", crate::faults::admin_router())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::faults::front_door,
        ))
        .with_state(state)
}

async fn fallback(req: Request<Body>) -> crate::errors::ApiError {
    let path = req.uri().path().to_string();
    crate::errors::not_found(
        crate::errors::Api::for_path(&path),
        format!("No route for {} {path}", req.method()),
    )
}

/// The error a service returns to make hyper drop the connection without a response (the
/// `reset` fault).
#[derive(Debug)]
struct ConnectionReset;

impl std::fmt::Display for ConnectionReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by fault injection")
    }
}

impl std::error::Error for ConnectionReset {}

/// ARM treats path segments case-insensitively; routing does not, so known segments are
/// rewritten to their canonical casing before the request reaches the router.
fn canonicalize<B>(req: &mut Request<B>) {
    let Some(path) = crate::arm::canonical_path(req.uri().path()) else {
        return;
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    if let Ok(uri) = pq.parse() {
        *req.uri_mut() = uri;
    }
}

pub struct ServerHandle {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

pub fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
) -> ServerHandle {
    let (tx, mut rx) = watch::channel(false);
    let acceptor = TlsAcceptor::from(config);
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    // A send of `true` or a dropped sender both mean stop.
                    if changed.is_err() || *rx.borrow() { break; }
                }
                accepted = listener.accept() => {
                    let Ok((stream, _peer)) = accepted else { continue };
                    // A TLS response is several small writes; with Nagle on, each answer waits
                    // for the client's delayed ACK (40 ms on Linux), as Microsoft's servers do not.
                    let _ = stream.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let router = router.clone();
                    connections.spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else { return };
                        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                            let router = router.clone();
                            canonicalize(&mut req);
                            async move {
                                let resp = match router.oneshot(req.map(Body::new)).await {
                                    Ok(r) => r,
                                    Err(never) => match never {},
                                };
                                if resp.extensions().get::<ResetConnection>().is_some() {
                                    return Err(ConnectionReset);
                                }
                                Ok::<_, ConnectionReset>(resp)
                            }
                        });
                        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    });
                }
                // Reap finished connection tasks so the set does not grow without bound.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    });
    ServerHandle { shutdown: tx, task }
}
