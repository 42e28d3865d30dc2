//! The only socket code: TCP connections, implicit TLS, STARTTLS upgrades,
//! time-outs and a read buffer.
//!
//! Protocol state machines never see a socket; a driver feeds them the
//! bytes a [`Connection`] received ([`Connection::fill`],
//! [`Connection::buffered`], [`Connection::consume`]), and writes what the
//! machine hands back.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;

use super::tls::{Acceptor, TlsStream};
use super::Error;
pub use crate::endpoint::{Endpoint, TlsMode, TlsOptions};

/// A plain or TLS-protected TCP stream.
pub enum Stream {
    /// Unencrypted TCP.
    Plain(TcpStream),
    /// TCP wrapped in TLS (client or server side).
    Tls(Box<TlsStream>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Size of the read buffer; lines longer than this are still read, up to the
/// caller's limit.
const READ_CHUNK: usize = 64 * 1024;

/// A connection with one persistent read buffer, so no byte the peer sent is
/// lost between replies.
pub struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The name certificates are checked against.
    host: String,
}

impl Connection {
    /// Opens a plain TCP connection, with `timeout` for connecting and for
    /// every later read and write.
    pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Self, Error> {
        let addrs: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|source| Error::Resolve {
                host: endpoint.host.clone(),
                source,
            })?
            .collect();
        let mut last_err = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(tcp) => {
                    tcp.set_read_timeout(Some(timeout))?;
                    tcp.set_write_timeout(Some(timeout))?;
                    tcp.set_nodelay(true)?;
                    return Ok(Self::from_stream(Stream::Plain(tcp), &endpoint.host));
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(match last_err {
            Some(source) => Error::Connect {
                endpoint: endpoint.to_string(),
                source,
            },
            None => Error::NoAddress {
                host: endpoint.host.clone(),
            },
        })
    }

    /// Opens a connection that speaks TLS from the first byte.
    pub fn connect_tls(
        endpoint: &Endpoint,
        tls: &TlsOptions,
        timeout: Duration,
    ) -> Result<Self, Error> {
        Self::connect(endpoint, timeout)?
            .start_tls(tls)
            .map(|(c, _)| c)
    }

    /// Wraps an accepted server-side socket.
    pub fn accepted(tcp: TcpStream, timeout: Duration) -> io::Result<Self> {
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        tcp.set_nodelay(true)?;
        Ok(Self::from_stream(Stream::Plain(tcp), ""))
    }

    fn from_stream(stream: Stream, host: &str) -> Self {
        Connection {
            stream,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            host: host.to_string(),
        }
    }

    /// Upgrades a plain connection to TLS as a client, verifying the server.
    ///
    /// Anything the server sent before the handshake is discarded (a
    /// man in the middle may have injected it); the number of discarded bytes
    /// is returned so the caller can report it.
    pub fn start_tls(self, tls: &TlsOptions) -> Result<(Self, usize), Error> {
        let connector = tls.connector()?;
        self.handshake(&connector)
    }

    fn handshake(self, connector: &super::tls::Connector) -> Result<(Self, usize), Error> {
        let discarded = self.end - self.start;
        let tcp = match self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(_) => return Err(Error::AlreadyTls),
        };
        let stream = connector.connect(&self.host, tcp)?;
        Ok((
            Self::from_stream(Stream::Tls(Box::new(stream)), &self.host),
            discarded,
        ))
    }

    /// Upgrades an accepted connection to TLS as a server. Bytes the client
    /// pipelined before the handshake are discarded and counted.
    pub fn accept_tls(self, acceptor: &Acceptor) -> Result<(Self, usize), Error> {
        let discarded = self.end - self.start;
        let tcp = match self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(_) => return Err(Error::AlreadyTls),
        };
        let stream = acceptor.accept(tcp)?;
        Ok((
            Self::from_stream(Stream::Tls(Box::new(stream)), ""),
            discarded,
        ))
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// The `tls-server-end-point` channel binding of a client TLS session
    /// (see [`super::tls::server_end_point`]); `None` without TLS.
    pub fn server_end_point(&self) -> Option<Vec<u8>> {
        match &self.stream {
            Stream::Tls(s) => super::tls::server_end_point(s),
            Stream::Plain(_) => None,
        }
    }

    /// The peer's address, if the socket still knows it.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.tcp().peer_addr().ok()
    }

    /// Changes the time-out for reads and writes.
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.tcp().set_read_timeout(Some(timeout))?;
        self.stream.tcp().set_write_timeout(Some(timeout))
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops the first `n` buffered bytes (at most all of them), for callers
    /// that parse [`Connection::buffered`] themselves.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Reads more bytes into the buffer; returns how many (0 at end of stream).
    pub fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes all of `bytes` and flushes, in one write where possible.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// The underlying stream, for writing large bodies through a buffer.
    pub fn writer(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// Shuts the connection down in both directions, ignoring errors.
    pub fn close(mut self) {
        if let Stream::Tls(s) = &mut self.stream {
            let _ = s.shutdown();
        }
        let _ = self.stream.tcp().shutdown(std::net::Shutdown::Both);
    }
}

/// Adds context naming what was being attempted to an I/O result, keeping the
/// I/O error in the chain so its exit status is found.
pub fn during<T>(result: io::Result<T>, what: impl fmt::Display) -> anyhow::Result<T> {
    result.with_context(|| format!("{what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that accepts and then says nothing during the handshake
    /// is a time-out, which a wrapper retries, not a TLS failure.
    #[test]
    fn silent_tls_server_is_a_temporary_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (_held, _) = listener.accept().unwrap();
            let _ = done_rx.recv();
        });
        let endpoint = Endpoint::parse(&format!("127.0.0.1:{port}"), 1).unwrap();
        let err = Connection::connect_tls(
            &endpoint,
            &TlsOptions::default(),
            Duration::from_millis(300),
        )
        .err()
        .expect("no handshake");
        assert!(matches!(err, Error::HandshakeTimedOut { .. }), "{err}");
        done_tx.send(()).unwrap();
        server.join().unwrap();
    }

    /// A server that closes the connection during the handshake dropped
    /// it: temporary, like any dropped connection.
    #[test]
    fn connection_closed_during_handshake_is_temporary() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            drop(tcp);
        });
        let endpoint = Endpoint::parse(&format!("127.0.0.1:{port}"), 1).unwrap();
        let err =
            Connection::connect_tls(&endpoint, &TlsOptions::default(), Duration::from_secs(20))
                .err()
                .expect("no handshake");
        assert!(
            matches!(
                err,
                Error::Handshake {
                    temporary: true,
                    ..
                }
            ),
            "{err}"
        );
        server.join().unwrap();
    }

    #[test]
    fn unresolvable_host_and_refused_connection() {
        let ep = Endpoint::parse("no-such-host.invalid", 25).unwrap();
        let err = Connection::connect(&ep, Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(matches!(err, Error::Resolve { .. }), "{err}");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let ep = Endpoint::parse(&format!("127.0.0.1:{port}"), 25).unwrap();
        let err = Connection::connect(&ep, Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(
            matches!(&err, Error::Connect { source, .. }
                if source.kind() == io::ErrorKind::ConnectionRefused),
            "{err}"
        );
    }
}
