//! The protocol transcript shown with `-v`: `C: ...` and `S: ...` lines on
//! stderr, with terminal controls neutralised.
//!
//! Secrets are the caller's business: a protocol driver passes the redacted
//! form of a command (`PASS <redacted>`) to [`Transcript::client`], never the
//! wire bytes of a credential.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::text::printable_line;

/// Where transcript lines go.
#[derive(Clone)]
pub struct Transcript {
    sink: Option<Arc<Mutex<dyn Write + Send>>>,
    /// When given, lines are recorded only while it is true.
    gate: Option<Arc<AtomicBool>>,
    prefix: String,
}

impl Transcript {
    /// A transcript written to stderr when `enabled`, discarded otherwise.
    pub fn stderr(enabled: bool) -> Self {
        Transcript {
            sink: enabled.then(|| Arc::new(Mutex::new(std::io::stderr())) as _),
            gate: None,
            prefix: String::new(),
        }
    }

    /// A transcript written to `sink`, only while `gate` (if any) is true.
    pub fn to(sink: Arc<Mutex<dyn Write + Send>>, gate: Option<Arc<AtomicBool>>) -> Self {
        Transcript {
            sink: Some(sink),
            gate,
            prefix: String::new(),
        }
    }

    /// A transcript that records nothing.
    pub fn off() -> Self {
        Self::stderr(false)
    }

    /// A transcript collected in memory, for tests.
    pub fn memory() -> (Self, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let t = Transcript {
            sink: Some(buf.clone() as _),
            gate: None,
            prefix: String::new(),
        };
        (t, buf)
    }

    /// The same sink with every line prefixed, e.g. by a connection id.
    pub fn with_prefix(&self, prefix: impl Into<String>) -> Self {
        Transcript {
            sink: self.sink.clone(),
            gate: self.gate.clone(),
            prefix: prefix.into(),
        }
    }

    /// Whether lines are recorded at all (skip formatting work when not).
    pub fn enabled(&self) -> bool {
        self.sink.is_some() && self.gate.as_ref().is_none_or(|g| g.load(Ordering::Relaxed))
    }

    /// Records a line the client sent (already redacted by the caller).
    pub fn client(&self, line: &[u8]) {
        self.line("C: ", line);
    }

    /// Records a line the server sent.
    pub fn server(&self, line: &[u8]) {
        self.line("S: ", line);
    }

    /// Records a free-form note, such as `<message body, 1234 bytes>`.
    pub fn note(&self, who: &str, text: &str) {
        self.line(&format!("{who}: "), text.as_bytes());
    }

    fn line(&self, tag: &str, line: &[u8]) {
        if !self.enabled() {
            return;
        }
        if let Some(sink) = &self.sink {
            let text = format!("{}{tag}{}\n", self.prefix, printable_line(line));
            if let Ok(mut w) = sink.lock() {
                let _ = w.write_all(text.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_neutralised_lines_with_prefix() {
        let (t, buf) = Transcript::memory();
        let t = t.with_prefix("[3] ");
        t.client(b"EHLO me\r\n");
        t.server(b"250 hi\x1b]0;pwned\x07\r\n");
        t.note("C", "<message, 10 bytes>");
        let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(
            out,
            "[3] C: EHLO me\n[3] S: 250 hi\\x1b]0;pwned\\x07\n[3] C: <message, 10 bytes>\n"
        );
        assert!(!Transcript::off().enabled());
    }
}
