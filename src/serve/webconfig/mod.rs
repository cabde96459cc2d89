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
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::IgnoredAny;

mod auth;
mod tls;

pub use auth::{BasicAuth, Credentials, Verdict};
use tls::{TlsFile, tls_config};

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
            .field("auth", &self.auth.as_ref().map(|a| a.user_count()))
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
        Some(tls) => Some(Arc::new(tls_config(&tls, base).map_err(invalid)?)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

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
        let big = "#".repeat(usize::try_from(MAX_FILE_BYTES).expect("1 MiB fits") + 1);
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
