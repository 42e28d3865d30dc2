//! POP3 (RFC 1939, RFC 2449) client protocol: a state machine that does no I/O.
