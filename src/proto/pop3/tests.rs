//! Whole sessions of the client machine: against a fixed server transcript
//! fed in every chunk size, and against the server machine, with no
//! sockets in between.

use std::sync::Arc;

use super::login::{Login, Method, Request, Step};
use super::server::{MessageInfo, MessageStuffer, Pop3Action, Pop3Server};
use super::{Client, Command, Event, Kind, State};
use crate::proto::users::{Policy, Users};
use crate::secret::Secret;

/// The POP3 server at the other end.
trait Peer {
    /// Takes the bytes the client sent; returns the server's answer.
    fn receive(&mut self, wire: &[u8]) -> Vec<u8>;
    /// The TLS handshake after STLS is done.
    fn tls_started(&mut self) {}
}

/// A client machine wired to a peer: what the server sends arrives
/// `chunk` bytes at a time, as a socket would hand it over.
struct Wire<'a> {
    client: Client,
    peer: &'a mut dyn Peer,
    chunk: usize,
    /// Server bytes sent and not yet read.
    inbox: Vec<u8>,
    /// Server bytes read and not yet used by the machine.
    buffered: Vec<u8>,
    /// Everything the client sent.
    sent: Vec<u8>,
    /// Message bytes from the last event.
    out: Vec<u8>,
}

impl<'a> Wire<'a> {
    fn new(peer: &'a mut dyn Peer, greeting: Vec<u8>, chunk: usize) -> Self {
        Wire {
            client: Client::new(false),
            peer,
            chunk,
            inbox: greeting,
            buffered: Vec::new(),
            sent: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Sends commands in one write.
    fn send(&mut self, commands: &[Command]) {
        let mut wire = Vec::new();
        for command in commands {
            wire.extend(self.client.send(command).unwrap());
        }
        self.sent.extend_from_slice(&wire);
        let answer = self.peer.receive(&wire);
        self.inbox.extend(answer);
    }

    /// The next event, reading more only when the buffered bytes complete
    /// none.
    fn event(&mut self) -> Event {
        self.out.clear();
        loop {
            let (used, event) = self.client.feed(&self.buffered, &mut self.out).unwrap();
            assert!(used <= self.buffered.len());
            self.buffered.drain(..used);
            if let Some(event) = event {
                return event;
            }
            assert!(!self.inbox.is_empty(), "the server has nothing more to say");
            let take = self.chunk.min(self.inbox.len());
            self.buffered.extend(self.inbox.drain(..take));
        }
    }

    /// A single-line reply.
    fn reply(&mut self, command: Command) -> super::Reply {
        self.send(&[command]);
        match self.event() {
            Event::Reply(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A multi-line reply, its events up to the end.
    fn listing(&mut self, command: Command) -> Vec<Event> {
        self.send(&[command]);
        let mut events = vec![self.event()];
        assert!(matches!(events[0], Event::BodyStart(_)), "{events:?}");
        while !matches!(events.last(), Some(Event::BodyEnd(_))) {
            events.push(self.event());
        }
        events
    }
}

/// What a session saw.
#[derive(Debug, PartialEq)]
struct Seen {
    sent: Vec<u8>,
    uidls: Vec<(u32, Vec<u8>)>,
    messages: Vec<(u32, Vec<u8>)>,
    deleted: Vec<u32>,
}

/// The client's side of a session: greeting, CAPA, STLS, CAPA, login
/// (`auto`, which picks AUTH PLAIN over TLS), STAT, UIDL, every message
/// retrieved and deleted in one pipelined flight, QUIT.
fn session(wire: &mut Wire<'_>) -> Seen {
    let Event::Reply(greeting) = wire.event() else {
        panic!("no greeting")
    };
    assert!(greeting.ok);
    assert!(wire.client.apop_timestamp().is_some());
    wire.listing(Command::Capa);
    assert!(wire.client.capabilities().unwrap().stls);
    assert!(wire.reply(Command::Stls).ok);
    assert!(wire.client.tls_pending());
    wire.client.tls_started();
    wire.peer.tls_started();
    wire.listing(Command::Capa);
    assert!(wire.client.pipelining());

    let secret = Secret::new("tanstaaf");
    let request = Request {
        method: Method::Auto,
        user: "tim",
        secret: &secret,
        server: "pop.test",
        loopback: false,
        token: false,
        nonce: "nonce",
        client_cert: false,
        channel_binding: None,
    };
    let (mut login, first) = Login::start(&request, &wire.client).unwrap();
    assert_eq!(login.method(), Method::Plain);
    wire.send(&first);
    loop {
        let event = wire.event();
        match login.on_event(event).unwrap() {
            Step::Send(more) => wire.send(&more),
            Step::Wait => {}
            Step::Done => break,
        }
    }
    assert_eq!(wire.client.state(), State::Transaction);

    assert!(wire.reply(Command::Stat).ok);
    let count = wire.client.message_count().unwrap();
    let uidls: Vec<(u32, Vec<u8>)> = wire
        .listing(Command::Uidl(None))
        .into_iter()
        .filter_map(|e| match e {
            Event::UidlEntry(n, uid) => Some((n, uid)),
            _ => None,
        })
        .collect();
    assert_eq!(uidls.len(), count as usize);
    // A header on its own: its end is the last byte the server sent, so
    // the machine must report it without more input.
    let top = wire.listing(Command::Top(1, 0));
    assert_eq!(top.last(), Some(&Event::BodyEnd(Kind::Top(1))));

    let mut flight: Vec<Command> = (1..=count).map(Command::Retr).collect();
    flight.extend((1..=count).map(Command::Dele));
    wire.send(&flight);
    let mut messages = Vec::new();
    let mut deleted = Vec::new();
    while wire.client.outstanding() > 0 {
        match wire.event() {
            Event::BodyStart(r) => {
                let Kind::Retr(n) = r.kind else { panic!() };
                messages.push((n, Vec::new()));
            }
            Event::Data => messages.last_mut().unwrap().1.extend(&wire.out),
            Event::BodyEnd(Kind::Retr(_)) => {}
            Event::Reply(r) => match r.kind {
                Kind::Dele(n) if r.ok => deleted.push(n),
                Kind::Dele(_) => assert!(r.is_temporary()),
                _ => panic!("{r:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(wire.reply(Command::Quit).ok);
    assert!(wire.client.deletions_committed());
    assert_eq!(wire.client.state(), State::Closed);
    Seen {
        sent: std::mem::take(&mut wire.sent),
        uidls,
        messages,
        deleted,
    }
}

/// A server that says its lines whatever the client sends.
struct Transcript;

impl Peer for Transcript {
    fn receive(&mut self, _: &[u8]) -> Vec<u8> {
        Vec::new()
    }
}

const SERVER_SAYS: &[u8] = b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n\
+OK capability list follows\r\nUSER\r\nSTLS\r\nSASL PLAIN\r\nPIPELINING\r\nUIDL\r\n.\r\n\
+OK begin TLS negotiation\r\n\
+OK\r\nUSER\r\nSASL PLAIN XOAUTH2\r\nPIPELINING\r\nUIDL\r\nTOP\r\n.\r\n\
+OK logged in\r\n\
+OK 2 320\r\n\
+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n\
+OK\r\nSubject: one\r\n\r\n.\r\n\
+OK 120 octets\r\nSubject: one\r\n\r\n..stuffed\r\nbody\r\n.\r\n\
+OK 200 octets\r\nSubject: two\r\n\r\n..\r\n\xff\x00 binary\r\nlast\r\n.\r\n\
+OK message 1 deleted\r\n\
-ERR [SYS/TEMP] message 2 is busy\r\n\
+OK bye\r\n";

#[test]
fn whole_session_in_every_chunk_size() {
    let expected = Seen {
        sent: b"CAPA\r\nSTLS\r\nCAPA\r\nAUTH PLAIN AHRpbQB0YW5zdGFhZg==\r\nSTAT\r\nUIDL\r\nTOP 1 0\r\n\
RETR 1\r\nRETR 2\r\nDELE 1\r\nDELE 2\r\nQUIT\r\n"
            .to_vec(),
        uidls: vec![
            (1, b"whqtswO00WBw418f9t5JxYwZ".to_vec()),
            (2, b"QhdPYR:00WBw1Ph7x7".to_vec()),
        ],
        messages: vec![
            (1, b"Subject: one\r\n\r\n.stuffed\r\nbody\r\n".to_vec()),
            (
                2,
                b"Subject: two\r\n\r\n.\r\n\xff\x00 binary\r\nlast\r\n".to_vec(),
            ),
        ],
        deleted: vec![1],
    };
    for chunk in 1..=SERVER_SAYS.len() {
        let mut peer = Transcript;
        let mut wire = Wire::new(&mut peer, SERVER_SAYS.to_vec(), chunk);
        let seen = session(&mut wire);
        assert_eq!(seen, expected, "chunk {chunk}");
        assert!(wire.inbox.is_empty() && wire.buffered.is_empty());
    }
}

/// The server machine, with its maildrop in memory.
struct Server {
    machine: Pop3Server,
    maildrop: Vec<Vec<u8>>,
    /// A partial command line.
    partial: Vec<u8>,
}

impl Server {
    fn infos(&self) -> Vec<MessageInfo> {
        self.maildrop
            .iter()
            .enumerate()
            .map(|(i, m)| MessageInfo {
                size: m.len() as u64,
                uid: format!("{}.uid", i + 1),
            })
            .collect()
    }
}

impl Peer for Server {
    fn receive(&mut self, wire: &[u8]) -> Vec<u8> {
        let mut answer = Vec::new();
        self.partial.extend_from_slice(wire);
        while let Some(p) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=p).collect();
            let step = self.machine.command(&line);
            answer.extend(step.reply);
            match step.action {
                Pop3Action::Continue | Pop3Action::StartTls | Pop3Action::Close => {}
                Pop3Action::Open(_) => {
                    let infos = self.infos();
                    answer.extend(self.machine.opened(Ok(infos)));
                }
                Pop3Action::Send { index, body_lines } => {
                    let mut stuffer = MessageStuffer::new(body_lines);
                    stuffer.feed(&self.maildrop[index], &mut answer);
                    stuffer.finish(&mut answer);
                }
                Pop3Action::Update(indexes) => {
                    for i in indexes.into_iter().rev() {
                        self.maildrop.remove(i);
                    }
                    answer.extend(self.machine.updated(true));
                }
            }
        }
        answer
    }

    fn tls_started(&mut self) {
        self.machine.tls_started();
    }
}

#[test]
fn conversation_with_the_server_machine() {
    let maildrop: Vec<Vec<u8>> = vec![
        b"From: a@example.org\r\nSubject: first\r\n\r\nHello.\r\n".to_vec(),
        b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\n\xe9t\xe9 \x00\r\n\r\n".to_vec(),
        b"Subject: third\r\n\r\n".to_vec(),
    ];
    for chunk in [1, 2, 3, 5, 8, 13, 64, 4096] {
        let mut users = Users::none();
        users.add("tim", Secret::new("tanstaaf")).unwrap();
        let policy = Policy {
            hostname: "pop.test".into(),
            max_size: 1 << 20,
            tls_available: true,
            users: Arc::new(users),
        };
        let machine = Pop3Server::new(policy, "<1.2@pop.test>".into(), false);
        let greeting = machine.greeting();
        let mut server = Server {
            machine,
            maildrop: maildrop.clone(),
            partial: Vec::new(),
        };
        let mut wire = Wire::new(&mut server, greeting, chunk);
        let seen = session(&mut wire);
        let got: Vec<Vec<u8>> = seen.messages.into_iter().map(|(_, m)| m).collect();
        assert_eq!(got, maildrop, "chunk {chunk}");
        assert_eq!(seen.deleted, [1, 2, 3]);
        assert_eq!(seen.uidls[2], (3, b"3.uid".to_vec()));
        assert!(server.maildrop.is_empty(), "DELE applied at QUIT");
    }
}
