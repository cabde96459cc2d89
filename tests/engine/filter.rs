//! Tests of the filter language on hand-built sockets: each term, the operators,
//! and every error with its exact span. Random expressions are in `filter_props.rs`.

use std::net::SocketAddr;
use std::ops::Range;

use sockscope::filter::{Filter, FilterError};
use sockscope::model::{Ownership, ProcessInfo, SocketRecord, TcpState};

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

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

/// A named socket with the process that owns it, if known.
struct Case {
    name: &'static str,
    socket: SocketRecord,
    process: Option<ProcessInfo>,
}

fn case(
    name: &'static str,
    state: TcpState,
    local: &str,
    remote: &str,
    uid: u32,
    owner: Ownership,
    process: Option<ProcessInfo>,
) -> Case {
    let mut socket = SocketRecord::new(state, addr(local), addr(remote));
    socket.uid = uid;
    socket.owner = owner;
    Case {
        name,
        socket,
        process,
    }
}

/// IPv4 and IPv6, listeners and connections, owners known, hidden, unknown, kernel.
fn cases() -> Vec<Case> {
    vec![
        case(
            "v4_listen",
            TcpState::Listen,
            "0.0.0.0:443",
            "0.0.0.0:0",
            0,
            Ownership::Known { pid: 100, fd: 6 },
            Some(process(100, "nginx", 0, "root")),
        ),
        case(
            "v4_estab",
            TcpState::Established,
            "10.1.2.3:443",
            "192.168.1.50:51000",
            0,
            Ownership::Known { pid: 101, fd: 12 },
            Some(process(101, "nginx", 33, "www-data")),
        ),
        case(
            "v6_close_wait",
            TcpState::CloseWait,
            "[2001:db8::1]:5432",
            "[2001:db8:1::7]:40000",
            1000,
            Ownership::Hidden,
            None,
        ),
        case(
            "v6_listen",
            TcpState::Listen,
            "[::]:22",
            "[::]:0",
            0,
            Ownership::Unknown,
            None,
        ),
        case(
            "time_wait",
            TcpState::TimeWait,
            "127.0.0.1:8080",
            "127.0.0.1:39000",
            0,
            Ownership::Kernel,
            None,
        ),
        case(
            "v6_client",
            TcpState::SynSent,
            "[::1]:41000",
            "[::1]:8100",
            1000,
            Ownership::Known { pid: 4242, fd: 3 },
            Some(process(4242, "Curl", 1000, "alice")),
        ),
    ]
}

fn filter(text: &str) -> Filter {
    Filter::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// Names of the cases `text` matches.
fn hits(text: &str) -> Vec<&'static str> {
    let f = filter(text);
    cases()
        .into_iter()
        .filter(|c| f.matches(&c.socket, c.process.as_ref()))
        .map(|c| c.name)
        .collect()
}

#[test]
fn empty_filter_matches_everything() {
    for text in ["", "   ", "\t \n"] {
        let f = filter(text);
        assert!(f.is_empty());
        assert_eq!(f.source(), text);
        assert_eq!(hits(text).len(), cases().len());
    }
    assert!(Filter::default().is_empty());
    assert!(!filter("state:listen").is_empty());
    assert_eq!(filter(" state:listen ").source(), " state:listen ");
}

#[test]
fn state_terms() {
    assert_eq!(hits("state:listen"), ["v4_listen", "v6_listen"]);
    assert_eq!(hits("state:close_wait"), ["v6_close_wait"]);
    assert_eq!(hits("state:CLOSE-WAIT"), ["v6_close_wait"]);
    assert_eq!(hits("state:estab"), ["v4_estab"]);
    assert_eq!(
        hits("state:listen,estab"),
        ["v4_listen", "v4_estab", "v6_listen"]
    );
    assert!(hits("state:fin_wait1").is_empty());
}

#[test]
fn port_terms() {
    assert_eq!(hits("port:443"), ["v4_listen", "v4_estab"]);
    assert_eq!(hits("lport:443"), ["v4_listen", "v4_estab"]);
    assert!(hits("rport:443").is_empty());
    assert_eq!(hits("rport:51000"), ["v4_estab"]);
    assert_eq!(hits("port:51000"), ["v4_estab"]);
    assert_eq!(hits("port:8000-8100"), ["time_wait", "v6_client"]);
    assert_eq!(hits("lport:8000-8100"), ["time_wait"]);
    assert_eq!(hits("rport:8100-8100"), ["v6_client"]);
    assert_eq!(hits("port:22,5432"), ["v6_close_wait", "v6_listen"]);
    // A listener's remote 0.0.0.0:0 is no peer: port 0 and low ranges skip it.
    assert!(hits("port:0").is_empty());
    assert!(hits("rport:0-1023").is_empty());
    assert_eq!(hits("port:0-1023"), ["v4_listen", "v4_estab", "v6_listen"]);
}

#[test]
fn proc_terms() {
    assert_eq!(hits("proc:nginx"), ["v4_listen", "v4_estab"]);
    assert_eq!(hits("proc:GIN"), ["v4_listen", "v4_estab"]);
    assert_eq!(hits("proc:curl"), ["v6_client"]);
    assert_eq!(
        hits("proc:nginx,curl"),
        ["v4_listen", "v4_estab", "v6_client"]
    );
    // Unknown, hidden and kernel owners match no process name.
    assert_eq!(hits("proc:n"), ["v4_listen", "v4_estab"]);
    assert!(hits("proc:nginxx").is_empty());
}

#[test]
fn pid_terms() {
    assert_eq!(hits("pid:100"), ["v4_listen"]);
    assert_eq!(hits("pid:101,4242"), ["v4_estab", "v6_client"]);
    assert!(hits("pid:0").is_empty());
}

#[test]
fn user_terms() {
    assert_eq!(hits("user:www-data"), ["v4_estab"]);
    assert_eq!(hits("user:root"), ["v4_listen"]);
    assert!(
        hits("user:ROOT").is_empty(),
        "user names are case-sensitive"
    );
    // A number matches the socket's uid, known even when the owner is hidden...
    assert_eq!(hits("user:1000"), ["v6_close_wait", "v6_client"]);
    // A TIME_WAIT socket has no uid: the kernel reports 0 for whoever made it.
    assert_eq!(hits("user:0"), ["v4_listen", "v4_estab", "v6_listen"]);
    // ...and the owning process's uid, which may differ from the socket's.
    assert_eq!(hits("user:33"), ["v4_estab"]);
    // A name needs the process: the hidden socket of uid 1000 is not alice's.
    assert_eq!(hits("user:alice"), ["v6_client"]);
}

#[test]
fn addr_terms() {
    assert_eq!(hits("addr:10.0.0.0/8"), ["v4_estab"]);
    assert_eq!(hits("laddr:10.1.2.3"), ["v4_estab"]);
    assert!(hits("raddr:10.1.2.3").is_empty());
    assert_eq!(hits("raddr:192.168.0.0/16"), ["v4_estab"]);
    assert_eq!(hits("addr:192.168.1.50"), ["v4_estab"]);
    assert_eq!(hits("addr:2001:db8::/32"), ["v6_close_wait"]);
    assert_eq!(hits("raddr:2001:db8:1::/48"), ["v6_close_wait"]);
    assert_eq!(hits("addr:::1"), ["v6_client"]);
    assert_eq!(hits("addr:[::1]"), ["v6_client"]);
    assert_eq!(hits("laddr:0.0.0.0"), ["v4_listen"]);
    assert_eq!(
        hits("addr:::"),
        ["v6_listen"],
        "the listener's [::]:0 peer is none"
    );
    assert!(hits("raddr:0.0.0.0/0").contains(&"time_wait"));
    assert!(!hits("raddr:0.0.0.0/0").contains(&"v4_listen"));
    // Host bits in a CIDR are ignored; an IPv4-mapped address is its IPv4 form.
    assert_eq!(hits("addr:10.9.9.9/8"), ["v4_estab"]);
    assert_eq!(hits("addr:::ffff:127.0.0.1"), ["time_wait"]);
    assert_eq!(hits("addr:::ffff:10.0.0.0/104"), ["v4_estab"]);
    assert_eq!(hits("addr:127.0.0.1,::1"), ["time_wait", "v6_client"]);
    // IPv4 never matches an IPv6 net and the other way round.
    assert!(hits("addr:::/0").iter().all(|n| n.starts_with("v6")));
}

#[test]
fn negation() {
    assert_eq!(
        hits("!state:listen"),
        ["v4_estab", "v6_close_wait", "time_wait", "v6_client"]
    );
    assert_eq!(hits("not state:listen"), hits("!state:listen"));
    assert_eq!(hits("NOT state:listen"), hits("!state:listen"));
    assert_eq!(hits("!!state:listen"), hits("state:listen"));
    assert_eq!(
        hits("!(state:listen | port:443)"),
        hits("!state:listen !port:443")
    );
    assert_eq!(hits("! state:listen"), hits("!state:listen"));
    // Negating an owner term includes the sockets whose owner is unknown.
    assert_eq!(
        hits("!proc:nginx"),
        ["v6_close_wait", "v6_listen", "time_wait", "v6_client"]
    );
}

#[test]
fn and_or_precedence_and_groups() {
    assert_eq!(hits("state:listen port:443"), ["v4_listen"]);
    assert_eq!(hits("state:listen and port:443"), ["v4_listen"]);
    assert_eq!(hits("state:listen AND port:443"), ["v4_listen"]);
    assert_eq!(
        hits("state:listen | port:443"),
        ["v4_listen", "v4_estab", "v6_listen"]
    );
    assert_eq!(
        hits("state:listen or port:443"),
        hits("state:listen | port:443")
    );
    assert_eq!(
        hits("state:listen || port:443"),
        hits("state:listen | port:443")
    );
    assert_eq!(
        hits("state:listen|port:443"),
        hits("state:listen | port:443")
    );
    // AND binds tighter than OR.
    let a_b_or_c = "state:listen port:22 | proc:curl";
    assert_eq!(hits(a_b_or_c), ["v6_listen", "v6_client"]);
    assert_eq!(hits(a_b_or_c), hits("(state:listen port:22) | proc:curl"));
    assert_eq!(hits("proc:curl | state:listen port:22"), hits(a_b_or_c));
    assert_eq!(hits("state:listen (port:22 | proc:curl)"), ["v6_listen"]);
    assert_eq!(hits("state:listen(port:22|proc:curl)"), ["v6_listen"]);
    assert_eq!(hits("((state:listen))"), hits("state:listen"));
    assert_eq!(
        hits("!(state:listen port:22) state:listen,estab"),
        ["v4_listen", "v4_estab"]
    );
}

#[test]
fn keys_are_case_insensitive() {
    assert_eq!(hits("STATE:listen"), hits("state:listen"));
    assert_eq!(hits("Port:443 LPORT:443"), hits("port:443"));
    assert_eq!(hits("Proc:NGINX"), hits("proc:nginx"));
    assert_eq!(hits("RAddr:192.168.1.50"), hits("raddr:192.168.1.50"));
}

#[test]
fn needs_process_only_for_owner_terms() {
    assert!(!filter("").needs_process());
    assert!(!filter("state:listen port:1 pid:3 addr:::1").needs_process());
    assert!(filter("state:listen | !proc:x").needs_process());
    assert!(filter("(user:0)").needs_process());
    // pid: needs no process table, but the owners all the same.
    assert!(filter("state:listen | pid:3").needs_owners());
    assert!(filter("!proc:x").needs_owners());
    assert!(!filter("state:listen port:1 addr:::1").needs_owners());
}

#[test]
fn from_str_is_parse() {
    let f: Filter = "state:listen".parse().expect("parses");
    assert_eq!(f.source(), "state:listen");
    assert!("nginx".parse::<Filter>().is_err());
}

// ---------------------------------------------------------------------------
// Errors.

fn error(text: &str) -> FilterError {
    match Filter::parse(text) {
        Ok(f) => panic!("{text:?} should not parse, got {f:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_error(text: &str, span: Range<usize>, message: &str) {
    let e = error(text);
    assert_eq!(e.message, message, "message for {text:?}");
    assert_eq!(e.span, span, "span for {text:?}");
}

const KEYS: &str =
    "state, port, lport, rport, proc, pid, user, addr, laddr, raddr, ns, netns, container";

#[test]
fn unknown_and_missing_keys() {
    assert_error(
        "state:listen foo:bar",
        13..20,
        &format!("unknown key \"foo\" (expected one of: {KEYS})"),
    );
    assert_error(
        ":80",
        0..3,
        &format!("missing key before \":\" (expected one of: {KEYS})"),
    );
}

#[test]
fn empty_values() {
    assert_error(
        "state:listen port:",
        13..18,
        "empty value for \"port\" (e.g. port:443)",
    );
    assert_error(
        "STATE:",
        0..6,
        "empty value for \"state\" (e.g. state:listen)",
    );
    assert_error("state:listen,", 0..13, "empty item in the list \"listen,\"");
    assert_error("port:1,,2", 0..9, "empty item in the list \"1,,2\"");
}

#[test]
fn bad_ports_and_ranges() {
    let expected =
        "(expected a number 0-65535, a range like 8000-8100 or a service name like https)";
    assert_error(
        "port:nosuchservice",
        0..18,
        "unknown service \"nosuchservice\" (not a tcp name of the services file; a port is a number 0-65535 or a range like 8000-8100)",
    );
    assert_error("lport:-5", 0..8, &format!("invalid port \"\" {expected}"));
    assert_error("rport:+5", 0..8, &format!("invalid port \"+5\" {expected}"));
    assert_error("port:70000", 0..10, "port 70000 is out of range (0-65535)");
    assert_error(
        "port:80,99999",
        0..13,
        "port 99999 is out of range (0-65535)",
    );
    assert_error(
        "port:9-3",
        0..8,
        "port range 9-3 is backwards (9 is above 3)",
    );
}

#[test]
fn unknown_state() {
    let text = "pid:1 state:closewai";
    let e = error(text);
    assert_eq!(e.span, 6..20);
    assert_eq!(e.column(), 7);
    assert_eq!(
        e.to_string(),
        "bad filter term \"state:closewai\" at column 7: unknown TCP state \"closewai\" \
         (expected one of: established, syn_sent, syn_recv, fin_wait1, fin_wait2, \
         time_wait, close, close_wait, last_ack, listen, closing)"
    );
    assert_eq!(
        e.render(text),
        format!("pid:1 state:closewai\n      ^^^^^^^^^^^^^^ {}", e.message)
    );
    assert_error(
        "state:listen,nope",
        0..17,
        "unknown TCP state \"nope\" (expected one of: established, syn_sent, syn_recv, \
         fin_wait1, fin_wait2, time_wait, close, close_wait, last_ack, listen, closing)",
    );
}

#[test]
fn bad_pids() {
    let msg = |v: &str| format!("invalid pid \"{v}\" (expected a process id number)");
    assert_error("pid:abc", 0..7, &msg("abc"));
    assert_error("pid:-1", 0..6, &msg("-1"));
    assert_error("pid:99999999999", 0..15, &msg("99999999999"));
}

#[test]
fn bad_addresses() {
    assert_error(
        "addr:10.0.0.0/33",
        0..16,
        "prefix length 33 is too long for an IPv4 address (at most 32)",
    );
    assert_error(
        "raddr:::/129",
        0..12,
        "prefix length 129 is too long for an IPv6 address (at most 128)",
    );
    assert_error(
        "addr:nonsense",
        0..13,
        "invalid address \"nonsense\" \
         (expected an IP like 10.0.0.1 or ::1, or a CIDR like 10.0.0.0/8)",
    );
    assert_error(
        "laddr:10.0.0.0/x",
        0..16,
        "invalid prefix length \"x\" in \"10.0.0.0/x\" (expected 0-32)",
    );
    assert_error(
        "addr:10.0.0.0/",
        0..14,
        "invalid prefix length \"\" in \"10.0.0.0/\" (expected 0-32)",
    );
}

#[test]
fn bare_words() {
    let keys = "state:, port:, lport:, rport:, proc:, pid:, user:, addr:, laddr:, raddr:, \
                ns:, netns:, container:";
    let msg =
        |guess: &str| format!("a term needs a key (one of: {keys}); did you mean \"{guess}\"?");
    assert_error("nginx", 0..5, &msg("proc:nginx"));
    assert_error("state:listen 443", 13..16, &msg("port:443"));
    assert_error("(listen)", 1..7, &msg("state:listen"));
    assert_error("!10.0.0.0/8", 1..11, &msg("addr:10.0.0.0/8"));
}

#[test]
fn dangling_operators() {
    assert_error("state:listen |", 13..14, "\"|\" needs a term after it");
    assert_error("state:listen OR", 13..15, "\"OR\" needs a term after it");
    assert_error("| port:1", 0..1, "\"|\" needs a term before it");
    assert_error("or port:1", 0..2, "\"or\" needs a term before it");
    assert_error("!", 0..1, "\"!\" needs a term or \"(\" after it");
    assert_error(
        "port:1 not",
        7..10,
        "\"not\" needs a term or \"(\" after it",
    );
    assert_error("and and", 0..3, "\"and\" needs a term before it");
    assert_error("port:1 and", 7..10, "\"and\" needs a term after it");
    assert_error("port:1 | | port:2", 7..8, "\"|\" needs a term after it");
    assert_error(
        "port:1 and | port:2",
        7..10,
        "\"and\" needs a term after it",
    );
    assert_error("(port:1 |)", 8..9, "\"|\" needs a term after it");
    assert_error("(!)", 1..2, "\"!\" needs a term or \"(\" after it");
    assert_error("port:1 ||", 7..9, "\"||\" needs a term after it");
}

#[test]
fn unbalanced_parentheses() {
    let open = "unmatched \"(\" (no \")\" closes it)";
    let close = "unmatched \")\" (no \"(\" opens it)";
    assert_error("(state:listen", 0..1, open);
    assert_error("port:1 (", 7..8, open);
    assert_error("((state:listen) port:1", 0..1, open);
    assert_error("(port:1 (port:2)", 0..1, open);
    assert_error("state:listen)", 12..13, close);
    assert_error(")", 0..1, close);
    assert_error("!)", 1..2, close);
    assert_error("(port:1)) port:2", 8..9, close);
    assert_error("port:1 | )", 9..10, close);
    assert_error("()", 0..2, "empty parentheses");
    assert_error("port:1 ( )", 7..10, "empty parentheses");
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let deep = "(".repeat(100_000);
    assert!(Filter::parse(&deep).is_err());
    let bangs = "!".repeat(100_000) + "port:1";
    let e = error(&bangs);
    assert_eq!(e.span, 100..101);
    assert!(e.message.starts_with("nested too deeply"), "{}", e.message);
    let ok = "(".repeat(50) + "port:1" + &")".repeat(50);
    assert_eq!(hits(&ok), hits("port:1"));
}

#[test]
fn spans_and_columns_count_characters() {
    // "é" is two bytes: the span is in bytes, the column in characters.
    let text = "proc:é foo:x";
    let e = error(text);
    assert_eq!(e.span, 8..13);
    assert_eq!(e.column(), 8);
    assert!(
        e.to_string()
            .starts_with("bad filter term \"foo:x\" at column 8: ")
    );
    assert_eq!(
        e.render(text),
        format!("proc:é foo:x\n       ^^^^^ {}", e.message)
    );
    // Control characters are blanked so that the carets stay under the term.
    let text = "port:1\tfoo:x";
    assert_eq!(
        error(text).render(text).lines().collect::<Vec<_>>(),
        [
            "port:1 foo:x",
            format!("       ^^^^^ unknown key \"foo\" (expected one of: {KEYS})").as_str(),
        ]
    );
    // Rendering against another input does not panic.
    assert!(e.render("").starts_with("\n^ "));
}

/// A connection that goes to TIME_WAIT keeps the uid it had: the kernel
/// reports every TIME_WAIT socket as uid 0, which is nobody's.
#[test]
fn time_wait_keeps_the_connections_uid_and_is_not_roots() {
    use sockscope::model::{Engine, EngineConfig, EventKind, Sample};
    use std::time::{Duration, SystemTime};
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s);
    let (a, b) = (
        "127.0.0.1:5000".parse().expect("addr"),
        "127.0.0.1:80".parse().expect("addr"),
    );
    let mut est = SocketRecord::new(TcpState::Established, a, b);
    (est.uid, est.inode, est.cookie) = (1000, 77, 5);
    let mut tw = SocketRecord::new(TcpState::TimeWait, a, b);
    tw.cookie = 5;
    let mut engine = Engine::new(EngineConfig::default());
    engine.ingest(Sample::of_sockets(at(0), vec![est]));
    let snap = engine.ingest(Sample::of_sockets(at(1), vec![tw.clone()]));
    let m = Filter::parse("user:0").expect("filter");
    assert!(!m.matches(&tw, None), "a TIME_WAIT socket is not uid 0's");
    assert_eq!(tw.known_uid(), None);
    drop(snap);
    let snap = engine.ingest(Sample::of_sockets(at(2), vec![]));
    let closed = snap
        .events
        .iter()
        .find(|e| e.kind == EventKind::Closed)
        .expect("the close");
    assert_eq!(closed.state, TcpState::TimeWait);
    assert_eq!(closed.uid, Some(1000), "the uid it had before TIME_WAIT");
}

#[test]
fn ports_can_be_named_by_the_services_file() {
    use sockscope::filter::services::Services;
    let services = Services::parse("https 443/tcp\nhttp-alt 8080/tcp webcache\nsyslog 514/udp\n");
    let f = Filter::parse_with("lport:https,http-alt | rport:webcache", &services).expect("parses");
    let s = |l: &str, r: &str| SocketRecord::new(TcpState::Established, addr(l), addr(r));
    assert!(f.matches(&s("10.0.0.1:443", "10.0.0.2:5000"), None));
    assert!(f.matches(&s("10.0.0.1:8080", "10.0.0.2:5000"), None));
    assert!(f.matches(&s("10.0.0.1:5000", "10.0.0.2:8080"), None));
    assert!(!f.matches(&s("10.0.0.1:80", "10.0.0.2:5000"), None));
    // A udp-only name is no tcp port.
    let e = Filter::parse_with("port:syslog", &services).expect_err("udp only");
    assert!(
        e.message.starts_with("unknown service \"syslog\""),
        "{}",
        e.message
    );
}
