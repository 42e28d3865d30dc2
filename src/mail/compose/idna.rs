//! Internationalised domain names in their ASCII form (RFC 5890 A-labels,
//! Punycode of RFC 3492), so that `a@bücher.de` can be sent to any server
//! as `a@xn--bcher-kva.de` without needing SMTPUTF8 (RFC 6531).
//!
//! The mapping is deliberately small: labels are split at `.` and the
//! ideographic full stops IDNA treats as dots, lower-cased, and encoded.
//! Unicode normalisation (NFC) is not applied; text typed on a keyboard is
//! already in that form.

use crate::text::printable;

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 128;

/// Bias adaptation (RFC 3492 section 6.1).
fn adapt(delta: u32, points: u32, first: bool) -> u32 {
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (((BASE - T_MIN + 1) * delta) / (delta + SKEW))
}

fn digit(d: u32) -> char {
    match d {
        0..=25 => (b'a' + d as u8) as char,
        _ => (b'0' + (d - 26) as u8) as char,
    }
}

/// Punycode of one label (RFC 3492 section 6.3), without the `xn--`
/// prefix; `None` on arithmetic overflow (absurdly long input).
pub fn punycode(label: &str) -> Option<String> {
    let input: Vec<u32> = label.chars().map(u32::from).collect();
    let mut output: String = label.chars().filter(char::is_ascii).collect();
    let basic = output.len() as u32;
    let mut handled = basic;
    if basic > 0 {
        output.push('-');
    }
    let (mut n, mut delta, mut bias) = (INITIAL_N, 0u32, INITIAL_BIAS);
    while (handled as usize) < input.len() {
        let m = input.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in &input {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    output.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                output.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(output)
}

/// The ASCII form of a domain: every non-ASCII label lower-cased and
/// encoded as `xn--...`; ASCII labels are kept as written. An empty label
/// or one longer than 63 octets once encoded is a usage error (exit 64).
pub fn domain_to_ascii(domain: &str) -> anyhow::Result<String> {
    let bad = |why: &str| {
        crate::mail::invalid(format!(
            "invalid domain '{}': {why}",
            printable(domain.as_bytes())
        ))
    };
    let mut labels = Vec::new();
    for label in domain.split(['.', '\u{3002}', '\u{ff0e}', '\u{ff61}']) {
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        let label = if label.is_ascii() {
            label.to_string()
        } else {
            let lower = label.to_lowercase();
            let encoded = punycode(&lower).ok_or_else(|| bad("label too long"))?;
            format!("xn--{encoded}")
        };
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        labels.push(label);
    }
    let out = labels.join(".");
    if out.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3492_and_registry_examples() {
        assert_eq!(punycode("bücher").unwrap(), "bcher-kva");
        assert_eq!(punycode("münchen").unwrap(), "mnchen-3ya");
        // RFC 3492 section 7.1 (B) Chinese (simplified).
        assert_eq!(
            punycode("他们为什么不说中文").unwrap(),
            "ihqwcrb4cv8a8dqg056pqjye"
        );
        // (L) 3<nen>B<gumi><kinpachi><sensei>: mixed basic and non-basic.
        assert_eq!(
            punycode("3年b組金八先生").unwrap(),
            "3b-ww4c5e180e575a65lsy2b"
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
    fn bad_domains_are_usage_errors() {
        for bad in ["a..b", "bücher.", &format!("{}.de", "ü".repeat(70))] {
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
