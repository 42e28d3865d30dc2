//! HTTP/1.1 on the wire for the web inbox: a request head read within a
//! size bound and a deadline, a bounded body, and responses with a length.
//!
//! Nothing a client sends grows memory past [`MAX_HEAD`] + [`MAX_BODY`]
//! per connection, and a client that stalls is answered 408 and closed.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The longest request head (request line and headers).
pub const MAX_HEAD: usize = 64 * 1024;

/// The most header fields in a head.
const MAX_FIELDS: usize = 100;

/// The longest request body.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long a client has for a whole request head, from its first byte
/// (or from the connection being accepted).
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);

/// How long a client has for a request body.
const BODY_DEADLINE: Duration = Duration::from_secs(30);

/// How long a kept-alive connection may sit idle between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a write may block on a client that does not read.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection answered with an error is read and discarded
/// before it is closed (so that the client sees the answer, not a reset).
const LINGER: Duration = Duration::from_secs(2);

/// One request, its body read.
#[derive(Debug)]
pub struct Request {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/api/messages?to=bob`.
    pub url: String,
    /// The header fields, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Vec<u8>,
    /// Whether the client wants the connection kept open afterwards.
    pub keep_alive: bool,
}

impl Request {
    /// The value of a header field (the first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The client closed the connection (or went idle) between requests.
    Gone,
    /// Not a whole head in time: 408.
    TimedOut,
    /// A head over [`MAX_HEAD`] or with too many fields: 431.
    HeadTooLarge,
    /// A body over [`MAX_BODY`]: 413.
    BodyTooLarge,
    /// A body without a length (chunked): 411.
    LengthRequired,
    /// Not HTTP/1.x: 400.
    Malformed,
}

impl ReadError {
    /// The answer owed to the client, if any.
    pub fn reply(&self) -> Option<Reply> {
        let (status, text) = match self {
            ReadError::Gone => return None,
            ReadError::TimedOut => (408, "the request did not arrive in time"),
            ReadError::HeadTooLarge => (431, "the request head is too large (at most 64 KiB)"),
            ReadError::BodyTooLarge => (413, "the request body is too large (at most 1 MiB)"),
            ReadError::LengthRequired => (411, "a request body needs a Content-Length"),
            ReadError::Malformed => (400, "not an HTTP/1.1 request"),
        };
        Some(super::api::error(status, text))
    }
}

/// Reads requests from one connection, keeping what arrived past one
/// request for the next.
pub struct Reader {
    /// Bytes received and not used yet.
    buffered: Vec<u8>,
    /// Whether a request was read already (later ones may wait idle).
    served: bool,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    /// A reader for a fresh connection.
    pub fn new() -> Reader {
        Reader {
            buffered: Vec::new(),
            served: false,
        }
    }

    /// Reads the next request from `stream`; `tcp` is its socket (for the
    /// time-outs).
    pub fn next(
        &mut self,
        stream: &mut (impl Read + Write),
        tcp: &TcpStream,
    ) -> Result<Request, ReadError> {
        if self.served && self.buffered.is_empty() {
            // Idle between requests: wait for a first byte, then the head.
            let _ = tcp.set_read_timeout(Some(IDLE_TIMEOUT));
            if self.fill(stream).unwrap_or(0) == 0 {
                return Err(ReadError::Gone);
            }
        }
        self.served = true;
        let deadline = Instant::now() + HEAD_DEADLINE;
        let end = self.head_end(stream, tcp, deadline)?;
        let mut request = parse_head(&self.buffered[..end])?;
        self.buffered.drain(..end);
        let length = body_length(&request)?;
        if request
            .header("Expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && length > self.buffered.len()
        {
            let _ = tcp.set_write_timeout(Some(WRITE_TIMEOUT));
            stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ReadError::Gone)?;
        }
        let deadline = Instant::now() + BODY_DEADLINE;
        while self.buffered.len() < length {
            self.fill_by(stream, tcp, deadline)?;
        }
        request.body = self.buffered.drain(..length).collect();
        Ok(request)
    }

    /// Reads until the buffer holds a whole head; returns its length.
    fn head_end(
        &mut self,
        stream: &mut (impl Read + Write),
        tcp: &TcpStream,
        deadline: Instant,
    ) -> Result<usize, ReadError> {
        let mut searched = 0;
        loop {
            if let Some(end) = find_head_end(&self.buffered, searched) {
                return Ok(end);
            }
            if self.buffered.len() > MAX_HEAD {
                return Err(ReadError::HeadTooLarge);
            }
            searched = self.buffered.len().saturating_sub(3);
            self.fill_by(stream, tcp, deadline)?;
        }
    }

    /// Reads more bytes before `deadline`: 408 after it, [`ReadError::Gone`]
    /// at the end of the stream.
    fn fill_by(
        &mut self,
        stream: &mut impl Read,
        tcp: &TcpStream,
        deadline: Instant,
    ) -> Result<(), ReadError> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(ReadError::TimedOut)?;
        let _ = tcp.set_read_timeout(Some(left));
        match self.fill(stream)? {
            0 => Err(ReadError::Gone),
            _ => Ok(()),
        }
    }

    /// One read into the buffer: [`ReadError::TimedOut`] at the socket's
    /// time-out, [`ReadError::Gone`] on other errors.
    fn fill(&mut self, stream: &mut impl Read) -> Result<usize, ReadError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(n) => {
                    self.buffered.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ReadError::TimedOut)
                }
                Err(_) => return Err(ReadError::Gone),
            }
        }
    }
}

/// Where the blank line ending a head is (the head's length), looking from
/// `from` on.
fn find_head_end(buffer: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at < buffer.len() {
        let rest = &buffer[at..];
        if rest.starts_with(b"\r\n\r\n") {
            return Some(at + 4);
        }
        if rest.starts_with(b"\n\n") {
            return Some(at + 2);
        }
        at += 1;
    }
    None
}

/// Parses a whole head (request line and fields).
fn parse_head(head: &[u8]) -> Result<Request, ReadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut parsed = httparse::Request::new(&mut fields);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::HeadTooLarge),
        _ => return Err(ReadError::Malformed),
    }
    let (Some(method), Some(url), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(ReadError::Malformed);
    };
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_string();
            (h.name.to_string(), value)
        })
        .collect();
    let mut request = Request {
        method: method.to_string(),
        url: url.to_string(),
        headers,
        body: Vec::new(),
        keep_alive: false,
    };
    let connection = request
        .header("Connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    request.keep_alive = match version {
        1 => !connection.contains("close"),
        _ => connection.contains("keep-alive"),
    };
    Ok(request)
}

/// The length of the request's body.
fn body_length(request: &Request) -> Result<usize, ReadError> {
    if request.header("Transfer-Encoding").is_some() {
        return Err(ReadError::LengthRequired);
    }
    let mut lengths = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .map(|(_, v)| v.as_str());
    let Some(length) = lengths.next() else {
        return Ok(0);
    };
    // Two different lengths would let two readers split the stream apart.
    if lengths.any(|other| other != length) {
        return Err(ReadError::Malformed);
    }
    let length: u64 = length.parse().map_err(|_| ReadError::Malformed)?;
    if length > MAX_BODY as u64 {
        return Err(ReadError::BodyTooLarge);
    }
    Ok(length as usize)
}

/// A response with its body in memory.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header fields besides `Content-Length` and `Connection`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A 200 response with this body.
    pub fn from_data(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    /// The same with another status.
    pub fn with_status_code(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    /// The same with one more header field.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Writes the response (without its body when `head_only`, for HEAD);
    /// `keep_alive` says whether the connection stays open.
    pub fn write_to(
        &self,
        out: &mut impl Write,
        head_only: bool,
        keep_alive: bool,
    ) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let connection = if keep_alive { "keep-alive" } else { "close" };
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        out.write_all(&bytes)?;
        out.flush()
    }
}

/// The reason phrase of a status code.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Ends a connection after an error answer: stops writing, then reads
/// and discards what the client still sends for a moment (so that the
/// answer is not lost to a reset), then closes.
pub fn linger(stream: &mut impl Read, tcp: &TcpStream) {
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 16 * 1024];
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        let _ = tcp.set_read_timeout(Some(left));
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that hands out `input` in chunks of `size` bytes.
    struct Chunked<'a> {
        input: &'a [u8],
        size: usize,
        written: Vec<u8>,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.size.min(buf.len()).min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input = &self.input[n..];
            Ok(n)
        }
    }

    impl Write for Chunked<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A connected socket, for the time-outs the reader sets.
    fn socket() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    /// Every request `input` holds, read in chunks of `size`, then the
    /// error that ended reading.
    fn read_all(input: &[u8], size: usize) -> (Vec<Request>, ReadError, Vec<u8>) {
        let (tcp, _client) = socket();
        let mut stream = Chunked {
            input,
            size,
            written: Vec::new(),
        };
        let mut reader = Reader::new();
        let mut requests = Vec::new();
        loop {
            match reader.next(&mut stream, &tcp) {
                Ok(r) => requests.push(r),
                Err(e) => return (requests, e, stream.written),
            }
        }
    }

    #[test]
    fn pipelined_requests_in_every_chunk_size() {
        let input = b"GET /api/messages?to=bob HTTP/1.1\r\nHost: localhost\r\n\r\n\
            PUT /api/faults HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello\
            GET / HTTP/1.0\n\n";
        for size in 1..=input.len() {
            let (requests, end, _) = read_all(input, size);
            assert_eq!(end, ReadError::Gone, "chunk size {size}");
            assert_eq!(requests.len(), 3, "chunk size {size}");
            assert_eq!(requests[0].url, "/api/messages?to=bob");
            assert_eq!(requests[0].header("host"), Some("localhost"));
            assert!(requests[0].keep_alive);
            assert_eq!(
                (requests[1].method.as_str(), &requests[1].body[..]),
                ("PUT", &b"hello"[..])
            );
            assert!(!requests[2].keep_alive);
        }
    }

    #[test]
    fn a_client_told_to_continue_only_when_its_body_is_missing() {
        let input = b"PUT / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
        let (_, _, written) = read_all(input, 1024);
        assert_eq!(written, b"HTTP/1.1 100 Continue\r\n\r\n");
        let (_, _, written) = read_all(b"PUT / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", 1024);
        assert!(written.is_empty());
    }

    #[test]
    fn oversized_heads_and_bodies_are_refused() {
        let mut endless = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        endless.resize(MAX_HEAD * 4, b'a');
        assert_eq!(read_all(&endless, 4096).1, ReadError::HeadTooLarge);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for n in 0..=MAX_FIELDS {
            many.extend_from_slice(format!("X-{n}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(read_all(&many, 4096).1, ReadError::HeadTooLarge);
        let big = format!("PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert_eq!(read_all(big.as_bytes(), 4096).1, ReadError::BodyTooLarge);
        let chunked = b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(read_all(chunked, 4096).1, ReadError::LengthRequired);
        assert_eq!(
            read_all(b"\x16\x03\x01\r\n\r\n", 4096).1,
            ReadError::Malformed
        );
        let bad_length = b"PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(read_all(bad_length, 4096).1, ReadError::Malformed);
        let two_lengths = b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(read_all(two_lengths, 4096).1, ReadError::Malformed);
    }

    #[test]
    fn responses_carry_their_length_and_connection() {
        let reply = Reply::from_data(b"{}".to_vec())
            .with_status_code(404)
            .with_header("Content-Type", "application/json");
        let mut out = Vec::new();
        reply.write_to(&mut out, false, true).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\nConnection: keep-alive\r\n\r\n{}"
        );
        let mut out = Vec::new();
        reply.write_to(&mut out, true, false).unwrap();
        assert!(out.ends_with(b"Connection: close\r\n\r\n"));
    }
}
