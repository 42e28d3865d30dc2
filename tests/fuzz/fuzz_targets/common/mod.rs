//! Helpers shared by the fuzz targets: chunk sizes taken from the input,
//! and checks of wire forms.

#![allow(dead_code)]

/// Chunk sizes drawn from one seed byte of the input: 0 means "all at
/// once", 1 means "one byte at a time", anything else a varying size.
pub struct Chunks {
    seed: u8,
    state: u32,
}

impl Chunks {
    /// Sizes for this seed.
    pub fn new(seed: u8) -> Self {
        Chunks {
            seed,
            state: 0x9e37_79b9 ^ u32::from(seed),
        }
    }

    /// The next chunk size for `remaining` bytes (at least 1 when
    /// `remaining` is not 0, never more than `remaining`).
    pub fn next(&mut self, remaining: usize) -> usize {
        let size = match self.seed {
            0 => remaining,
            1 => 1,
            s => {
                // xorshift32
                self.state ^= self.state << 13;
                self.state ^= self.state >> 17;
                self.state ^= self.state << 5;
                1 + (self.state as usize) % (usize::from(s % 61) + 2)
            }
        };
        size.clamp(1.min(remaining), remaining)
    }

    /// `data` cut into consecutive chunks.
    pub fn split<'a>(&mut self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let (head, tail) = data.split_at(self.next(data.len()));
            out.push(head);
            data = tail;
        }
        out
    }
}

/// Asserts that `bytes` is a sequence of CRLF-ended lines with no other CR
/// or LF, and returns the lines without their CRLF.
pub fn crlf_lines(bytes: &[u8]) -> Vec<&[u8]> {
    assert!(bytes.ends_with(b"\r\n"), "not ended by CRLF: {bytes:?}");
    let body = &bytes[..bytes.len() - 2];
    let lines: Vec<&[u8]> = split_crlf(body);
    for line in &lines {
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "bare CR or LF in {bytes:?}"
        );
    }
    lines
}

fn split_crlf(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    loop {
        match bytes.windows(2).position(|w| w == b"\r\n") {
            Some(p) => {
                out.push(&bytes[..p]);
                bytes = &bytes[p + 2..];
            }
            None => {
                out.push(bytes);
                return out;
            }
        }
    }
}

/// Bare LF turned into CRLF (a CR before an LF stays one CR).
pub fn lf_to_crlf(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 16);
    let mut prev = 0u8;
    for &b in input {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Whether the client's bytes prove knowledge of `password`: sent as is,
/// or inside a base64 word (a SASL PLAIN or LOGIN response; the servers
/// trim the white space around it).
pub fn sent_password(input: &[u8], password: &str) -> bool {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let password = password.as_bytes();
    let has = |hay: &[u8]| hay.windows(password.len()).any(|w| w == password);
    has(input)
        || String::from_utf8_lossy(input)
            .split(char::is_whitespace)
            .filter_map(|word| STANDARD.decode(word).ok())
            .any(|decoded| has(&decoded))
}
