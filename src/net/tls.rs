//! Throwaway self-signed certificates for local servers and tests.

use anyhow::Context;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};

/// A certificate and its private key, both PEM.
pub struct SelfSigned {
    /// The certificate (PEM); a client that trusts it can verify the server.
    pub cert_pem: Vec<u8>,
    /// The PKCS#8 private key (PEM).
    pub key_pem: Vec<u8>,
}

impl SelfSigned {
    /// A native-tls server identity made from this certificate.
    pub fn acceptor(&self) -> anyhow::Result<native_tls::TlsAcceptor> {
        let identity = native_tls::Identity::from_pkcs8(&self.cert_pem, &self.key_pem)?;
        Ok(native_tls::TlsAcceptor::new(identity)?)
    }
}

/// Makes a P-256 certificate valid for 30 days for `names` (DNS names or IP
/// addresses), signed by itself.
pub fn generate(names: &[&str]) -> anyhow::Result<SelfSigned> {
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
        if n.parse::<std::net::IpAddr>().is_ok() {
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
        key_pem: key
            .private_key_to_pem_pkcs8()
            .context("encoding private key")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::connection::{Connection, Endpoint, TlsOptions};
    use std::io::{Read, Write};
    use std::time::Duration;

    #[test]
    fn client_verifies_generated_certificate() {
        let cert = generate(&["localhost", "127.0.0.1"]).unwrap();
        let acceptor = cert.acceptor().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut tls = acceptor.accept(tcp).unwrap();
            tls.write_all(b"hello\r\n").unwrap();
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest);
        });
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &cert.cert_pem).unwrap();
        let opts = TlsOptions {
            ca_file: Some(ca),
            insecure: false,
        };
        let ep = Endpoint::parse(&format!("localhost:{port}"), 1).unwrap();
        let mut c = Connection::connect_tls(&ep, &opts, Duration::from_secs(10)).unwrap();
        assert!(c.is_tls());
        assert_eq!(c.read_line(100).unwrap(), b"hello\r\n");
        c.close();
        server.join().unwrap();

        // Without the CA file, verification fails with the TLS exit status.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = cert.acceptor().unwrap();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let _ = acceptor.accept(tcp);
        });
        let ep = Endpoint::parse(&format!("localhost:{port}"), 1).unwrap();
        let err = Connection::connect_tls(&ep, &TlsOptions::default(), Duration::from_secs(10))
            .err()
            .unwrap();
        assert_eq!(crate::exit::exit_status(&err), crate::exit::Exit::Protocol);
        server.join().unwrap();
    }
}
