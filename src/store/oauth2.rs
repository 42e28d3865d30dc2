//! The OAuth 2 token files of an account, in
//! `$XDG_STATE_HOME/mailctl/oauth2/` (mode 0700): `<account>.refresh`
//! holds the refresh token, `<account>.access.json` the cached access token
//! and when it expires. Both are private (mode 0600) and replaced durably.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::store::Error;

/// The longest token file read: tokens are a few kilobytes at most.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// An access token and the Unix time it expires at.
#[derive(Clone, Debug)]
pub struct CachedToken {
    /// The access token.
    pub token: Secret,
    /// Seconds since the epoch when the provider stops accepting it.
    pub expires_at: u64,
}

/// The access cache as stored.
#[derive(Serialize, Deserialize)]
struct AccessFile {
    access_token: String,
    expires_at: u64,
}

/// The token files of one account.
#[derive(Clone, Debug)]
pub struct TokenFiles {
    dir: PathBuf,
    stem: String,
}

impl TokenFiles {
    /// The files of `account` in the state directory.
    pub fn for_account(account: &str) -> Result<Self, Error> {
        let base = crate::system::state_dir().ok_or(Error::NoStateDir)?;
        Ok(Self::in_dir(base.join("oauth2"), account))
    }

    /// The files of `account` in `dir`.
    pub fn in_dir(dir: PathBuf, account: &str) -> Self {
        TokenFiles {
            dir,
            stem: file_stem(account),
        }
    }

    /// The refresh token file.
    pub fn refresh_path(&self) -> PathBuf {
        self.dir.join(format!("{}.refresh", self.stem))
    }

    /// The access token cache.
    pub fn access_path(&self) -> PathBuf {
        self.dir.join(format!("{}.access.json", self.stem))
    }

    /// The stored refresh token, if any.
    pub fn read_refresh(&self) -> Result<Option<Secret>, Error> {
        let path = self.refresh_path();
        Ok(read_small(&path)?.and_then(|text| {
            let token = text.trim();
            (!token.is_empty()).then(|| Secret::new(token))
        }))
    }

    /// Stores the refresh token, replacing any.
    pub fn write_refresh(&self, token: &Secret) -> Result<(), Error> {
        write_private(
            &self.refresh_path(),
            format!("{}\n", token.expose()).as_bytes(),
        )
    }

    /// The cached access token, if there is a readable one.
    pub fn read_access(&self) -> Result<Option<CachedToken>, Error> {
        let path = self.access_path();
        let Some(text) = read_small(&path)? else {
            return Ok(None);
        };
        let file: AccessFile =
            serde_json::from_str(&text).map_err(|source| Error::Unreadable { path, source })?;
        Ok(Some(CachedToken {
            token: Secret::new(file.access_token),
            expires_at: file.expires_at,
        }))
    }

    /// Caches an access token.
    pub fn write_access(&self, cached: &CachedToken) -> Result<(), Error> {
        let file = AccessFile {
            access_token: cached.token.expose().to_string(),
            expires_at: cached.expires_at,
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| Error::Io {
            path: self.access_path(),
            source: io::Error::other(e),
        })?;
        write_private(&self.access_path(), &bytes)
    }

    /// Takes the lock that lets one run at a time renew the account's
    /// tokens (a provider that rotates refresh tokens accepts each only
    /// once), waiting up to `wait`.
    pub fn lock(&self, wait: std::time::Duration) -> Result<crate::store::lock::StateLock, Error> {
        let path = self.refresh_path();
        crate::store::uidl::prepare_dir(&path)?;
        crate::store::lock::lock_state(&path, wait)
    }

    /// Forgets the cached access token (after the server refused it).
    pub fn forget_access(&self) -> Result<(), Error> {
        match fs::remove_file(self.access_path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io {
                path: self.access_path(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// A file name for the account: its letters, digits, `.`, `-` and `_`
/// kept, every other byte as `%XX`, so distinct accounts never share files
/// and none can name a path outside the folder.
fn file_stem(account: &str) -> String {
    let mut stem = String::new();
    for byte in account.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => stem.push(byte as char),
            b'.' if !stem.is_empty() => stem.push('.'),
            _ => stem.push_str(&format!("%{byte:02X}")),
        }
    }
    stem
}

/// The text of a small file; `None` if it does not exist.
fn read_small(path: &Path) -> Result<Option<String>, Error> {
    use std::io::Read;
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE)
        .read_to_string(&mut text)
        .map_err(io_error)?;
    Ok(Some(text))
}

/// Replaces `path` durably with a private (0600) file, creating its
/// private (0700) folder if needed.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::store::uidl::write_replace(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tokens_are_kept_in_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = TokenFiles::in_dir(dir.path().join("oauth2"), "work");
        assert!(files.read_refresh().unwrap().is_none());
        assert!(files.read_access().unwrap().is_none());
        files.write_refresh(&Secret::new("r1")).unwrap();
        files.write_refresh(&Secret::new("r2")).unwrap();
        assert_eq!(files.read_refresh().unwrap().unwrap().expose(), "r2");
        let cached = CachedToken {
            token: Secret::new("a1"),
            expires_at: 42,
        };
        files.write_access(&cached).unwrap();
        let read = files.read_access().unwrap().unwrap();
        assert_eq!((read.token.expose(), read.expires_at), ("a1", 42));
        for path in [files.refresh_path(), files.access_path()] {
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        let mode = fs::metadata(dir.path().join("oauth2"))
            .unwrap()
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o700);
        files.forget_access().unwrap();
        files.forget_access().unwrap();
        assert!(files.read_access().unwrap().is_none());
    }

    #[test]
    fn account_names_stay_inside_the_folder() {
        assert_eq!(file_stem("work"), "work");
        assert_eq!(file_stem("../x"), "%2E.%2Fx");
        assert_eq!(file_stem("a.b c"), "a.b%20c");
        assert_ne!(file_stem("a/b"), file_stem("a_b"));
    }
}
