//! A TLS listener for `axum::serve`: one task accepts TCP connections and runs each handshake in
//! its own task (bounded by a timeout), so a slow or silent client never holds up the others.
//! Each connection carries the user of its verified client certificate ([`PeerIdentity`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use kubelet_types::review::UserInfo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::x509_subject::certificate_user;

/// Connections whose handshake finished, waiting for `accept`.
const BACKLOG: usize = 64;

/// A bound TCP port whose connections come out of `accept` already TLS-handshaken; dropping it
/// stops accepting.
pub struct TlsListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Binds `addr` and starts accepting, giving each client `handshake_timeout` to complete the
    /// TLS handshake with `config`.
    pub async fn bind(addr: SocketAddr, config: Arc<rustls::ServerConfig>, handshake_timeout: Duration) -> std::io::Result<Self> {
        let tcp = TcpListener::bind(addr).await.map_err(|e| std::io::Error::new(e.kind(), format!("failed to listen on {addr}: {e}")))?;
        Ok(Self::from_tcp(tcp, config, handshake_timeout))
    }

    /// Starts accepting on an already bound TCP listener (see [`TlsListener::bind`]).
    pub fn from_tcp(tcp: TcpListener, config: Arc<rustls::ServerConfig>, handshake_timeout: Duration) -> Self {
        let addr = tcp.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, ready) = mpsc::channel(BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        let acceptor_task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // As Go's listeners: no Nagle. The log streamer ends a body in a TLS record of its
                // own; with Nagle that record waited for the client's delayed ACK (40 ms).
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, "TCP_NODELAY: {e}");
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Self { addr, ready, acceptor_task }
    }

    /// The local address actually bound (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// The peer of one connection: its address and the user its client certificate names.
#[derive(Debug, Clone)]
pub struct PeerIdentity {
    /// The client's remote address.
    pub addr: SocketAddr,
    /// The user of the client certificate (name = CN, groups = O); `None` when the client sent no
    /// certificate or it has no CN.
    pub user: Option<UserInfo>,
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerIdentity {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        let (_, conn) = stream.io().get_ref();
        let user = conn.peer_certificates().and_then(|chain| chain.first()).and_then(|leaf| certificate_user(leaf.as_ref()));
        PeerIdentity { addr: *stream.remote_addr(), user }
    }
}
