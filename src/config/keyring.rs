//! Passwords in the system keyring (the Secret Service on Linux: GNOME
//! Keyring, KeePassXC, KWallet), under the service name `mailctl` and an
//! entry name the configuration gives with `password_keyring`.
//!
//! Built with the cargo feature `keyring`; without it every call says so.

use super::error::Error;
use crate::secret::Secret;

/// The service name every mailctl entry is stored under.
pub const SERVICE: &str = "mailctl";

/// The password stored under `entry`.
pub fn lookup(entry: &str) -> Result<Secret, Error> {
    backend::lookup(entry)
}

/// Stores `secret` under `entry`, replacing what was there.
pub fn store(entry: &str, secret: &Secret) -> Result<(), Error> {
    backend::store(entry, secret)
}

/// Removes the entry; `Ok(false)` when there was none.
pub fn delete(entry: &str) -> Result<bool, Error> {
    backend::delete(entry)
}

#[cfg(feature = "keyring")]
mod backend {
    use keyring::Entry;

    use super::{Error, Secret, SERVICE};

    /// A keyring failure, in a few words.
    fn failed(entry: &str, e: keyring::Error) -> Error {
        let why = match e {
            keyring::Error::NoEntry => format!(
                "no password stored in the keyring under `{entry}`: \
                 store one with `mailctl password set --account NAME`"
            ),
            keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
                format!("the system keyring cannot be reached ({e}); is a Secret Service running and unlocked?")
            }
            other => format!("keyring entry `{entry}`: {other}"),
        };
        Error::Keyring(why)
    }

    fn entry(name: &str) -> Result<Entry, Error> {
        Entry::new(SERVICE, name).map_err(|e| failed(name, e))
    }

    pub fn lookup(name: &str) -> Result<Secret, Error> {
        let password = entry(name)?.get_password().map_err(|e| failed(name, e))?;
        if password.is_empty() {
            return Err(Error::Keyring(format!(
                "the keyring entry `{name}` holds an empty password"
            )));
        }
        Ok(Secret::new(password))
    }

    pub fn store(name: &str, secret: &Secret) -> Result<(), Error> {
        entry(name)?
            .set_password(secret.expose())
            .map_err(|e| failed(name, e))
    }

    pub fn delete(name: &str) -> Result<bool, Error> {
        match entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(failed(name, e)),
        }
    }
}

#[cfg(not(feature = "keyring"))]
mod backend {
    use super::{Error, Secret};

    fn unavailable() -> Error {
        Error::Keyring(
            "this mailctl was built without keyring support \
             (rebuild with `cargo build --features keyring`)"
                .to_string(),
        )
    }

    pub fn lookup(_: &str) -> Result<Secret, Error> {
        Err(unavailable())
    }

    pub fn store(_: &str, _: &Secret) -> Result<(), Error> {
        Err(unavailable())
    }

    pub fn delete(_: &str) -> Result<bool, Error> {
        Err(unavailable())
    }
}
