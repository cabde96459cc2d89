//! `new_listener`: a port that started listening while sockscope runs, and who
//! opened it (an unexpected listener is how a backdoor or a misconfigured
//! service shows itself).
//!
//! Stateless, from the engine's view: a LISTEN socket the engine did not see at
//! its first sample (`at_start` false) is new, so the listeners already there
//! when sockscope started never raise anything. A port is reported while all its
//! listeners are new, for `new_listener_secs`, unless it is allowlisted.

use std::collections::BTreeMap;
use std::time::Duration;

use super::util::{put, secs};
use super::{Candidate, Evidence, NetnsView, Rule, Severity, Subject, Thresholds};
use crate::model::{Stamp, TcpState};

pub struct NewListener;

/// The rule's contract (see `contract`).
pub(super) const CONTRACT: super::RuleContract = super::RuleContract {
    fires: "A port whose listeners all appeared after sockscope's first sample, named with its process and executable, for `new_listener_secs`.",
    evidence: &[
        "LISTEN sockets",
        "their first sample",
        "owner and executable",
    ],
    lookalikes: "Ports listed in `new_listener_allow`; listeners already there at the first sample.",
    clears: "the port no longer listening, or `new_listener_secs` passed; then hysteresis",
    cannot: "Without owners the process is unknown; nothing at the first sample (all listeners are old).",
};

impl Rule for NewListener {
    fn id(&self) -> &'static str {
        "new_listener"
    }

    fn contract(&self) -> super::RuleContract {
        CONTRACT
    }

    fn doc(&self, t: &Thresholds) -> super::RuleDoc {
        super::RuleDoc {
            subject: "listening port",
            fires: format!(
                "a port whose listeners all appeared after sockscope's first sample, for {}, naming the process and its executable; `new_listener_allow` ports stay quiet",
                super::duration_words(t.new_listener_secs)
            ),
            critical: "never".into(),
        }
    }

    fn evaluate(&self, ns: &NetnsView<'_>, cfg: &Thresholds) -> Vec<Candidate> {
        let snap = ns.snap;
        let now = Stamp::from_system(snap.taken_at());
        let window = Duration::from_secs(cfg.new_listener_secs);
        // Per port: whether every listener is new, the youngest age, and the
        // listeners' indices.
        let mut ports: BTreeMap<u16, (bool, Duration, Vec<usize>)> = BTreeMap::new();
        for (i, s) in ns.sockets() {
            if s.state != TcpState::Listen {
                continue;
            }
            let Some(view) = snap.conns.get(i) else {
                continue;
            };
            let age = now.saturating_since(view.first_seen);
            let e = ports
                .entry(s.local.port())
                .or_insert((true, Duration::MAX, Vec::new()));
            e.0 &= !view.at_start;
            e.1 = e.1.min(age);
            e.2.push(i);
        }
        let mut out = Vec::new();
        for (port, (all_new, age, idx)) in ports {
            if !all_new || age > window || cfg.new_listener_allow.contains(&port) {
                continue;
            }
            let mut ev = Evidence::new();
            let locals: Vec<String> = idx
                .iter()
                .map(|&i| snap.sample.sockets[i].local.to_string())
                .collect();
            put(&mut ev, "local", locals);
            put(&mut ev, "listening_for_secs", secs(age));
            let owner = idx.iter().find_map(|&i| snap.owner_of(i));
            match owner {
                Some(p) => {
                    put(&mut ev, "pid", p.pid);
                    put(&mut ev, "process", p.name.clone());
                    put(&mut ev, "cmdline", p.cmdline.clone());
                    put(&mut ev, "exe", p.exe.clone());
                    put(&mut ev, "user", p.user.clone());
                }
                None => put(&mut ev, "pid", serde_json::Value::Null),
            }
            // The exe names the binary even when the process renamed itself.
            let who = owner.map_or("an unknown process".to_string(), |p| {
                let exe = p.exe.as_deref().unwrap_or("executable unknown");
                format!("{} (pid {}, {exe})", p.name, p.pid)
            });
            out.push(Candidate {
                subject: Subject::LocalPort { port },
                severity: Severity::Warning,
                evidence: ev,
                message: format!("port {port}{} started listening: {who}", ns.at()),
                next_step: "confirm the service is expected (its command line and user); if so, add the port \
                            to new_listener_allow"
                    .into(),
            });
        }
        out
    }
}
