//! `serve --web-config`: the exporter-toolkit web configuration against the
//! real binary on loopback. Certificates are made in the test (rcgen); the
//! client is rustls. TLS scrapes, basic auth accepted and refused, client
//! certificates, a renewed certificate served without a restart, and bad files
//! refused before `serve` listens.

use crate::common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::headless::{HttpResponse, Running, request_on, start_serve};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// A CA and what it can sign.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

fn new_ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA certificate");
    Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate for `names`, signed by `ca`: (cert PEM, key PEM, cert DER, key DER).
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

fn leaf(ca: &Ca, names: &[&str]) -> Leaf {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(
        names
            .iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>(),
    )
    .expect("params");
    let cert = params.signed_by(&key, &ca.issuer).expect("sign");
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts `ca`, with a client certificate when given one.
fn client(ca: &Ca, cert: Option<&Leaf>, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match cert {
        None => builder.with_no_client_auth(),
        Some(c) => builder
            .with_client_auth_cert(
                vec![c.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_der.clone())),
            )
            .expect("client certificate"),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Every request a full handshake: a resumed session shows no certificate.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One HTTPS request; the response and the certificate the server showed.
fn https(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    extra: &str,
) -> std::io::Result<(HttpResponse, CertificateDer<'static>)> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(20)))?;
    let conn = rustls::ClientConnection::new(config, ServerName::from(addr.ip()))
        .map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let response = request_on(&mut tls, addr, "GET", path, extra)?;
    let shown = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or_else(|| std::io::Error::other("no server certificate"))?;
    Ok((response, shown))
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn start_with(config: &Path) -> (Running, SocketAddr) {
    let config = config.to_str().expect("utf-8 path");
    start_serve(&["--interval", "200ms", "--web-config", config])
}

#[test]
fn tls_scrape_with_basic_auth_accepted_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_ca("sockscope test CA");
    let server = leaf(&ca, &["127.0.0.1", "localhost"]);
    write(dir.path(), "server.crt", &server.cert_pem);
    write(dir.path(), "server.key", &server.key_pem);
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    // Relative paths are from the file's directory, as in the toolkit.
    let config = write(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    );
    let (_serve, addr) = start_with(&config);
    let tls = client(&ca, None, &[]);

    let good = basic("prometheus", "s3cret");
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (r, shown) = https(addr, Arc::clone(&tls), "/metrics", &good).expect("HTTPS scrape");
        assert_eq!(shown, server.der, "the configured certificate");
        assert_eq!(r.header("x-frame-options"), Some("deny"));
        if r.status == 200 && r.body.contains("sockscope_last_sample_timestamp_seconds") {
            break r.body;
        }
        assert!(Instant::now() < deadline, "no sample over HTTPS: {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.contains("sockscope_sockets"), "the exposition");
    // Twice: the second comes from the remembered pair.
    let (again, _) = https(addr, Arc::clone(&tls), "/healthz", &good).expect("again");
    assert_eq!(again.status, 200, "{again:?}");

    for (what, extra) in [
        ("no credentials", String::new()),
        ("a wrong password", basic("prometheus", "guess")),
        ("an unknown user", basic("root", "s3cret")),
        (
            "a non-Basic scheme",
            "Authorization: Bearer s3cret\r\n".to_string(),
        ),
    ] {
        let (r, _) = https(addr, Arc::clone(&tls), "/metrics", &extra).expect(what);
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic")),
            "{what}: {r:?}"
        );
        assert!(!r.body.contains("sockscope_"), "{what}: nothing leaks");
    }

    // Plain HTTP on the TLS port gets no HTTP answer (the handshake fails).
    let mut plain = TcpStream::connect(addr).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let answer = request_on(&mut plain, addr, "GET", "/metrics", &good);
    assert!(
        answer.as_ref().map_or(true, |r| r.status != 200),
        "plain HTTP was served: {answer:?}"
    );

    // A client that speaks only h2 is told so in the handshake.
    let h2 = client(&ca, None, &[b"h2"]);
    assert!(
        https(addr, h2, "/metrics", &good).is_err(),
        "an h2-only client was accepted"
    );
    // One that offers both gets HTTP/1.1.
    let both = client(&ca, None, &[b"h2", b"http/1.1"]);
    let (r, _) = https(addr, both, "/healthz", &good).expect("http/1.1 by ALPN");
    assert_eq!(r.status, 200);
}

#[test]
fn client_certificates_are_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_ca("sockscope server CA");
    let clients = new_ca("sockscope client CA");
    let stranger = new_ca("someone else's CA");
    let server = leaf(&ca, &["127.0.0.1"]);
    write(dir.path(), "server.crt", &server.cert_pem);
    write(dir.path(), "server.key", &server.key_pem);
    write(dir.path(), "clients.crt", &clients.pem);
    let config = write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n  \
         min_version: TLS13\n",
    );
    let (_serve, addr) = start_with(&config);
    let ours = leaf(&clients, &["prometheus"]);
    let theirs = leaf(&stranger, &["prometheus"]);
    let (r, _) = https(addr, client(&ca, Some(&ours), &[]), "/healthz", "")
        .expect("a client certificate of the configured CA");
    assert!(r.status == 200 || r.status == 503, "{r:?}");
    // TLS 1.3 reports a refused client certificate after the handshake, on
    // the first read: either way no HTTP response comes.
    assert!(
        https(addr, client(&ca, None, &[]), "/healthz", "").is_err(),
        "no client certificate was accepted"
    );
    assert!(
        https(addr, client(&ca, Some(&theirs), &[]), "/healthz", "").is_err(),
        "a certificate of another CA was accepted"
    );
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_ca("sockscope test CA");
    let first = leaf(&ca, &["127.0.0.1"]);
    write(dir.path(), "server.crt", &first.cert_pem);
    write(dir.path(), "server.key", &first.key_pem);
    let config = write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let (_serve, addr) = start_with(&config);
    let tls = client(&ca, None, &[]);
    let (_, shown) = https(addr, Arc::clone(&tls), "/healthz", "").expect("first");
    assert_eq!(shown, first.der);

    // Half a renewal (a new certificate, the old key) keeps the old pair.
    let second = leaf(&ca, &["127.0.0.1"]);
    write(dir.path(), "server.crt", &second.cert_pem);
    std::thread::sleep(Duration::from_millis(1_200));
    let (_, shown) = https(addr, Arc::clone(&tls), "/healthz", "").expect("during the renewal");
    assert_eq!(shown, first.der, "a mismatched pair is not served");
    write(dir.path(), "server.key", &second.key_pem);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, shown) = https(addr, Arc::clone(&tls), "/healthz", "").expect("after");
        if shown == second.der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn bad_web_configs_are_refused_before_listening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_ca("sockscope test CA");
    let a = leaf(&ca, &["127.0.0.1"]);
    let b = leaf(&ca, &["127.0.0.1"]);
    write(dir.path(), "a.crt", &a.cert_pem);
    write(dir.path(), "b.key", &b.key_pem);
    let cases = [
        (
            "unknown key",
            "tls_server_config:\n  cert_fil: a.crt\n",
            "cert_fil",
        ),
        (
            "key of another certificate",
            "tls_server_config:\n  cert_file: a.crt\n  key_file: b.key\n",
            "key pair",
        ),
        (
            "missing file",
            "tls_server_config:\n  cert_file: gone.crt\n  key_file: b.key\n",
            "gone.crt",
        ),
        (
            "plain password",
            "basic_auth_users:\n  prometheus: s3cret\n",
            "not a bcrypt hash",
        ),
        ("not YAML", "tls_server_config: [\n", "web.yml"),
        (
            "TLS 1.0",
            "tls_server_config:\n  cert_file: a.crt\n  key_file: b.key\n  min_version: TLS10\n",
            "TLS10",
        ),
    ];
    for (what, text, says) in cases {
        let config = write(dir.path(), "web.yml", text);
        let out = Command::new(env!("CARGO_BIN_EXE_sockscope"))
            .args(["serve", "--listen", "127.0.0.1:0", "--web-config"])
            .arg(&config)
            .output()
            .expect("run serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("--web-config"), "{what}: {stderr}");
        assert!(stderr.contains(says), "{what}: wants {says:?} in {stderr}");
        assert!(!stderr.contains("serving"), "{what}: it listened");
    }
}
