//! What mailctl asks of the system it runs on: its host name, the time of
//! day as mail writes it, and where its files live.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use etcetera::base_strategy::{BaseStrategy, Xdg};

/// This machine's host name (`uname(2)`'s node name), keeping only
/// letters, digits, `.` and `-`; `localhost` when nothing is left. Safe to
/// put in a greeting, a trace header or a file name.
pub fn hostname() -> String {
    let name: String = nodename()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// The name to give in SMTP `EHLO`/`HELO` (RFC 5321 section 4.1.1.1 wants
/// a fully qualified domain): the host name when it looks like one (only
/// letters, digits, `.` and `-`, with a dot inside), else `localhost`.
pub fn helo_name() -> String {
    helo_name_from(nodename())
}

/// The host name as the kernel has it.
fn nodename() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn helo_name_from(name: String) -> String {
    let valid = name.contains('.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    if valid {
        name
    } else {
        "localhost".to_string()
    }
}

/// The calendar fields of an instant, in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    /// `Mon` to `Sun`.
    pub weekday: &'static str,
    /// 1 to 31.
    pub day: u32,
    /// `Jan` to `Dec`.
    pub month: &'static str,
    /// The year.
    pub year: i64,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59.
    pub second: u32,
}

/// The UTC calendar fields of `secs` seconds after the Unix epoch.
pub fn utc(secs: u64) -> UtcTime {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = (secs % 86_400) as u32;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    UtcTime {
        weekday: DAYS[days.rem_euclid(7) as usize],
        day,
        month: MONTHS[(month - 1) as usize],
        year: yoe + era * 400 + i64::from(month <= 2),
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
    }
}

/// Seconds since the Unix epoch now (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An RFC 5322 date-time in UTC, `Thu, 1 Jan 1970 00:00:00 +0000`, for
/// `secs` seconds after the Unix epoch.
pub fn rfc5322_date(secs: u64) -> String {
    let t = utc(secs);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        t.weekday, t.day, t.month, t.year, t.hour, t.minute, t.second
    )
}

/// The current time as an RFC 5322 date-time, for `Date:` and `Received:`.
pub fn rfc5322_now() -> String {
    rfc5322_date(unix_now())
}

/// The XDG base directories, honoured on every platform; `None` without a
/// home directory.
fn xdg() -> Option<Xdg> {
    Xdg::new().ok()
}

/// mailctl's configuration folder: `$XDG_CONFIG_HOME/mailctl` (an absolute
/// path only), else `~/.config/mailctl`.
pub fn config_dir() -> Option<PathBuf> {
    Some(xdg()?.config_dir().join("mailctl"))
}

/// mailctl's state folder: `$XDG_STATE_HOME/mailctl` (an absolute path
/// only), else `~/.local/state/mailctl`.
pub fn state_dir() -> Option<PathBuf> {
    Some(xdg()?.state_dir()?.join("mailctl"))
}

/// The user's home directory.
pub fn home_dir() -> Option<PathBuf> {
    etcetera::home_dir().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_safe() {
        let name = hostname();
        assert!(!name.is_empty());
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')));
        assert!(!helo_name().is_empty());
        assert_eq!(helo_name_from("mx.example.org".into()), "mx.example.org");
        for bare in ["box", ".box", "box.", "my_box.example.org", ""] {
            assert_eq!(helo_name_from(bare.into()), "localhost", "{bare}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_638_542),
            "Wed, 25 Nov 2026 20:29:02 +0000"
        );
        assert_eq!(
            rfc5322_date(4_133_980_799),
            "Fri, 31 Dec 2100 23:59:59 +0000"
        );
        // The same text as the date mail-builder writes by itself.
        for secs in [0, 951_782_400, 1_795_638_542, 4_133_980_799] {
            let theirs = mail_builder::headers::date::Date::new(secs as i64).to_rfc822();
            assert_eq!(rfc5322_date(secs), theirs);
        }
        assert!(mail_parser::DateTime::parse_rfc822(&rfc5322_now()).is_some());
    }

    #[test]
    fn folders_are_under_the_home_or_the_absolute_variables() {
        // Only the defaults can be checked without changing the
        // environment of the other tests.
        let Some(home) = home_dir() else { return };
        let config = config_dir().unwrap();
        let state = state_dir().unwrap();
        assert!(config.ends_with("mailctl") && state.ends_with("mailctl"));
        match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => assert_eq!(config, dir.join("mailctl")),
            _ => assert_eq!(config, home.join(".config/mailctl")),
        }
        match std::env::var_os("XDG_STATE_HOME").map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => assert_eq!(state, dir.join("mailctl")),
            _ => assert_eq!(state, home.join(".local/state/mailctl")),
        }
    }
}
