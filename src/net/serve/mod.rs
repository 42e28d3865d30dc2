//! The listener and sessions of `mailctl serve`: [`listener`] accepts
//! connections, caps them and shuts down cleanly; [`session`] drives the
//! SMTP or POP3 server machine over one connection.

pub mod listener;
pub mod session;
pub mod signal;
pub mod summary;

/// The host name of this machine, for greetings and trace headers.
pub fn local_hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}
