//! Properties of the filter language over random input: valid expressions mean what
//! an independent statement of each term says, with the precedence the grammar
//! gives; `!(e)` is the complement of `e`; and no string makes `parse` panic or
//! return an error whose span is not in the input.

use std::net::SocketAddr;

use proptest::prelude::*;
use sockscope::filter::Filter;
use sockscope::model::{Ownership, ProcessInfo, SocketRecord, TcpState};

fn process(pid: u32, name: &str, uid: u32, user: &str) -> ProcessInfo {
    ProcessInfo {
        pid,
        name: name.to_owned(),
        cmdline: String::new(),
        uid,
        user: user.to_owned(),
        start_time: 0,
        ..ProcessInfo::default()
    }
}

/// Valid terms with an independent statement of what each one means.
type Oracle = fn(&SocketRecord, Option<&ProcessInfo>) -> bool;

fn peer(s: &SocketRecord) -> Option<SocketAddr> {
    let r = s.remote;
    if r.port() == 0 && r.ip().is_unspecified() {
        None
    } else {
        Some(r)
    }
}

fn either(s: &SocketRecord, f: impl Fn(SocketAddr) -> bool) -> bool {
    f(s.local) || peer(s).is_some_and(f)
}

const TERMS: &[(&str, Oracle)] = &[
    ("state:listen", |s, _| s.state == TcpState::Listen),
    ("STATE:Close-Wait,estab", |s, _| {
        matches!(s.state, TcpState::CloseWait | TcpState::Established)
    }),
    ("port:443", |s, _| either(s, |a| a.port() == 443)),
    ("Port:0", |s, _| either(s, |a| a.port() == 0)),
    ("lport:8000-8100", |s, _| {
        (8000..=8100).contains(&s.local.port())
    }),
    ("rport:51000,22", |s, _| {
        peer(s).is_some_and(|a| a.port() == 51000 || a.port() == 22)
    }),
    ("proc:nginx", |_, p| {
        p.is_some_and(|p| p.name.to_lowercase().contains("nginx"))
    }),
    ("pid:100", |s, _| s.owner.pid() == Some(100)),
    ("user:www-data", |_, p| {
        p.is_some_and(|p| p.user == "www-data")
    }),
    ("user:1000", |s, p| {
        s.uid == 1000 || p.is_some_and(|p| p.uid == 1000)
    }),
    ("addr:10.0.0.0/8", |s, _| {
        either(s, |a| a.ip().to_string().starts_with("10."))
    }),
    ("laddr:::1", |s, _| s.local.ip().to_string() == "::1"),
    ("raddr:192.168.1.5", |s, _| {
        peer(s).is_some_and(|a| a.ip().to_string() == "192.168.1.5")
    }),
    ("addr:2001:db8::/32", |s, _| {
        either(s, |a| a.ip().to_string().starts_with("2001:db8:"))
    }),
    ("addr:::", |s, _| either(s, |a| a.ip().to_string() == "::")),
];

#[derive(Clone, Debug)]
enum Expr {
    Term(usize),
    Not(Box<Expr>, bool),
    And(Box<Expr>, Box<Expr>, u8),
    Or(Box<Expr>, Box<Expr>, u8),
    Group(Box<Expr>),
}

impl Expr {
    fn eval(&self, s: &SocketRecord, p: Option<&ProcessInfo>) -> bool {
        match self {
            Expr::Term(i) => (TERMS[*i].1)(s, p),
            Expr::Not(e, _) => !e.eval(s, p),
            Expr::And(a, b, _) => a.eval(s, p) && b.eval(s, p),
            Expr::Or(a, b, _) => a.eval(s, p) || b.eval(s, p),
            Expr::Group(e) => e.eval(s, p),
        }
    }

    /// Text with only the parentheses precedence needs (plus the `Group`s), so
    /// that parsing it back exercises precedence.
    fn render(&self) -> String {
        match self {
            Expr::Term(i) => TERMS[*i].0.to_owned(),
            Expr::Group(e) => format!("({})", e.render()),
            Expr::Not(e, word) => {
                let inner = match **e {
                    Expr::Term(_) | Expr::Not(..) | Expr::Group(_) => e.render(),
                    _ => format!("({})", e.render()),
                };
                if *word {
                    format!("not {inner}")
                } else {
                    format!("!{inner}")
                }
            }
            Expr::And(a, b, style) => {
                let side = |e: &Expr| match e {
                    Expr::Or(..) => format!("({})", e.render()),
                    _ => e.render(),
                };
                let op = [" ", " and ", " AND ", "  "][usize::from(*style % 4)];
                format!("{}{op}{}", side(a), side(b))
            }
            Expr::Or(a, b, style) => {
                let op = [" | ", "|", " or ", " || "][usize::from(*style % 4)];
                format!("{}{op}{}", a.render(), b.render())
            }
        }
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = (0..TERMS.len()).prop_map(Expr::Term);
    leaf.prop_recursive(6, 48, 2, |inner| {
        prop_oneof![
            (inner.clone(), any::<bool>()).prop_map(|(e, w)| Expr::Not(Box::new(e), w)),
            (inner.clone(), inner.clone(), any::<u8>()).prop_map(|(a, b, s)| Expr::And(
                Box::new(a),
                Box::new(b),
                s
            )),
            (inner.clone(), inner.clone(), any::<u8>()).prop_map(|(a, b, s)| Expr::Or(
                Box::new(a),
                Box::new(b),
                s
            )),
            inner.prop_map(|e| Expr::Group(Box::new(e))),
        ]
    })
}

const ADDRS: &[&str] = &[
    "10.0.0.1",
    "10.1.2.3",
    "127.0.0.1",
    "192.168.1.5",
    "0.0.0.0",
    "::1",
    "2001:db8::1",
    "2001:db9::1",
    "::",
];
const PORTS: &[u16] = &[0, 22, 80, 443, 7999, 8000, 8050, 8100, 51000];

fn socket_and_process() -> impl Strategy<Value = (SocketRecord, Option<ProcessInfo>)> {
    let endpoint = (0..ADDRS.len(), 0..PORTS.len())
        .prop_map(|(a, p)| SocketAddr::new(ADDRS[a].parse().expect("pool address"), PORTS[p]));
    let owner = (0u8..4, prop::sample::select(vec![1u32, 100, 4242]));
    let proc_fields = (
        prop::sample::select(vec!["nginx", "NGINX-worker", "sshd", "postgres"]),
        prop::sample::select(vec![0u32, 33, 1000]),
        prop::sample::select(vec!["root", "www-data", "alice", "1000"]),
    );
    (
        0..TcpState::ALL.len(),
        endpoint.clone(),
        endpoint,
        prop::sample::select(vec![0u32, 33, 1000]),
        owner,
        proc_fields,
    )
        .prop_map(
            |(st, local, remote, uid, (kind, pid), (name, puid, user))| {
                let mut s = SocketRecord::new(TcpState::ALL[st], local, remote);
                s.uid = uid;
                s.owner = match kind {
                    0 => Ownership::Known { pid, fd: 3 },
                    1 => Ownership::Kernel,
                    2 => Ownership::Hidden,
                    _ => Ownership::Unknown,
                };
                let p = (kind == 0).then(|| process(pid, name, puid, user));
                (s, p)
            },
        )
}

/// Strings made of the language's own pieces, more likely to reach deep parser paths.
const NEAR_GRAMMAR: &str = "[()|!&, \t:/.\\-a-z0-9A-Z]{0,40}|\
                            ((state|port|addr|not|and|or|proc|[(|)!]|:)[ ]?){0,12}";

proptest! {
    #[test]
    fn valid_expressions_parse_and_match_their_meaning(
        e in expr(),
        sockets in prop::collection::vec(socket_and_process(), 1..16),
    ) {
        let text = e.render();
        let f = Filter::parse(&text);
        prop_assert!(f.is_ok(), "{:?} failed: {:?}", text, f.err());
        let f = f.expect("checked above");
        let negated = Filter::parse(&format!("!({text})")).expect("negation parses");
        for (s, p) in &sockets {
            let m = f.matches(s, p.as_ref());
            prop_assert_eq!(m, e.eval(s, p.as_ref()), "{} on {:?} / {:?}", text, s, p);
            prop_assert_eq!(negated.matches(s, p.as_ref()), !m, "!({}) on {:?}", text, s);
            if !f.needs_process() {
                prop_assert_eq!(f.matches(s, None), m);
            }
        }
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        check_error_is_well_formed(&text)?;
    }

    #[test]
    fn parse_never_panics_near_the_grammar(
        text in NEAR_GRAMMAR
    ) {
        check_error_is_well_formed(&text)?;
    }
}

fn check_error_is_well_formed(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = Filter::parse(text) {
        prop_assert!(
            e.span.start < e.span.end && e.span.end <= text.len(),
            "{:?}",
            e
        );
        prop_assert!(text.is_char_boundary(e.span.start) && text.is_char_boundary(e.span.end));
        prop_assert!(!e.message.is_empty());
        let rendered = e.render(text);
        prop_assert_eq!(rendered.lines().count(), 2, "{:?}", rendered);
        let shown = e.to_string();
        prop_assert!(!shown.contains('\n'), "{:?}", shown);
    }
    Ok(())
}
