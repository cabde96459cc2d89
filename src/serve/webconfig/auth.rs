//! `basic_auth_users`: bcrypt-checked basic authentication, with the passed
//! passwords remembered and unknown users checked against a decoy hash.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::{MAX_BCRYPT_COST, short};

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
    /// How many users may log in.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub(super) fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, String> {
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
