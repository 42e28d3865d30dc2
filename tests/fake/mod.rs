//! What the tests' fake servers share, written here so that no fake server
//! runs on mailctl's own code (the code under test): a fixed certificate, an
//! accept that gives up, the APOP digest.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The fake servers' certificate (PEM), for `localhost` and `127.0.0.1`; a
/// client given it as its CA file verifies them.
pub const CERT_PEM: &[u8] = include_bytes!("../fixtures/tls/cert.pem");

/// Its PKCS#8 private key (PEM).
pub const KEY_PEM: &[u8] = include_bytes!("../fixtures/tls/key.pem");

/// How long a fake server waits for its client to connect: a guard against
/// a test hanging for ever, long enough for a debug build that first spools
/// a 50 MiB body on a busy machine.
pub const ACCEPT_LIMIT: Duration = Duration::from_secs(120);

/// A TLS acceptor presenting [`CERT_PEM`].
pub fn acceptor() -> native_tls::TlsAcceptor {
    let identity = native_tls::Identity::from_pkcs8(CERT_PEM, KEY_PEM).expect("test identity");
    native_tls::TlsAcceptor::new(identity).expect("TLS acceptor")
}

/// The next client, as a blocking stream; `None` once `stop` is set and no
/// client is waiting. Panics (failing the test that joins the server) when
/// no client came within [`ACCEPT_LIMIT`].
pub fn accept(listener: &TcpListener, stop: &AtomicBool) -> Option<TcpStream> {
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let started = Instant::now();
    loop {
        match listener.accept() {
            Ok((tcp, _)) => {
                tcp.set_nonblocking(false).expect("blocking stream");
                return Some(tcp);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept: {e}"),
        }
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        assert!(
            started.elapsed() < ACCEPT_LIMIT,
            "no client connected to the fake server within {ACCEPT_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The APOP digest (RFC 1939): MD5 of the greeting's `<...>` timestamp and
/// the password, in lower-case hex.
pub fn apop_digest(greeting: &str, password: &str) -> String {
    let stamp = greeting
        .find('<')
        .and_then(|start| Some(&greeting[start..=start + greeting[start..].find('>')?]))
        .unwrap_or("");
    let digest = openssl::hash::hash(
        openssl::hash::MessageDigest::md5(),
        format!("{stamp}{password}").as_bytes(),
    )
    .expect("md5");
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A server's side of one connection, plain or TLS, read line by line.
pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl Conn {
    /// A plain connection whose reads give up after 20 s.
    pub fn new(tcp: TcpStream) -> Conn {
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read time-out");
        Conn {
            stream: Stream::Plain(tcp),
            buf: Vec::new(),
        }
    }

    /// The TLS handshake (as the server); bytes the client sent before it
    /// are dropped. `None` when the handshake fails.
    pub fn start_tls(self, acceptor: &native_tls::TlsAcceptor) -> Option<Conn> {
        let Stream::Plain(tcp) = self.stream else {
            panic!("TLS is already on");
        };
        Some(Conn {
            stream: Stream::Tls(Box::new(acceptor.accept(tcp).ok()?)),
            buf: Vec::new(),
        })
    }

    /// The next line with its line end; `None` at the end of the stream,
    /// on an error or after the time-out.
    pub fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                return Some(self.buf.drain(..=end).collect());
            }
            let mut chunk = [0u8; 16384];
            let n = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk),
                Stream::Tls(s) => s.read(&mut chunk),
            };
            match n {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next line as text, without its line end.
    pub fn text_line(&mut self) -> Option<String> {
        let line = self.line()?;
        Some(String::from_utf8_lossy(&line).trim_end().to_string())
    }

    /// Writes `bytes` (all of them).
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        }
    }
}
