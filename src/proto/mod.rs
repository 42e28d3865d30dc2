//! The protocols, as pure state machines: no sockets, files, clock or
//! process state. They are fed bytes or lines and hand back what to send.
//!
//! - [`smtp`]: SMTP client (submission) and server (receiver).
//! - [`pop3`]: POP3 client (retrieval) and server.
//! - [`dot`]: dot-stuffing and unstuffing of message data.
//! - [`line`](mod@line): the bounded line reader all of them frame input with.
//! - [`sasl`]: the SASL mechanisms both protocols use.
//! - [`oauth2`]: the messages of the OAuth 2 grants that yield their tokens.
//! - [`users`]: the accounts and mailbox names of `mailctl serve`.

pub mod dot;
pub mod line;
pub mod oauth2;
pub mod pop3;
pub mod sasl;
pub mod smtp;
pub mod users;

#[cfg(test)]
pub(crate) mod testing {
    //! What the protocol tests share.

    /// Checks each `(line, expected)` row of a parser's table, naming the
    /// line that fails.
    pub fn check_lines<'a, T: PartialEq + std::fmt::Debug>(
        cases: &[(&'a [u8], T)],
        parse: impl Fn(&'a [u8]) -> T,
    ) {
        for (line, expected) in cases {
            assert_eq!(
                parse(line),
                *expected,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
