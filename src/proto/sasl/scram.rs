//! The client side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677),
//! and of their -PLUS variants with the channel binding
//! `tls-server-end-point` (RFC 5929): the password never crosses the wire,
//! the server must prove it knows it too, and with -PLUS the proof covers
//! the server's TLS certificate.
//!
//! [`Scram::new`] makes the client-first message from a nonce the caller
//! draws ([`Scram::with_binding`] sets the channel binding, whose bytes the
//! caller takes from the TLS session); [`Scram::client_final`] answers the
//! server-first message;
//! [`Scram::verify_server_final`] checks the server's signature. Every
//! message is base64, as SMTP and POP3 carry it.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// The most PBKDF2 iterations a server may ask for: enough for any sane
/// setting (RFC 7677 asks for at least 4096), while a hostile server
/// cannot make the client spin for minutes.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// The hash a SCRAM mechanism is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SCRAM-SHA-1.
    Sha1,
    /// SCRAM-SHA-256.
    Sha256,
}

/// Why a SCRAM exchange failed on the client's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The user name or password cannot be prepared (SASLprep, RFC 4013).
    Prepare(&'static str),
    /// The server-first message is malformed; the text says how.
    ServerFirst(&'static str),
    /// The server asked for more PBKDF2 iterations than [`MAX_ITERATIONS`].
    TooManyIterations(u32),
    /// The server reported an error (`e=...`).
    Server(String),
    /// The server-final message is malformed or its signature is wrong:
    /// the server did not prove it knows the password.
    NotProven,
    /// A -PLUS mechanism was asked for, but the session has no TLS
    /// channel binding to offer.
    NoChannelBinding,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Prepare(what) => write!(f, "the {what} is not valid for SCRAM (SASLprep)"),
            Error::ServerFirst(why) => {
                write!(f, "the server's SCRAM challenge is malformed: {why}")
            }
            Error::TooManyIterations(n) => write!(
                f,
                "the server asks for {n} SCRAM iterations (at most {MAX_ITERATIONS} are computed)"
            ),
            Error::Server(e) => write!(f, "the server reported SCRAM error {e:?}"),
            Error::NoChannelBinding => write!(
                f,
                "SCRAM -PLUS needs a TLS session whose server certificate can be bound"
            ),
            Error::NotProven => write!(
                f,
                "the server's SCRAM signature is wrong: it did not prove it knows the password"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The channel binding of an exchange (RFC 5802 section 6, the GS2
/// header's flag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// `n`: the client cannot bind (no TLS).
    Unsupported,
    /// `y`: the client could bind but the server offered no -PLUS
    /// mechanism; a server that does offer one then sees the downgrade.
    NotOffered,
    /// `p=tls-server-end-point`: the hash of the server's certificate
    /// (RFC 5929 section 4), for a -PLUS mechanism.
    ServerEndPoint(Vec<u8>),
}

impl Binding {
    /// The binding of an exchange: the TLS session's `data` for a -PLUS
    /// mechanism (`plus`), `y` for plain SCRAM when the session could bind
    /// but the server offered no -PLUS (RFC 5802 section 6), else none.
    pub fn choose(plus: bool, data: Option<&[u8]>, plus_offered: bool) -> Result<Binding, Error> {
        match data {
            Some(data) if plus => Ok(Binding::ServerEndPoint(data.to_vec())),
            _ if plus => Err(Error::NoChannelBinding),
            Some(_) if !plus_offered => Ok(Binding::NotOffered),
            _ => Ok(Binding::Unsupported),
        }
    }

    /// The GS2 header: the flag, and no authorisation identity.
    fn gs2_header(&self) -> &'static str {
        match self {
            Binding::Unsupported => "n,,",
            Binding::NotOffered => "y,,",
            Binding::ServerEndPoint(_) => "p=tls-server-end-point,,",
        }
    }

    /// The `c=` attribute's bytes: the GS2 header, then the binding data.
    fn channel_binding(&self) -> Vec<u8> {
        let mut bytes = self.gs2_header().as_bytes().to_vec();
        if let Binding::ServerEndPoint(data) = self {
            bytes.extend_from_slice(data);
        }
        bytes
    }
}

/// One SCRAM exchange, from the client's side.
pub struct Scram {
    hash: Hash,
    binding: Binding,
    password: Secret,
    /// `n=user,r=nonce`, kept for the signature.
    first_bare: String,
    client_nonce: String,
    /// The signature the server must send back, once computed.
    server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for Scram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scram")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Scram {
    /// Starts an exchange for `user` with a fresh printable `nonce` (at
    /// least 16 random characters, no comma).
    pub fn new(hash: Hash, user: &str, password: &Secret, nonce: &str) -> Result<Scram, Error> {
        let user = stringprep::saslprep(user).map_err(|_| Error::Prepare("user name"))?;
        let password = stringprep::saslprep(password.expose())
            .map_err(|_| Error::Prepare("password"))?
            .into_owned();
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Ok(Scram {
            hash,
            binding: Binding::Unsupported,
            password: Secret::new(password),
            first_bare: format!("n={user},r={nonce}"),
            client_nonce: nonce.to_string(),
            server_signature: None,
        })
    }

    /// The exchange with `binding` instead of none (`n,,`).
    pub fn with_binding(mut self, binding: Binding) -> Scram {
        self.binding = binding;
        self
    }

    /// The base64 client-first message (the AUTH command's initial
    /// response).
    pub fn client_first(&self) -> String {
        BASE64.encode(format!("{}{}", self.binding.gs2_header(), self.first_bare))
    }

    /// The base64 client-final message answering the base64 server-first
    /// message `challenge`.
    pub fn client_final(&mut self, challenge: &[u8]) -> Result<Secret, Error> {
        let server_first = decode(challenge).ok_or(Error::ServerFirst("not base64 text"))?;
        let first = ServerFirst::parse(&server_first)?;
        if !first.nonce.starts_with(&self.client_nonce) || first.nonce == self.client_nonce {
            return Err(Error::ServerFirst("the nonce does not extend ours"));
        }
        let salted = self.salted_password(&first.salt, first.iterations);
        let binding = BASE64.encode(self.binding.channel_binding());
        let without_proof = format!("c={binding},r={}", first.nonce);
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let client_key = self.mac(&salted, b"Client Key");
        let stored_key = self.digest(&client_key);
        let signature = self.mac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.mac(&salted, b"Server Key");
        self.server_signature = Some(self.mac(&server_key, auth_message.as_bytes()));
        let message = format!("{without_proof},p={}", BASE64.encode(proof));
        Ok(Secret::new(BASE64.encode(message)))
    }

    /// Checks the base64 server-final message: `Ok` only when it carries
    /// the signature that proves the server knows the password.
    pub fn verify_server_final(&self, challenge: &[u8]) -> Result<(), Error> {
        let text = decode(challenge).ok_or(Error::NotProven)?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(Error::Server(crate::text::printable(error.as_bytes())));
        }
        let expected = self.server_signature.as_ref().ok_or(Error::NotProven)?;
        let verifier = text
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or(Error::NotProven)?;
        if !constant_time_eq(&verifier, expected) {
            return Err(Error::NotProven);
        }
        Ok(())
    }

    /// Whether the server's signature is still to be checked.
    pub fn awaiting_server_final(&self) -> bool {
        self.server_signature.is_some()
    }

    fn salted_password(&self, salt: &[u8], iterations: u32) -> Vec<u8> {
        let password = self.password.expose().as_bytes();
        match self.hash {
            Hash::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    fn mac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self.hash {
            Hash::Sha1 => mac_with::<Hmac<Sha1>>(key, data),
            Hash::Sha256 => mac_with::<Hmac<Sha256>>(key, data),
        }
    }

    fn digest(&self, data: &[u8]) -> Vec<u8> {
        match self.hash {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }
}

/// HMAC of `data` under `key` (HMAC takes keys of any length).
fn mac_with<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Base64 text as UTF-8, surrounding white space ignored.
fn decode(challenge: &[u8]) -> Option<String> {
    let bytes = BASE64.decode(challenge.trim_ascii()).ok()?;
    String::from_utf8(bytes).ok()
}

/// The parts of a server-first message.
struct ServerFirst {
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

impl ServerFirst {
    fn parse(text: &str) -> Result<ServerFirst, Error> {
        if text.starts_with("m=") {
            return Err(Error::ServerFirst("it demands an extension we do not know"));
        }
        let mut attributes = text.split(',');
        let mut next = |key: &str| {
            attributes
                .next()
                .and_then(|a| a.strip_prefix(key))
                .filter(|v| !v.is_empty())
        };
        let nonce = next("r=").ok_or(Error::ServerFirst("no nonce"))?;
        let salt = next("s=")
            .and_then(|s| BASE64.decode(s).ok())
            .ok_or(Error::ServerFirst("no salt"))?;
        let iterations: u32 = next("i=")
            .and_then(|i| i.parse().ok())
            .filter(|&i| i > 0)
            .ok_or(Error::ServerFirst("no iteration count"))?;
        if iterations > MAX_ITERATIONS {
            return Err(Error::TooManyIterations(iterations));
        }
        if !nonce.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::ServerFirst("the nonce is not printable"));
        }
        Ok(ServerFirst {
            nonce: nonce.to_string(),
            salt,
            iterations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        BASE64.encode(s).into_bytes()
    }

    fn unb64(s: &str) -> String {
        String::from_utf8(BASE64.decode(s).unwrap()).unwrap()
    }

    /// The exchanges of RFC 5802 section 5 and RFC 7677 section 3.
    #[test]
    fn rfc_examples() {
        let cases = [
            (
                Hash::Sha1,
                "fyko+d2lbbFgONRv9qkxdawL",
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            ),
            (
                Hash::Sha256,
                "rOprNGfwEbeRWgbNEkqO",
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                 p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            ),
        ];
        for (hash, nonce, server_first, client_final, server_final) in cases {
            let mut scram = Scram::new(hash, "user", &Secret::new("pencil"), nonce).unwrap();
            assert_eq!(unb64(&scram.client_first()), format!("n,,n=user,r={nonce}"));
            let answer = scram.client_final(&b64(server_first)).unwrap();
            assert_eq!(unb64(answer.expose()), client_final);
            assert!(scram.awaiting_server_final());
            scram.verify_server_final(&b64(server_final)).unwrap();
        }
    }

    /// The exchanges of [`rfc_examples`] with channel binding: the
    /// `tls-server-end-point` data 0x00..0x1f (-PLUS), and `y,,` (binding
    /// supported, not offered). The expected proofs and signatures were
    /// computed independently of this code.
    #[test]
    fn channel_binding_enters_the_proof() {
        let cb_data: Vec<u8> = (0u8..32).collect();
        let plus = Binding::ServerEndPoint(cb_data);
        let cases = [
            (
                Hash::Sha256,
                plus.clone(),
                "p=tls-server-end-point,,",
                "rOprNGfwEbeRWgbNEkqO",
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,\
                 r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                 p=nY1Wus9a+gM2DrbQ1msXFgyhW6KM5ktOxWiU+/P/EGY=",
                "v=RwppMGddhz/J0lFYaRReBjXcQeNUFP5Qc76Lo5Exrig=",
            ),
            (
                Hash::Sha1,
                plus,
                "p=tls-server-end-point,,",
                "fyko+d2lbbFgONRv9qkxdawL",
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,\
                 r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=z8dLQJmun2sA+XpCkRPSWO61Enc=",
                "v=if1R+hByy96r9wlpTEFxowaJvkg=",
            ),
            (
                Hash::Sha256,
                Binding::NotOffered,
                "y,,",
                "rOprNGfwEbeRWgbNEkqO",
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                 p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY=",
                "v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U=",
            ),
        ];
        for (hash, binding, gs2, nonce, server_first, client_final, server_final) in cases {
            let mut scram = Scram::new(hash, "user", &Secret::new("pencil"), nonce)
                .unwrap()
                .with_binding(binding);
            assert_eq!(
                unb64(&scram.client_first()),
                format!("{gs2}n=user,r={nonce}")
            );
            let answer = scram.client_final(&b64(server_first)).unwrap();
            assert_eq!(unb64(answer.expose()), client_final);
            scram.verify_server_final(&b64(server_final)).unwrap();
        }
    }

    #[test]
    fn a_server_that_cannot_prove_the_password_is_refused() {
        let server_first = "r=abcdefghijklmnopXYZ,s=QSXCR+Q6sek8bf92,i=4096";
        let mut scram = Scram::new(
            Hash::Sha256,
            "user",
            &Secret::new("pencil"),
            "abcdefghijklmnop",
        )
        .unwrap();
        // Before the client-final message there is nothing to prove.
        assert_eq!(
            scram.verify_server_final(&b64("v=AAAA")),
            Err(Error::NotProven)
        );
        scram.client_final(&b64(server_first)).unwrap();
        for bad in [
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            "v=",
            "v=not base64!",
            "",
            "x=1",
        ] {
            assert_eq!(
                scram.verify_server_final(&b64(bad)),
                Err(Error::NotProven),
                "{bad:?}"
            );
        }
        assert_eq!(scram.verify_server_final(b"%%%"), Err(Error::NotProven));
        assert_eq!(
            scram.verify_server_final(&b64("e=invalid-proof")),
            Err(Error::Server("invalid-proof".into()))
        );
    }

    #[test]
    fn malformed_server_first_messages() {
        let cases: &[(&str, Error)] = &[
            (
                "r=abcdefghijklmnopX,s=QSXC,i=0",
                Error::ServerFirst("no iteration count"),
            ),
            (
                "r=abcdefghijklmnopX,s=QSXC",
                Error::ServerFirst("no iteration count"),
            ),
            ("r=abcdefghijklmnopX,i=4096", Error::ServerFirst("no salt")),
            ("s=QSXC,i=4096", Error::ServerFirst("no nonce")),
            (
                "r=zzz,s=QSXC,i=4096",
                Error::ServerFirst("the nonce does not extend ours"),
            ),
            (
                "r=abcdefghijklmnop,s=QSXC,i=4096",
                Error::ServerFirst("the nonce does not extend ours"),
            ),
            (
                "m=ext,r=abcdefghijklmnopX,s=QSXC,i=1",
                Error::ServerFirst("it demands an extension we do not know"),
            ),
            (
                "r=abcdefghijklmnopX,s=QSXC,i=4294967295",
                Error::TooManyIterations(u32::MAX),
            ),
        ];
        for (server_first, expected) in cases {
            let mut scram =
                Scram::new(Hash::Sha1, "u", &Secret::new("p"), "abcdefghijklmnop").unwrap();
            assert_eq!(
                scram.client_final(&b64(server_first)).unwrap_err(),
                *expected,
                "{server_first}"
            );
            assert!(!scram.awaiting_server_final());
        }
    }

    #[test]
    fn user_names_are_escaped_and_prepared() {
        let scram = Scram::new(Hash::Sha256, "a=b,c\u{00A0}d", &Secret::new("x"), "n0nce").unwrap();
        assert_eq!(unb64(&scram.client_first()), "n,,n=a=3Db=2Cc d,r=n0nce");
        assert_eq!(
            Scram::new(Hash::Sha256, "u", &Secret::new("a\u{0007}"), "n").unwrap_err(),
            Error::Prepare("password")
        );
    }
}
