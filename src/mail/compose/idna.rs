//! Internationalised domain names in their ASCII form (RFC 5890 A-labels),
//! so that `a@bücher.de` can be sent to any server as `a@xn--bcher-kva.de`
//! without needing SMTPUTF8 (RFC 6531).
//!
//! A domain with any non-ASCII character goes through the UTS #46 mapping
//! of the `idna` crate (case folding, width and compatibility mapping, the
//! ideographic full stops as dots) with its strict rules: letters, digits
//! and hyphens only, no hyphen at either end of a label. An ASCII domain is
//! kept as written.

use crate::text::printable;

/// The ASCII form of a domain: a domain with non-ASCII characters mapped
/// (UTS #46) and every such label encoded as `xn--...`; an ASCII domain is
/// kept as written. An empty label, an invalid name or a label longer than
/// 63 octets once encoded is a usage error (exit 64).
pub fn domain_to_ascii(domain: &str) -> anyhow::Result<String> {
    crate::endpoint::domain_to_ascii(domain).map_err(|why| {
        crate::mail::invalid(format!(
            "invalid domain '{}': {why}",
            printable(domain.as_bytes())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3492_and_registry_examples() {
        assert_eq!(domain_to_ascii("bücher").unwrap(), "xn--bcher-kva");
        assert_eq!(domain_to_ascii("münchen").unwrap(), "xn--mnchen-3ya");
        // RFC 3492 section 7.1 (B) Chinese (simplified).
        assert_eq!(
            domain_to_ascii("他们为什么不说中文").unwrap(),
            "xn--ihqwcrb4cv8a8dqg056pqjye"
        );
        // (L) 3<nen>B<gumi><kinpachi><sensei>: mixed basic and non-basic,
        // the B folded to lower case.
        assert_eq!(
            domain_to_ascii("3年B組金八先生").unwrap(),
            "xn--3b-ww4c5e180e575a65lsy2b"
        );
        // IANA's test domains.
        assert_eq!(
            domain_to_ascii("例子.测试").unwrap(),
            "xn--fsqu00a.xn--0zwm56d"
        );
        assert_eq!(
            domain_to_ascii("δοκιμή.example").unwrap(),
            "xn--jxalpdlp.example"
        );
    }

    #[test]
    fn ascii_kept_case_folded_dots_mapped() {
        assert_eq!(domain_to_ascii("Example.ORG").unwrap(), "Example.ORG");
        assert_eq!(domain_to_ascii("BÜCHER.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(
            domain_to_ascii("例子。测试").unwrap(),
            "xn--fsqu00a.xn--0zwm56d"
        );
    }

    #[test]
    fn uts_46_mapping() {
        // Full-width letters and dot, as typed with an East Asian input
        // method, are their ASCII selves.
        assert_eq!(
            domain_to_ascii("ＢÜＣＨＥＲ．ｄｅ").unwrap(),
            "xn--bcher-kva.de"
        );
        // Nontransitional processing: ß stays ß (IDNA2008), not "ss".
        assert_eq!(domain_to_ascii("faß.de").unwrap(), "xn--fa-hia.de");
        // Final sigma and Greek capitals.
        assert_eq!(
            domain_to_ascii("ΔΟΚΙΜΉ.example").unwrap(),
            "xn--jxalpdlp.example"
        );
    }

    #[test]
    fn bad_domains_are_usage_errors() {
        for bad in [
            "a..b",
            "bücher.",
            &format!("{}.de", "ü".repeat(70)),
            "bü_cher.de",
            "-bücher.de",
            "bücher\u{0}.de",
        ] {
            let err = domain_to_ascii(bad).unwrap_err();
            assert!(
                matches!(
                    crate::mail::kind_of(&err),
                    Some(crate::mail::Error::Invalid(_))
                ),
                "{bad}"
            );
        }
    }
}
