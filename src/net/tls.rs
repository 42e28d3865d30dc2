//! Every TLS setting, client and server, and the only OpenSSL code of the
//! program: client contexts (TLS 1.2 or later, certificate and host name
//! verification on unless `--insecure`, a client certificate when given),
//! server identities, self-signed certificates, and failed handshakes
//! described in a few words.
//!
//! Trust: `--ca-file` (or the `ca_file` key) replaces the system roots, as
//! curl's `--cacert` does: only that file is read. Without it the system
//! roots are used through OpenSSL's hashed certificate directory, which
//! reads a root only when a chain needs it, instead of parsing the whole
//! bundle on every run; where no hashed directory exists (or
//! `SSL_CERT_FILE` names a bundle) OpenSSL's default file and directory
//! are used.

use std::fs;
use std::net::{IpAddr, TcpStream};
use std::path::Path;
use std::sync::OnceLock;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    HandshakeError, Ssl, SslAcceptor, SslContext, SslContextBuilder, SslFiletype, SslMethod,
    SslMode, SslOptions, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::store::X509Lookup;
use openssl::x509::verify::X509CheckFlags;
use openssl::x509::{X509NameBuilder, X509VerifyResult, X509};

use super::Error;

/// A TLS-protected TCP stream, client or server side.
pub type TlsStream = SslStream<TcpStream>;

pub use crate::endpoint::{TlsMode, TlsOptions};

/// Ciphers offered by the client: OpenSSL's defaults without the weak and
/// unauthenticated ones.
const CLIENT_CIPHERS: &str =
    "DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK";

impl TlsOptions {
    /// The client side of a handshake, as these options say.
    pub fn connector(&self) -> Result<Connector, Error> {
        let setup = |e: ErrorStack| Error::ClientSetup {
            reason: e.to_string(),
        };
        let verify = !self.insecure;
        if verify && self.ca_file.is_none() && self.client_cert.is_none() {
            let ctx = system_context()?;
            return Ok(Connector { ctx, verify });
        }
        let mut ctx = client_context().map_err(setup)?;
        match &self.ca_file {
            _ if !verify => ctx.set_verify(SslVerifyMode::NONE),
            Some(path) => trust_only(&mut ctx, path)?,
            None => add_system_roots(&mut ctx).map_err(setup)?,
        }
        if let Some(client) = &self.client_cert {
            Identity::from_files(&client.cert, &client.key)?.install(&mut ctx)?;
        }
        Ok(Connector {
            ctx: ctx.build(),
            verify,
        })
    }
}

/// A certificate that does not go with its key, or a chain that cannot be
/// used.
fn identity_error(e: ErrorStack) -> Error {
    Error::Identity {
        reason: e.to_string(),
    }
}

/// A private key, its certificate and the chain after it, read from PEM.
struct Identity {
    key: PKey<Private>,
    leaf: X509,
    chain: Vec<X509>,
}

impl Identity {
    /// Reads the PEM certificate (chain) and private key; `key_path` names
    /// the key in errors.
    fn from_pem(cert_pem: &[u8], key_pem: &[u8], key_path: &Path) -> Result<Identity, Error> {
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| Error::Key {
            path: key_path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut chain = X509::stack_from_pem(cert_pem).map_err(identity_error)?;
        if chain.is_empty() {
            return Err(Error::Identity {
                reason: "no PEM certificate".to_string(),
            });
        }
        let leaf = chain.remove(0);
        Ok(Identity { key, leaf, chain })
    }

    /// Reads the certificate and key files.
    fn from_files(cert: &Path, key: &Path) -> Result<Identity, Error> {
        let read = |path: &Path| {
            fs::read(path).map_err(|source| Error::File {
                path: path.to_path_buf(),
                source,
            })
        };
        Identity::from_pem(&read(cert)?, &read(key)?, key)
    }

    /// Makes `ctx` present this identity, once it is checked that the
    /// certificate goes with the key.
    fn install(self, ctx: &mut SslContextBuilder) -> Result<(), Error> {
        ctx.set_private_key(&self.key).map_err(identity_error)?;
        ctx.set_certificate(&self.leaf).map_err(identity_error)?;
        for cert in self.chain {
            ctx.add_extra_chain_cert(cert).map_err(identity_error)?;
        }
        ctx.check_private_key().map_err(identity_error)
    }
}

/// A client TLS context: TLS 1.2 or later, the peer verified.
fn client_context() -> Result<SslContextBuilder, ErrorStack> {
    let mut ctx = SslContextBuilder::new(SslMethod::tls_client())?;
    ctx.set_options(SslOptions::ALL | SslOptions::NO_COMPRESSION);
    ctx.set_mode(
        SslMode::AUTO_RETRY
            | SslMode::ACCEPT_MOVING_WRITE_BUFFER
            | SslMode::ENABLE_PARTIAL_WRITE
            | SslMode::RELEASE_BUFFERS,
    );
    ctx.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    ctx.set_cipher_list(CLIENT_CIPHERS)?;
    ctx.set_verify(SslVerifyMode::PEER);
    Ok(ctx)
}

/// Trusts exactly the certificates of the PEM file at `path`.
fn trust_only(ctx: &mut SslContextBuilder, path: &Path) -> Result<(), Error> {
    let pem = fs::read(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| Error::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs = X509::stack_from_pem(&pem).map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate".to_string()));
    }
    let store = ctx.cert_store_mut();
    for cert in certs {
        store.add_cert(cert).map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

/// The client context that trusts the system roots, made once per process.
fn system_context() -> Result<SslContext, Error> {
    static SYSTEM: OnceLock<SslContext> = OnceLock::new();
    if let Some(ctx) = SYSTEM.get() {
        return Ok(ctx.clone());
    }
    let setup = |e: ErrorStack| Error::ClientSetup {
        reason: e.to_string(),
    };
    let mut ctx = client_context().map_err(setup)?;
    add_system_roots(&mut ctx).map_err(setup)?;
    Ok(SYSTEM.get_or_init(|| ctx.build()).clone())
}

/// Trusts the system roots, read lazily from OpenSSL's hashed directory
/// where there is one.
fn add_system_roots(ctx: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    match hashed_cert_dir() {
        Some(dir) => ctx
            .cert_store_mut()
            .add_lookup(X509Lookup::hash_dir())
            .and_then(|lookup| lookup.add_dir(&dir, SslFiletype::PEM)),
        None => ctx.set_default_verify_paths(),
    }
}

/// The system's hashed certificate directory (`SSL_CERT_DIR`, else
/// `OPENSSLDIR/certs`) if it holds hashed names (`5ad8a5d6.0`); `None` when
/// `SSL_CERT_FILE` asks for a bundle or there is no such directory.
fn hashed_cert_dir() -> Option<String> {
    if std::env::var_os("SSL_CERT_FILE").is_some_and(|f| !f.is_empty()) {
        return None;
    }
    let dir = match std::env::var("SSL_CERT_DIR") {
        Ok(dir) if !dir.is_empty() => dir,
        _ => {
            // "OPENSSLDIR: \"/usr/lib/ssl\""
            let openssl_dir = openssl::version::dir()
                .split('"')
                .nth(1)
                .filter(|d| !d.is_empty())?;
            format!("{openssl_dir}/certs")
        }
    };
    let first = dir.split(':').next()?;
    let hashed = fs::read_dir(first).ok()?.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        matches!(name.split_once('.'), Some((hash, n))
            if hash.len() == 8
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit()))
    });
    hashed.then_some(dir)
}

/// The client side of TLS handshakes, made by [`TlsOptions::connector`].
#[derive(Clone)]
pub struct Connector {
    ctx: SslContext,
    verify: bool,
}

impl Connector {
    /// Runs a client handshake over `tcp` with the server `host` (a name or
    /// IP address): the name is sent as SNI and the certificate must be
    /// valid for it (unless `--insecure`).
    pub fn connect(&self, host: &str, tcp: TcpStream) -> Result<TlsStream, Error> {
        let setup = |e: ErrorStack| Error::ClientSetup {
            reason: e.to_string(),
        };
        let mut ssl = Ssl::new(&self.ctx).map_err(setup)?;
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none() {
            ssl.set_hostname(host).map_err(setup)?;
        }
        if self.verify {
            let param = ssl.param_mut();
            param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
            match ip {
                Some(ip) => param.set_ip(ip),
                None => param.set_host(host),
            }
            .map_err(setup)?;
        }
        ssl.connect(tcp).map_err(|e| handshake_error(host, e))
    }
}

/// The `tls-server-end-point` channel binding of a client session (RFC
/// 5929 section 4.1): the hash of the server's certificate with its
/// signature's hash, SHA-256 when that is MD5 or SHA-1. `None` without a
/// peer certificate or with a signature of no single hash (such as
/// Ed25519), where the binding is undefined.
pub fn server_end_point(stream: &TlsStream) -> Option<Vec<u8>> {
    let cert = stream.ssl().peer_certificate()?;
    end_point_hash(&cert)
}

/// The RFC 5929 hash of `cert`.
fn end_point_hash(cert: &X509) -> Option<Vec<u8>> {
    let signature = cert.signature_algorithm().object().nid();
    let digest = signature.signature_algorithms()?.digest;
    let digest = match digest {
        Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
        other => MessageDigest::from_nid(other)?,
    };
    cert.digest(digest).ok().map(|d| d.to_vec())
}

/// A failed client handshake as an [`Error`]: a silent server is a
/// time-out, a dropped connection is temporary, anything else (certificate,
/// protocol) is a TLS failure, described in a few words with a hint.
fn handshake_error(host: &str, err: HandshakeError<TcpStream>) -> Error {
    let (text, temporary) = match err {
        HandshakeError::WouldBlock(_) => {
            return Error::HandshakeTimedOut {
                host: host.to_string(),
            }
        }
        HandshakeError::SetupFailure(stack) => (stack.to_string(), false),
        HandshakeError::Failure(mid) => {
            let err = mid.error();
            let dropped = err.io_error().is_some_and(|e| {
                use std::io::ErrorKind::*;
                matches!(
                    e.kind(),
                    ConnectionReset
                        | ConnectionAborted
                        | BrokenPipe
                        | UnexpectedEof
                        | NotConnected
                        | TimedOut
                )
            });
            let mut text = err.to_string();
            let verified = mid.ssl().verify_result();
            if verified != X509VerifyResult::OK {
                text = format!("{text} ({verified})");
            }
            // OpenSSL 3 reports a peer that closed mid-handshake as an SSL
            // error whose text says so, without an io::Error.
            let temporary = dropped || text.contains("unexpected EOF");
            (text, temporary)
        }
    };
    let (reason, hint) = describe_handshake_failure(&text);
    Error::Handshake {
        host: host.to_string(),
        reason,
        hint,
        temporary,
    }
}

/// A failed handshake in a few words, with what to do about it where the
/// cause is a common one: OpenSSL's `error:CODE:LIB:FUNC:REASON:FILE:LINE:`
/// is cut down to its reason (and the verification result).
fn describe_handshake_failure(text: &str) -> (String, Option<&'static str>) {
    let fields: Vec<&str> = text.split(':').collect();
    let short = match fields.as_slice() {
        ["error", _code, _lib, _func, reason, _file, _line, rest @ ..] => {
            format!("{reason}{}", rest.join(":").trim_end())
        }
        _ => text.to_string(),
    };
    let hint = if text.contains("wrong version number") || text.contains("packet length too long") {
        Some("the server answered in plain text, not TLS: on this port it may expect STARTTLS (--tls starttls)")
    } else if text.contains("hostname mismatch") {
        Some("the certificate was issued for another name: connect by a name it lists")
    } else if text.contains("certificate verify failed") {
        Some("the server's certificate is not trusted here: give the CA that signed it with --ca-file FILE")
    } else {
        None
    };
    (short, hint)
}

/// The server side of TLS handshakes (STARTTLS / STLS in `serve`, and test
/// servers): TLS 1.2 or later, Mozilla's intermediate settings.
#[derive(Clone)]
pub struct Acceptor(SslAcceptor);

impl Acceptor {
    /// An acceptor for a PEM certificate (chain) and PEM private key.
    /// `key_path` names the key in errors.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], key_path: &Path) -> Result<Self, Error> {
        Self::from_identity(Identity::from_pem(cert_pem, key_pem, key_path)?)
    }

    /// An acceptor presenting `identity`.
    fn from_identity(identity: Identity) -> Result<Self, Error> {
        let setup = |e: ErrorStack| Error::ServerSetup {
            reason: e.to_string(),
        };
        let mut builder =
            SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(setup)?;
        identity.install(&mut builder)?;
        builder
            .set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(setup)?;
        Ok(Acceptor(builder.build()))
    }

    /// An acceptor for the certificate and key in the files `cert` and `key`.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, Error> {
        Self::from_identity(Identity::from_files(cert, key)?)
    }

    /// Runs a server handshake over `tcp`.
    pub fn accept(&self, tcp: TcpStream) -> Result<TlsStream, Error> {
        self.0.accept(tcp).map_err(|e| Error::Accept {
            reason: match e {
                HandshakeError::SetupFailure(e) => e.to_string(),
                HandshakeError::Failure(mid) | HandshakeError::WouldBlock(mid) => {
                    mid.error().to_string()
                }
            },
        })
    }
}

/// A certificate and its private key, both PEM.
pub struct SelfSigned {
    /// The certificate (PEM); a client that trusts it can verify the server.
    pub cert_pem: Vec<u8>,
    /// The PKCS#8 private key (PEM).
    pub key_pem: Vec<u8>,
}

impl SelfSigned {
    /// A server identity made from this certificate.
    pub fn acceptor(&self) -> Result<Acceptor, Error> {
        Acceptor::from_pem(&self.cert_pem, &self.key_pem, Path::new("generated key"))
    }
}

/// Makes a P-256 certificate valid for 30 days for `names` (DNS names or IP
/// addresses), signed by itself.
pub fn generate(names: &[&str]) -> Result<SelfSigned, Error> {
    make_self_signed(names).map_err(|e| Error::Generate {
        reason: e.to_string(),
    })
}

fn make_self_signed(names: &[&str]) -> Result<SelfSigned, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(
        Nid::COMMONNAME,
        names.first().copied().unwrap_or("localhost"),
    )?;
    let name = name.build();
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(30)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    let mut san = SubjectAlternativeName::new();
    for n in names {
        if n.parse::<IpAddr>().is_ok() {
            san.ip(n);
        } else {
            san.dns(n);
        }
    }
    let san = san.build(&builder.x509v3_context(None, None))?;
    builder.append_extension(san)?;
    builder.sign(&key, MessageDigest::sha256())?;
    let cert = builder.build();
    Ok(SelfSigned {
        cert_pem: cert.to_pem()?,
        key_pem: key.private_key_to_pem_pkcs8()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::connection::{Connection, Endpoint};
    use std::io::{Read, Write};
    use std::time::Duration;

    /// RFC 5929: a certificate signed with SHA-256 (or with SHA-1, whose
    /// hash is replaced by SHA-256) binds with the SHA-256 of its DER.
    #[test]
    fn server_end_point_is_the_certificate_hash() {
        let generated = generate(&["localhost"]).unwrap();
        let cert = X509::from_pem(&generated.cert_pem).unwrap();
        let der = cert.to_der().unwrap();
        let sha256 = openssl::sha::sha256(&der).to_vec();
        assert_eq!(end_point_hash(&cert), Some(sha256.clone()));
        let key = PKey::private_key_from_pem(&generated.key_pem).unwrap();
        let mut builder = openssl::x509::X509Builder::new().unwrap();
        builder.set_pubkey(&key).unwrap();
        builder.sign(&key, MessageDigest::sha1()).unwrap();
        let sha1_signed = builder.build();
        let sha256 = openssl::sha::sha256(&sha1_signed.to_der().unwrap()).to_vec();
        assert_eq!(end_point_hash(&sha1_signed), Some(sha256));
        let mut builder = openssl::x509::X509Builder::new().unwrap();
        builder.set_pubkey(&key).unwrap();
        builder.sign(&key, MessageDigest::sha384()).unwrap();
        let sha384_signed = builder.build();
        let sha384 = openssl::sha::sha384(&sha384_signed.to_der().unwrap()).to_vec();
        assert_eq!(end_point_hash(&sha384_signed), Some(sha384));
    }

    fn serve_once(acceptor: Acceptor) -> (u16, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp) {
                let _ = tls.write_all(b"hello\r\n");
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest);
            }
        });
        (port, server)
    }

    fn connect(host: &str, port: u16, opts: &TlsOptions) -> Result<Connection, Error> {
        let ep = Endpoint::parse(&format!("{host}:{port}"), 1).unwrap();
        Connection::connect_tls(&ep, opts, Duration::from_secs(10))
    }

    #[test]
    fn client_verifies_generated_certificate() {
        let cert = generate(&["localhost", "127.0.0.1"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        fs::write(&ca, &cert.cert_pem).unwrap();
        let trusted = TlsOptions {
            ca_file: Some(ca),
            ..TlsOptions::default()
        };
        for host in ["localhost", "127.0.0.1"] {
            let (port, server) = serve_once(cert.acceptor().unwrap());
            let mut c = connect(host, port, &trusted).unwrap();
            assert!(c.is_tls());
            while !c.buffered().ends_with(b"\n") {
                assert!(c.fill().unwrap() > 0);
            }
            assert_eq!(c.buffered(), b"hello\r\n");
            c.close();
            server.join().unwrap();
        }

        // Without the CA file the system roots do not include it.
        let (port, server) = serve_once(cert.acceptor().unwrap());
        let err = connect("localhost", port, &TlsOptions::default())
            .err()
            .unwrap();
        assert!(
            matches!(&err, Error::Handshake { temporary: false, hint: Some(_), reason, .. }
                if reason.starts_with("certificate verify failed")),
            "{err}"
        );
        server.join().unwrap();

        // --insecure accepts it.
        let (port, server) = serve_once(cert.acceptor().unwrap());
        let insecure = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        connect("localhost", port, &insecure).unwrap().close();
        server.join().unwrap();
    }

    #[test]
    fn certificate_for_another_name_is_refused() {
        let cert = generate(&["mail.example.test"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        fs::write(&ca, &cert.cert_pem).unwrap();
        let opts = TlsOptions {
            ca_file: Some(ca),
            ..TlsOptions::default()
        };
        let (port, server) = serve_once(cert.acceptor().unwrap());
        let err = connect("localhost", port, &opts).err().unwrap();
        assert!(
            matches!(&err, Error::Handshake { reason, hint: Some(h), .. }
                if reason.contains("hostname mismatch") && h.contains("another name")),
            "{err}"
        );
        server.join().unwrap();
    }

    #[test]
    fn client_certificate_problems_are_found_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let (one, other) = (generate(&["a"]).unwrap(), generate(&["b"]).unwrap());
        let write = |name: &str, pem: &[u8]| {
            let path = dir.path().join(name);
            fs::write(&path, pem).unwrap();
            path
        };
        let cert = write("cert.pem", &one.cert_pem);
        let key = write("key.pem", &one.key_pem);
        let other_key = write("other.pem", &other.key_pem);
        let opts = |cert: &Path, key: &Path| TlsOptions {
            client_cert: Some(crate::endpoint::ClientCert {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            }),
            ..TlsOptions::default()
        };
        assert!(opts(&cert, &key).connector().is_ok());
        let err = opts(&cert, &other_key).connector().err().unwrap();
        assert!(matches!(err, Error::Identity { .. }), "{err}");
        let err = opts(&cert, &cert).connector().err().unwrap();
        assert!(matches!(err, Error::Key { .. }), "{err}");
        let err = opts(&key, &key).connector().err().unwrap();
        assert!(matches!(err, Error::Identity { .. }), "{err}");
        let err = opts(&dir.path().join("none"), &key)
            .connector()
            .err()
            .unwrap();
        assert!(matches!(err, Error::File { .. }), "{err}");
    }

    #[test]
    fn ca_file_problems() {
        let dir = tempfile::tempdir().unwrap();
        let opts = |p: &Path| TlsOptions {
            ca_file: Some(p.to_path_buf()),
            ..TlsOptions::default()
        };
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            opts(&missing).connector(),
            Err(Error::File { .. })
        ));
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, b"no certificate here\n").unwrap();
        assert!(matches!(
            opts(&empty).connector(),
            Err(Error::CaFile { .. })
        ));
    }

    #[test]
    fn server_identity_from_files() {
        let cert = generate(&["localhost"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        fs::write(&c, &cert.cert_pem).unwrap();
        fs::write(&k, &cert.key_pem).unwrap();
        assert!(Acceptor::from_files(&c, &k).is_ok());
        assert!(matches!(
            Acceptor::from_files(&c, &c),
            Err(Error::Key { .. })
        ));
        let other = generate(&["localhost"]).unwrap();
        fs::write(&k, &other.key_pem).unwrap();
        assert!(matches!(
            Acceptor::from_files(&c, &k),
            Err(Error::Identity { .. })
        ));
        assert!(matches!(
            Acceptor::from_files(&dir.path().join("nope"), &k),
            Err(Error::File { .. })
        ));
    }

    #[test]
    fn handshake_failures_are_described() {
        let text = "error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record/ssl3_record.c:354:";
        let (reason, hint) = describe_handshake_failure(text);
        assert_eq!(reason, "wrong version number");
        assert!(hint.unwrap().contains("STARTTLS"));
        let text = "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889: (self-signed certificate)";
        let (reason, hint) = describe_handshake_failure(text);
        assert_eq!(
            reason,
            "certificate verify failed (self-signed certificate)"
        );
        assert!(hint.unwrap().contains("--ca-file"));
        assert_eq!(describe_handshake_failure("odd").0, "odd");
    }
}
