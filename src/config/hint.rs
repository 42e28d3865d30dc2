//! Suggestions for errors whose fix is obvious from the settings.

use crate::endpoint::TlsMode;

/// A suggestion when `port` and `mode` look mismatched, for appending to a
/// connection or TLS error: `error: ...; hint: ...`.
///
/// Port 465 (SMTPS, RFC 8314 section 3.3) and 995 (POP3S) speak TLS from the
/// first byte; ports 25, 587 and 110 start in plaintext and upgrade with
/// STARTTLS / STLS.
pub fn tls_hint(port: u16, mode: TlsMode) -> Option<&'static str> {
    match (port, mode) {
        (465, TlsMode::Starttls | TlsMode::None) => Some(
            "port 465 speaks TLS from the first byte (SMTPS): use --tls implicit \
             (tls = \"implicit\" in the config file), or leave the TLS mode out",
        ),
        (995, TlsMode::Starttls | TlsMode::None) => Some(
            "port 995 speaks TLS from the first byte (POP3S): use --tls implicit \
             (tls = \"implicit\" in the config file), or leave the TLS mode out",
        ),
        (587, TlsMode::Implicit) => Some(
            "port 587 (submission) starts in plaintext and upgrades with STARTTLS: \
             use --tls starttls, or port 465 for TLS from the first byte",
        ),
        (25, TlsMode::Implicit) => Some(
            "port 25 starts in plaintext and upgrades with STARTTLS: use --tls starttls, \
             or port 465 for TLS from the first byte",
        ),
        (110, TlsMode::Implicit) => Some(
            "port 110 starts in plaintext and upgrades with STLS: use --tls starttls, \
             or port 995 for TLS from the first byte",
        ),
        _ => None,
    }
}

/// Appends the [`tls_hint`] for `port` and `mode`, if there is one, to an
/// error's message, keeping its exit status.
pub fn with_tls_hint(err: anyhow::Error, port: u16, mode: TlsMode) -> anyhow::Error {
    match tls_hint(port, mode) {
        // One hint is enough: the error may carry its own.
        Some(_) if format!("{err:#}").contains("; hint: ") => err,
        Some(hint) => super::Hinted { error: err, hint }.into(),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches_have_hints() {
        assert!(tls_hint(465, TlsMode::Starttls)
            .unwrap()
            .contains("--tls implicit"));
        assert!(tls_hint(995, TlsMode::None)
            .unwrap()
            .contains("--tls implicit"));
        assert!(tls_hint(587, TlsMode::Implicit)
            .unwrap()
            .contains("--tls starttls"));
        assert!(tls_hint(110, TlsMode::Implicit).unwrap().contains("STLS"));
        assert_eq!(tls_hint(465, TlsMode::Implicit), None);
        assert_eq!(tls_hint(587, TlsMode::Starttls), None);
        assert_eq!(tls_hint(2525, TlsMode::Implicit), None);
    }

    #[test]
    fn hint_wraps_the_error() {
        let err = with_tls_hint(anyhow::anyhow!("timed out"), 465, TlsMode::Starttls);
        let hinted = err.downcast_ref::<super::super::Hinted>().unwrap();
        assert_eq!(hinted.error.to_string(), "timed out");
        assert!(format!("{err:#}").starts_with("timed out; hint: port 465"));
        // Only one hint.
        let again = with_tls_hint(err, 465, TlsMode::Starttls);
        assert_eq!(format!("{again:#}").matches("; hint: ").count(), 1);
        let err = with_tls_hint(anyhow::anyhow!("x"), 465, TlsMode::Implicit);
        assert_eq!(format!("{err:#}"), "x");
    }
}
