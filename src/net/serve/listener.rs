//! Listening sockets, one thread per connection (capped), and shutdown:
//! on Ctrl-C / SIGTERM the listeners stop, idle connections are told 421 /
//! `-ERR` and closed, and messages in transit are either committed (a
//! delivery already past its data) or abandoned (their `tmp/` files
//! removed), so `new/` never holds a half-written message. With
//! `--exit-after N` the server stops accepting after the Nth delivery and
//! lets open sessions finish (for a grace period).

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::session;
use crate::exit::{fail, Exit};
use crate::net::tls::Acceptor;
use crate::proto::users::Policy;
use crate::store::mailbox::MailStore;
use crate::transcript::Transcript;

/// How long open sessions may go on after `--exit-after` was reached.
pub const EXIT_GRACE: Duration = Duration::from_secs(10);

/// Everything `serve` was configured with.
pub struct ServerOptions {
    /// SMTP listening address.
    pub smtp: SocketAddr,
    /// POP3 listening address.
    pub pop3: SocketAddr,
    /// SMTP over implicit TLS (RFC 8314), if any.
    pub smtps: Option<SocketAddr>,
    /// POP3 over implicit TLS (RFC 8314), if any.
    pub pop3s: Option<SocketAddr>,
    /// What the protocol machines need.
    pub policy: Policy,
    /// The mailboxes.
    pub store: Arc<MailStore>,
    /// The TLS identity for STARTTLS / STLS, if any.
    pub tls: Option<Acceptor>,
    /// The `-v` transcript.
    pub transcript: Transcript,
    /// Idle time-out per connection.
    pub idle_timeout: Duration,
    /// Stop after this many delivered messages.
    pub exit_after: Option<u64>,
    /// Most connections served at once; more get 421 / `-ERR`.
    pub max_connections: usize,
    /// The web inbox and the fault rules.
    pub hooks: super::hooks::Hooks,
}

/// Why the server stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT or SIGTERM.
    Signal,
    /// `--exit-after` was reached.
    ExitAfter,
}

/// State shared by all connection threads.
pub struct Shared {
    /// See [`ServerOptions::policy`].
    pub policy: Policy,
    /// See [`ServerOptions::store`].
    pub store: Arc<MailStore>,
    /// See [`ServerOptions::tls`].
    pub tls: Option<Acceptor>,
    /// See [`ServerOptions::transcript`].
    pub transcript: Transcript,
    /// See [`ServerOptions::idle_timeout`].
    pub idle_timeout: Duration,
    /// See [`ServerOptions::exit_after`].
    pub exit_after: Option<u64>,
    /// Set once shutdown has begun.
    pub stopping: AtomicBool,
    /// Messages whose data phase began.
    pub received: AtomicU64,
    /// Messages delivered (250 sent or about to be).
    pub delivered: AtomicU64,
    /// Where a session reports that `--exit-after` was reached.
    pub stop: Sender<Stop>,
    /// See [`ServerOptions::hooks`].
    pub hooks: super::hooks::Hooks,
    connections: Mutex<HashMap<u64, TcpStream>>,
    all_closed: Condvar,
    next_id: AtomicU64,
    max_connections: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Smtp,
    Pop3,
}

/// Runs the server until a signal or `--exit-after`; returns the number of
/// messages delivered.
pub fn run(options: ServerOptions) -> anyhow::Result<u64> {
    let mut listeners = vec![
        (bind(options.smtp, "smtp")?, Protocol::Smtp, false),
        (bind(options.pop3, "pop3")?, Protocol::Pop3, false),
    ];
    for (addr, protocol) in [
        (options.smtps, Protocol::Smtp),
        (options.pop3s, Protocol::Pop3),
    ] {
        if let Some(addr) = addr {
            let name = protocol.name(true);
            listeners.push((bind(addr, name)?, protocol, true));
        }
    }
    let (stop_tx, stop_rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        policy: options.policy,
        store: options.store,
        tls: options.tls,
        transcript: options.transcript,
        idle_timeout: options.idle_timeout,
        exit_after: options.exit_after,
        stopping: AtomicBool::new(false),
        received: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        stop: stop_tx.clone(),
        hooks: options.hooks,
        connections: Mutex::new(HashMap::new()),
        all_closed: Condvar::new(),
        next_id: AtomicU64::new(1),
        max_connections: options.max_connections,
    });
    let signal_tx = stop_tx;
    super::signal::on_shutdown_signal(Box::new(move || {
        let _ = signal_tx.send(Stop::Signal);
    }))
    .map_err(|e| {
        fail(
            Exit::Software,
            format!("cannot install signal handlers: {e}"),
        )
    })?;

    let mut wake = Vec::new();
    let mut acceptors: Vec<JoinHandle<()>> = Vec::new();
    for (listener, protocol, implicit_tls) in listeners {
        let name = protocol.name(implicit_tls);
        let addr = listener.local_addr()?;
        eprintln!("mailctl: {name} listening on {addr}");
        wake.push(addr);
        let shared = shared.clone();
        acceptors.push(
            std::thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || accept_loop(&shared, listener, protocol, implicit_tls))?,
        );
    }

    let reason = stop_rx.recv().unwrap_or(Stop::Signal);
    shared.stopping.store(true, Ordering::SeqCst);
    for addr in wake {
        // Each accept loop checks the flag after its next connection.
        let _ = TcpStream::connect_timeout(&reachable(addr), Duration::from_secs(2));
    }
    for handle in acceptors {
        let _ = handle.join();
    }
    let mut open = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
    if reason == Stop::ExitAfter {
        open = shared
            .all_closed
            .wait_timeout_while(open, EXIT_GRACE, |c| !c.is_empty())
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    // Wake every session blocked reading: it sees end of stream, says
    // goodbye and exits; a delivery being committed completes first.
    for tcp in open.values() {
        let _ = tcp.shutdown(Shutdown::Read);
    }
    let _open = shared
        .all_closed
        .wait_while(open, |c| !c.is_empty())
        .unwrap_or_else(|e| e.into_inner());
    Ok(shared.delivered.load(Ordering::SeqCst))
}

fn bind(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        let exit = if e.kind() == std::io::ErrorKind::AddrInUse {
            Exit::TempFail
        } else {
            Exit::Config
        };
        fail(exit, format!("cannot listen for {name} on {addr}: {e}"))
    })
}

/// The address to connect to in order to reach a listener (an unspecified
/// address is reached through loopback).
pub fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

impl Protocol {
    /// The listener's name in messages.
    fn name(self, implicit_tls: bool) -> &'static str {
        match (self, implicit_tls) {
            (Protocol::Smtp, false) => "smtp",
            (Protocol::Pop3, false) => "pop3",
            (Protocol::Smtp, true) => "smtps",
            (Protocol::Pop3, true) => "pop3s",
        }
    }
}

fn accept_loop(
    shared: &Arc<Shared>,
    listener: TcpListener,
    protocol: Protocol,
    implicit_tls: bool,
) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let tcp = match stream {
            Ok(tcp) => tcp,
            Err(e) => {
                // Out of descriptors or an aborted handshake: carry on,
                // without spinning.
                eprintln!("mailctl: warning: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let peer = match tcp.peer_addr() {
            Ok(p) => p,
            Err(_) => continue,
        };
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let registered = {
            let mut open = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
            if open.len() >= shared.max_connections {
                false
            } else {
                match tcp.try_clone() {
                    Ok(clone) => {
                        open.insert(id, clone);
                        true
                    }
                    Err(_) => false,
                }
            }
        };
        if !registered {
            shared
                .transcript
                .with_prefix(format!("[{id}] "))
                .note("*", &format!("refused {peer}: too many connections"));
            refuse(tcp, protocol);
            continue;
        }
        let worker = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{id}"))
            .spawn(move || {
                match protocol {
                    Protocol::Smtp => session::smtp_session(&worker, tcp, peer, id, implicit_tls),
                    Protocol::Pop3 => session::pop3_session(&worker, tcp, peer, id, implicit_tls),
                }
                worker.finished(id);
            });
        if spawned.is_err() {
            shared.finished(id);
        }
    }
}

impl Shared {
    fn finished(&self, id: u64) {
        let mut open = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&id);
        if open.is_empty() {
            self.all_closed.notify_all();
        }
    }
}

/// Turns away a connection over the cap (RFC 5321 section 3.8: 421).
fn refuse(mut tcp: TcpStream, protocol: Protocol) {
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(2)));
    let message: &[u8] = match protocol {
        Protocol::Smtp => b"421 4.3.2 Too many connections, try again later\r\n",
        Protocol::Pop3 => b"-ERR [SYS/TEMP] too many connections, try again later\r\n",
    };
    let _ = tcp.write_all(message);
    let _ = tcp.shutdown(Shutdown::Both);
}
