//! `--web-config FILE`: the web configuration that Prometheus exporters share
//! (the exporter-toolkit format that node_exporter reads), so an operator
//! reuses the file a fleet already has:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt        # relative paths are from the file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
//!   client_ca_file: clients.crt
//!   min_version: TLS12           # TLS12 (default) or TLS13
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:
//!   prometheus: $2y$10$...       # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\n')
//! ```
//!
//! The file is read once, at start: a bad file (an unknown key, a missing or
//! mismatched certificate, a hash that is not bcrypt) stops `serve` before it
//! listens. The certificate and key files are re-read when they change (checked
//! at most once a second, at a handshake), so a renewed certificate is served
//! without a restart; a renewal that cannot be loaded keeps the old one and
//! says why once.
//!
//! What the toolkit has and sockscope does not: TLS 1.0 and 1.1, the client
//! authentication types that accept a certificate without verifying it
//! (`RequestClientCert`, `RequireAnyClientCert`), `client_allowed_sans` and
//! `rate_limit`. Each is refused with a message rather than ignored. HTTP/2
//! (`http2`) is accepted and has no effect: serve speaks HTTP/1.1 only.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use serde::de::IgnoredAny;
use subtle::ConstantTimeEq;

/// No file of the web configuration (it, its certificates, keys and CAs) is
/// read past this.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// bcrypt costs past this take seconds per check: refused at start, since
/// every first request of a client would hold the check's thread that long.
pub const MAX_BCRYPT_COST: u32 = 16;

/// How often a handshake looks whether the certificate files changed.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Why a web configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A loaded web configuration (the default: plain HTTP, no auth).
#[derive(Default)]
pub struct WebConfig {
    /// Serve HTTPS with this, when the file has `tls_server_config`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Ask for one of these users, when the file has `basic_auth_users`.
    pub auth: Option<Arc<BasicAuth>>,
    /// Added to every response (`http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.as_ref().map(|a| a.users.len()))
            .field("headers", &self.headers)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The response headers the toolkit lets a web configuration set.
const SETTABLE_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// Reads at most [`MAX_FILE_BYTES`] of `path`.
fn read_bounded(path: &Path) -> Result<Vec<u8>, WebConfigError> {
    let read = |source| WebConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(WebConfigError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Loads and checks the web configuration at `path`.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let invalid = |message: String| WebConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let bytes = read_bounded(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid("not UTF-8".into()))?;
    let file: FileConfig = if is_empty_yaml(text) {
        FileConfig::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| invalid(short(&e.to_string())))?
    };
    if file.rate_limit.is_some() {
        return Err(invalid(
            "rate_limit is not supported: serve bounds its connections with --http-max-connections"
                .into(),
        ));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let tls = match file.tls_server_config {
        Some(tls) => Some(Arc::new(tls_config(tls, base).map_err(invalid)?)),
        None => None,
    };
    let auth = match file.basic_auth_users {
        Some(users) => Some(Arc::new(BasicAuth::new(users).map_err(invalid)?)),
        None => None,
    };
    let mut headers = Vec::new();
    if let Some(http) = file.http_server_config {
        // http2: accepted for the toolkit's sake; serve speaks HTTP/1.1.
        let _ = http.http2;
        for (name, value) in http.headers.unwrap_or_default() {
            let Some(known) = SETTABLE_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(&name))
            else {
                return Err(invalid(format!(
                    "http_server_config.headers: {} cannot be set (only {})",
                    short(&name),
                    SETTABLE_HEADERS.join(", ")
                )));
            };
            let value = HeaderValue::from_str(&value).map_err(|_| {
                invalid(format!(
                    "http_server_config.headers.{known}: not a valid header value"
                ))
            })?;
            let name = HeaderName::from_bytes(known.as_bytes())
                .map_err(|_| invalid(format!("http_server_config.headers: {known}")))?;
            headers.push((name, value));
        }
    }
    Ok(WebConfig { tls, auth, headers })
}

/// A YAML document with nothing in it (the toolkit accepts an empty file).
fn is_empty_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// At most a line of a message, without control characters.
fn short(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
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

fn tls_config(tls: TlsFile, base: &Path) -> Result<rustls::ServerConfig, String> {
    if tls.client_allowed_sans.is_some() {
        return Err("tls_server_config.client_allowed_sans is not supported".into());
    }
    let _ = tls.prefer_server_cipher_suites;
    let provider = Arc::new(provider(&tls)?);
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

/// `basic_auth_users`: user names and their bcrypt hashes, and the passwords
/// already checked (a bcrypt check costs tens of milliseconds by design; a
/// scraper sends the same password every time).
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Checked against for an unknown user, so that a wrong name costs the
    /// same time as a wrong password.
    decoy: String,
    /// (user, password) pairs that passed, bounded.
    passed: Mutex<Vec<(String, Vec<u8>)>>,
}

/// Pairs remembered as passed; past it the memory starts over.
const PASSED_CAP: usize = 64;

/// What a request's `Authorization` header gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A user and password that passed before.
    Allowed,
    /// No header, not Basic, or not decodable.
    Denied,
    /// Needs a bcrypt check (slow: on a worker).
    Check(Credentials),
}

#[derive(PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, String> {
        let mut cost = 4;
        for (user, hash) in &users {
            if user.contains(':') {
                return Err(format!(
                    "basic_auth_users: {}: a user name cannot hold ':'",
                    short(user)
                ));
            }
            let parts: bcrypt::HashParts = hash.parse().map_err(|_| {
                format!(
                    "basic_auth_users.{}: not a bcrypt hash (make one with htpasswd -nBC 10 \"\" | tr -d ':\\n')",
                    short(user)
                )
            })?;
            if parts.get_cost() > MAX_BCRYPT_COST {
                return Err(format!(
                    "basic_auth_users.{}: bcrypt cost {} is above {MAX_BCRYPT_COST} (each check would take seconds)",
                    short(user),
                    parts.get_cost()
                ));
            }
            cost = cost.max(parts.get_cost());
        }
        let decoy = bcrypt::hash("sockscope: no such user", cost)
            .map_err(|e| format!("basic_auth_users: {e}"))?;
        Ok(BasicAuth {
            users,
            decoy,
            passed: Mutex::new(Vec::new()),
        })
    }

    /// Users configured (for a start-up line).
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The quick part: parse the header and look in the passed pairs.
    pub fn verdict(&self, authorization: Option<&[u8]>) -> Verdict {
        let Some(creds) = authorization.and_then(parse_basic) else {
            return Verdict::Denied;
        };
        let passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = passed.iter().any(|(u, p)| {
            u.as_bytes().ct_eq(creds.user.as_bytes()).into()
                && bool::from(p.as_slice().ct_eq(creds.password.as_slice()))
        });
        if hit {
            Verdict::Allowed
        } else {
            Verdict::Check(creds)
        }
    }

    /// The slow part: bcrypt. Remembers a pair that passes.
    pub fn check(&self, creds: Credentials) -> bool {
        let (hash, known) = match self.users.get(&creds.user) {
            Some(h) => (h.as_str(), true),
            None => (self.decoy.as_str(), false),
        };
        let ok = bcrypt::verify(&creds.password, hash).unwrap_or(false) && known;
        if ok {
            let mut passed = self.passed.lock().unwrap_or_else(PoisonError::into_inner);
            if passed.len() >= PASSED_CAP {
                passed.clear();
            }
            passed.push((creds.user, creds.password));
        }
        ok
    }
}

/// `Basic base64(user:password)`.
fn parse_basic(header: &[u8]) -> Option<Credentials> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some(Credentials {
        user,
        password: decoded[colon + 1..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn err(dir: &Path, text: &str) -> String {
        let p = write(dir, "web.yml", text);
        load(&p).expect_err("refused").to_string()
    }

    #[test]
    fn empty_file_is_plain_http() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = load(&write(dir.path(), "web.yml", "# nothing\n")).expect("load");
        assert!(c.tls.is_none() && c.auth.is_none() && c.headers.is_empty());
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert!(err(d, "tls_server_confg:\n  cert_file: x\n").contains("tls_server_confg"));
        assert!(err(d, "basic_auth_users:\n  bob: plain\n").contains("not a bcrypt hash"));
        assert!(err(d, "rate_limit:\n  interval: 1s\n").contains("rate_limit"));
        assert!(
            err(d, "http_server_config:\n  headers:\n    Server: x\n").contains("cannot be set")
        );
        assert!(
            err(
                d,
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n"
            )
            .contains("missing.crt")
        );
        let big = "#".repeat(MAX_FILE_BYTES as usize + 1);
        assert!(err(d, &big).contains("larger than"));
        // A well-formed hash of cost 17 (not computed: that takes seconds).
        let cost = "$2b$17$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        assert!(err(d, &format!("basic_auth_users:\n  bob: '{cost}'\n")).contains("cost 17"));
    }

    #[test]
    fn basic_auth_checks_and_remembers() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let auth = BasicAuth::new(BTreeMap::from([("prom".to_string(), hash)])).expect("auth");
        let header = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert_eq!(auth.verdict(None), Verdict::Denied);
        assert_eq!(auth.verdict(Some(b"Bearer x")), Verdict::Denied);
        let Verdict::Check(c) = auth.verdict(Some(header("prom", "wrong").as_bytes())) else {
            panic!("needs a check");
        };
        assert!(!auth.check(c));
        let Verdict::Check(c) = auth.verdict(Some(header("nobody", "s3cret").as_bytes())) else {
            panic!("needs a check");
        };
        assert!(!auth.check(c));
        let good = header("prom", "s3cret");
        let Verdict::Check(c) = auth.verdict(Some(good.as_bytes())) else {
            panic!("needs a check");
        };
        assert!(auth.check(c));
        assert_eq!(auth.verdict(Some(good.as_bytes())), Verdict::Allowed);
        // A password with a colon in it is the password's.
        let hash = bcrypt::hash("a:b", 4).expect("hash");
        let auth = BasicAuth::new(BTreeMap::from([("u".to_string(), hash)])).expect("auth");
        let Verdict::Check(c) = auth.verdict(Some(header("u", "a:b").as_bytes())) else {
            panic!("needs a check");
        };
        assert!(auth.check(c));
    }
}
