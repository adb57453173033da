//! Dropping a connection instead of answering. [`serve`](super::serve) accepts through
//! [`DroppingListener`], which gives every connection a [`DropSwitch`] that handlers receive as
//! connect info; once a handler trips it, every write on that connection fails, so hyper closes it
//! without sending a byte of the response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Shared by a connection and the handlers of its requests.
#[derive(Debug, Clone, Default)]
pub struct DropSwitch(Arc<AtomicBool>);

impl DropSwitch {
    pub fn trip(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn tripped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, DroppingListener>> for DropSwitch {
    fn connect_info(stream: IncomingStream<'_, DroppingListener>) -> Self {
        stream.io().switch.clone()
    }
}

pub struct DroppingListener(pub TcpListener);

impl Listener for DroppingListener {
    type Io = DroppableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (DroppableStream, SocketAddr) {
        // axum's own accept, which retries on errors such as running out of file descriptors.
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (DroppableStream { stream, switch: DropSwitch::default() }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

pub struct DroppableStream {
    stream: TcpStream,
    switch: DropSwitch,
}

impl DroppableStream {
    fn check(&self) -> io::Result<()> {
        match self.switch.tripped() {
            true => Err(io::Error::new(io::ErrorKind::ConnectionAborted, "connection dropped on purpose")),
            false => Ok(()),
        }
    }
}

impl AsyncRead for DroppableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for DroppableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
