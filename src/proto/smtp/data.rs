//! The DATA encoding (RFC 5321 sections 4.1.1.4 and 4.5.2): every line
//! ends in CRLF, a line starting with "." gets another ".", and the message
//! ends with CRLF "." CRLF.
//!
//! [`DataEncoder`] is a streaming `Write` adapter over
//! [`crate::proto::dot::Stuffer`]: its state survives chunk boundaries, so
//! the message can be written in pieces of any size. Bare CR and bare LF
//! both become CRLF, which leaves no way to smuggle an end of
//! data (`\n.\n`, `\r.\r`, ...) through to a server that reads them
//! differently.

use std::io::{self, Write};

use crate::proto::dot::Stuffer;

/// Encodes a message for DATA while writing it to `inner`.
pub struct DataEncoder<W: Write> {
    inner: W,
    stuffer: Stuffer,
    out: Vec<u8>,
    written: u64,
}

impl<W: Write> DataEncoder<W> {
    /// Wraps `inner`; the message starts at the beginning of a line.
    pub fn new(inner: W) -> Self {
        DataEncoder {
            inner,
            stuffer: Stuffer::new(),
            out: Vec::new(),
            written: 0,
        }
    }

    /// Bytes written to `inner` so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Ends the last line if needed, writes the terminating "." line and
    /// returns the inner writer, not flushed, so that a pipelined QUIT can
    /// join the same write.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.clear();
        self.stuffer.finish(&mut self.out);
        self.inner.write_all(&self.out)?;
        self.written += self.out.len() as u64;
        Ok(self.inner)
    }

    fn encode(&mut self, buf: &[u8]) {
        self.out.clear();
        self.stuffer.feed(buf, &mut self.out);
    }
}

impl<W: Write> Write for DataEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encode(buf);
        self.inner.write_all(&self.out)?;
        self.written += self.out.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encodes a whole message at once (for tests and small messages).
pub fn encode(message: &[u8]) -> Vec<u8> {
    let mut enc = DataEncoder::new(Vec::new());
    enc.write_all(message)
        .expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// The number of bytes `message` has once every line ending is CRLF (the
/// size RFC 1870 asks for), before dot-stuffing.
pub fn normalized_len(message: &[u8]) -> u64 {
    let mut len = 0u64;
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                len += 2;
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => len += 2,
            _ => len += 1,
        }
        i += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Transparency and smuggling table in the style of mail-send's tests:
    /// every way of writing an end-of-data marker is neutralised.
    #[test]
    fn transparency_table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"hi", b"hi\r\n.\r\n"),
            (b"hi\r\n", b"hi\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
            (
                b"a\n.\r\nMAIL FROM:<x>",
                b"a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n",
            ),
            (b"a\r\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
            (b"..x\r\n", b"...x\r\n.\r\n"),
            (b"x\r", b"x\r\n.\r\n"),
            (b"\n", b"\r\n.\r\n"),
            (b"\r", b"\r\n.\r\n"),
            (b"a.b\r\n .c", b"a.b\r\n .c\r\n.\r\n"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                encode(input),
                *expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let message: &[u8] = b".start\r\nline\n.dot\r.cr\r\r\n\n..two\r\nend.\r\n.";
        let whole = encode(message);
        for size in 1..message.len() {
            let mut enc = DataEncoder::new(Vec::new());
            for chunk in message.chunks(size) {
                enc.write_all(chunk).unwrap();
            }
            let written = enc.written();
            let out = enc.finish().unwrap();
            assert_eq!(out, whole, "chunk size {size}");
            assert!(written < out.len() as u64);
        }
    }

    #[test]
    fn normalized_length() {
        for input in [&b"a\r\nb\nc\rd"[..], b"\r\r\n\n", b"", b"x\r"] {
            let encoded = encode(input);
            // Remove the dot-stuffing-free terminator to compare sizes.
            let mut body = encoded[..encoded.len() - 3].to_vec();
            if !input.is_empty() && !input.ends_with(b"\n") && !input.ends_with(b"\r") {
                body.truncate(body.len() - 2);
            }
            assert_eq!(normalized_len(input), body.len() as u64, "{input:?}");
        }
    }
}
