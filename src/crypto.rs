//! Digests and random bytes for the code outside the protocol machines
//! (which use the digest crates directly): pure Rust, no TLS library.

use md5::Md5;
use sha2::{Digest, Sha256};

/// The SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    crate::proto::sasl::hex(&sha256(data))
}

/// The lower-case hex MD5 of `data` (for names, never for security).
pub fn md5_hex(data: &[u8]) -> String {
    crate::proto::sasl::hex(&Md5::digest(data))
}

/// Fills `buf` with random bytes from the operating system.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(buf).map_err(|e| std::io::Error::other(e.to_string()))
}

/// A fresh random nonce for SASL (SCRAM's client nonce): 24 printable
/// characters, no comma.
pub fn nonce() -> std::io::Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    random_bytes(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
