//! The TLS half of the web configuration: the certificate and key (re-read when
//! their files change), client certificates, versions, cipher suites and curves,
//! as a rustls server configuration.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use serde::Deserialize;

use super::{RELOAD_CHECK, read_bounded, short};

/// `tls_server_config`, as the file spells it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    /// Go's server-order preference; rustls always uses its own order.
    prefer_server_cipher_suites: Option<bool>,
}

/// Where a PEM comes from: a file (re-read when it changes) or the config itself.
#[derive(Debug, Clone)]
enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    fn of(
        file: Option<String>,
        inline: Option<String>,
        base: &Path,
        what: &str,
    ) -> Result<Option<Pem>, String> {
        match (file, inline) {
            (Some(_), Some(_)) => Err(format!(
                "tls_server_config: {what}_file and {what} are both set; give one"
            )),
            (Some(f), None) => Ok(Some(Pem::File(base.join(f)))),
            (None, Some(s)) => Ok(Some(Pem::Inline(s))),
            (None, None) => Ok(None),
        }
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(p) => read_bounded(p).map_err(|e| e.to_string()),
            Pem::Inline(s) => Ok(s.as_bytes().to_vec()),
        }
    }

    fn stamp(&self) -> Option<SystemTime> {
        match self {
            Pem::File(p) => std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            Pem::Inline(_) => None,
        }
    }

    fn name(&self, what: &str) -> String {
        match self {
            Pem::File(p) => p.display().to_string(),
            Pem::Inline(_) => format!("tls_server_config.{what}"),
        }
    }
}

fn certificates(pem: &Pem, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = pem.bytes()?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", pem.name(what)))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", pem.name(what)));
    }
    Ok(certs)
}

/// Reads the certificate chain and key and checks that they belong together.
fn certified_key(cert: &Pem, key: &Pem, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = certificates(cert, "cert")?;
    let bytes = key.bytes()?;
    let der = PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("{}: no private key in it: {e}", key.name("key")))?;
    CertifiedKey::from_der(chain, der, provider).map_err(|e| {
        format!(
            "{} and {} do not make a usable key pair: {e}",
            cert.name("cert"),
            key.name("key")
        )
    })
}

fn tls_version(name: &str, field: &str) -> Result<u8, String> {
    match name {
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        "TLS10" | "TLS11" => Err(format!(
            "tls_server_config.{field}: {name} is not offered (TLS 1.2 and 1.3 only)"
        )),
        other => Err(format!(
            "tls_server_config.{field}: {} is not a version (TLS12 or TLS13)",
            short(other)
        )),
    }
}

/// The ring provider narrowed to the configured cipher suites and curves.
fn provider(tls: &TlsFile) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &tls.cipher_suites {
        let available: Vec<String> = provider
            .cipher_suites
            .iter()
            .filter(|s| s.tls13().is_none())
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        for name in names {
            if !available.iter().any(|a| a == name) {
                return Err(format!(
                    "tls_server_config.cipher_suites: {} is not offered (TLS 1.2 suites: {})",
                    short(name),
                    available.join(", ")
                ));
            }
        }
        // As in Go, the list names TLS 1.2 suites; TLS 1.3's are always on.
        provider.cipher_suites.retain(|s| {
            s.tls13().is_some() || names.iter().any(|n| *n == format!("{:?}", s.suite()))
        });
    }
    if let Some(curves) = &tls.curve_preferences {
        let mut groups = Vec::new();
        for name in curves {
            let wanted = match name.as_str() {
                "X25519" => rustls::NamedGroup::X25519,
                "CurveP256" => rustls::NamedGroup::secp256r1,
                "CurveP384" => rustls::NamedGroup::secp384r1,
                other => {
                    return Err(format!(
                        "tls_server_config.curve_preferences: {} is not offered (X25519, CurveP256, CurveP384)",
                        short(other)
                    ));
                }
            };
            if let Some(g) = provider.kx_groups.iter().find(|g| g.name() == wanted) {
                groups.push(*g);
            }
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

pub(super) fn tls_config(tls: &TlsFile, base: &Path) -> Result<rustls::ServerConfig, String> {
    if tls.client_allowed_sans.is_some() {
        return Err("tls_server_config.client_allowed_sans is not supported".into());
    }
    let _ = tls.prefer_server_cipher_suites;
    let provider = Arc::new(provider(tls)?);
    let cert = Pem::of(tls.cert_file.clone(), tls.cert.clone(), base, "cert")?
        .ok_or("tls_server_config: cert_file (or cert) is required")?;
    let key = Pem::of(tls.key_file.clone(), tls.key.clone(), base, "key")?
        .ok_or("tls_server_config: key_file (or key) is required")?;
    let min = tls_version(tls.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
    let max = tls_version(tls.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
    if min > max {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();

    let ca = Pem::of(
        tls.client_ca_file.clone(),
        tls.client_ca.clone(),
        base,
        "client_ca",
    )?;
    let auth_type = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let verify = match auth_type {
        "NoClientCert" => None,
        "VerifyClientCertIfGiven" => Some(true),
        "RequireAndVerifyClientCert" => Some(false),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "tls_server_config.client_auth_type: {auth_type} accepts certificates without verifying them and is not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file"
            ));
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: {} is not a type (NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert)",
                short(other)
            ));
        }
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match (verify, ca) {
        (None, None) => builder.with_no_client_auth(),
        (None, Some(_)) => {
            return Err(
                "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert"
                    .into(),
            );
        }
        (Some(_), None) => {
            return Err(format!(
                "tls_server_config: client_auth_type {auth_type} needs client_ca_file"
            ));
        }
        (Some(optional), Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates(&ca, "client_ca")? {
                roots
                    .add(c)
                    .map_err(|e| format!("{}: {e}", ca.name("client_ca")))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("tls_server_config: client_ca: {e}"))?,
            )
        }
    };
    let resolver = Reloading::new(cert, key, provider)?;
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    // HTTP/1.1 only: a client that offers only h2 is told so in the handshake.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The server's certificate, re-read when its files change.
#[derive(Debug)]
struct Reloading {
    cert: Pem,
    key: Pem,
    provider: Arc<CryptoProvider>,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
    /// The stamps of a renewal that failed to load (said once).
    failed: Option<(Option<SystemTime>, Option<SystemTime>)>,
}

impl Reloading {
    fn new(cert: Pem, key: Pem, provider: Arc<CryptoProvider>) -> Result<Reloading, String> {
        let stamps = (cert.stamp(), key.stamp());
        let loaded = certified_key(&cert, &key, &provider)?;
        Ok(Reloading {
            cert,
            key,
            provider,
            state: Mutex::new(Loaded {
                key: Arc::new(loaded),
                stamps,
                checked: Instant::now(),
                failed: None,
            }),
        })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= RELOAD_CHECK {
            state.checked = Instant::now();
            let stamps = (self.cert.stamp(), self.key.stamp());
            if stamps != state.stamps && state.failed != Some(stamps) {
                match certified_key(&self.cert, &self.key, &self.provider) {
                    Ok(k) => {
                        eprintln!("sockscope: http: serving the renewed certificate");
                        state.key = Arc::new(k);
                        state.stamps = stamps;
                        state.failed = None;
                    }
                    Err(e) => {
                        // Half a renewal (the certificate before its key) is
                        // common: tried again when the files change again.
                        eprintln!("sockscope: http: keeping the old certificate: {e}");
                        state.failed = Some(stamps);
                    }
                }
            }
        }
        Arc::clone(&state.key)
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
