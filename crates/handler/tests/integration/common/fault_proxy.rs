//! A TCP proxy in front of Azurite that a test can stop (connections are closed at once) or
//! freeze (connections are accepted and requests read, but nothing is ever answered): the two
//! ways a storage account fails that matter to the handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Pass = 0,
    Stopped = 1,
    Frozen = 2,
}

pub struct FaultProxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
}

impl FaultProxy {
    /// Forwards 127.0.0.1:<port> to `target` (host:port).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let shared = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = shared.clone();
                let target = target.clone();
                tokio::spawn(async move { relay(client, &target, mode).await });
            }
        });
        Self { port, mode }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

fn current(mode: &AtomicU8) -> Mode {
    match mode.load(Ordering::SeqCst) {
        1 => Mode::Stopped,
        2 => Mode::Frozen,
        _ => Mode::Pass,
    }
}

async fn relay(mut client: TcpStream, target: &str, mode: Arc<AtomicU8>) {
    if current(&mode) == Mode::Stopped {
        return;
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut up = [0u8; 16 * 1024];
    let mut down = [0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client_read.read(&mut up) => {
                let Ok(read @ 1..) = read else { return };
                match current(&mode) {
                    Mode::Stopped => return,
                    // Swallowed: the request is never answered.
                    Mode::Frozen => continue,
                    Mode::Pass => {
                        if server_write.write_all(&up[..read]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            read = server_read.read(&mut down) => {
                let Ok(read @ 1..) = read else { return };
                match current(&mode) {
                    Mode::Stopped => return,
                    Mode::Frozen => continue,
                    Mode::Pass => {
                        if client_write.write_all(&down[..read]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The test storage connection string with its blob endpoint moved to `port` on 127.0.0.1.
pub fn blob_endpoint_through(connection_string: &str, port: u16) -> (String, String) {
    let mut target = String::new();
    let rewritten = connection_string
        .split(';')
        .map(|pair| match pair.split_once('=') {
            Some(("BlobEndpoint", url)) => {
                let parsed = url::Url::parse(url).expect("blob endpoint URL");
                target = format!(
                    "{}:{}",
                    parsed.host_str().expect("host"),
                    parsed.port().expect("port")
                );
                let mut moved = parsed.clone();
                moved.set_port(Some(port)).expect("port");
                format!("BlobEndpoint={}", moved.as_str().trim_end_matches('/'))
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";");
    assert!(
        !target.is_empty(),
        "the connection string names a BlobEndpoint"
    );
    (rewritten, target)
}
