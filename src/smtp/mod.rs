//! SMTP (RFC 5321) client protocol: a state machine that does no I/O.
