//! The filter language shared by `sockscope snapshot --filter` and the TUI's `/` line.
//!
//! One parser serves both so that a filter means the same thing everywhere. The TUI
//! re-parses on every keystroke, so parsing is a single linear pass and every error
//! carries the byte span of the term at fault, for a caret under it. A frame may
//! test 100k+ sockets, so [`Filter::parse`] does all the work that can be done once
//! (state sets as bit masks, CIDRs as masks, lowercased needles) and
//! [`Filter::matches`] never allocates.
//!
//! A bare word is an error rather than a search over everything: a filter that
//! silently matched every socket would look like it worked.
//!
//! ```text
//! filter  = [ or ] ;                          (* empty: matches every socket *)
//! or      = and { ( "|" | "||" | "or" ) and } ;
//! and     = unary { [ "and" ] unary } ;       (* juxtaposition is AND *)
//! unary   = ( "!" | "not" ) unary | "(" or ")" | term ;
//! term    = key ":" value { "," value } ;     (* a list means any of the values *)
//! key     = "state" | "port" | "lport" | "rport" | "proc" | "pid"
//!         | "user" | "addr" | "laddr" | "raddr" | "ns" | "netns" | "container" ;
//! ```
//!
//! Keys and the words `and`, `or`, `not` are case-insensitive; values are not
//! quoted, so they end at a space, `(`, `)` or `|`. What the terms test:
//!
//! - `state:` any of the listed states, spelt as [`TcpState::parse`] accepts.
//! - `port:`/`lport:`/`rport:` a port or inclusive range (`8000-8100`), or a
//!   service name of the services file (`port:https`, see [`services`]). A
//!   listener's remote `0.0.0.0:0` / `[::]:0` is "no peer" and matches no remote
//!   term, or `port:0-1023` would catch every listener; `addr:`/`raddr:` likewise.
//! - `proc:` an ASCII case-insensitive substring of the process name (`comm`).
//! - `pid:` the pid the socket's owner record names.
//! - `user:NAME` the owning process's user name; it needs the process, as the
//!   model has no uid-to-name table. `user:UID` (a number) matches the socket's
//!   uid, known even when the owner is hidden, or the owning process's uid, which
//!   differs for a socket a root parent opened for an unprivileged worker.
//! - `addr:`/`laddr:`/`raddr:` an IP or CIDR; an IPv4-mapped IPv6 one is taken as
//!   the IPv4 one, as the model stores sockets unmapped.
//!
//! - `ns:LABEL` the socket's network namespace by its label (`host`, an `ip
//!   netns` name, ...), exact and case-sensitive. A label with a space or a
//!   comma cannot be written: `container:` or `netns:` names that namespace.
//! - `netns:INODE` (or `netns:[INODE]`, as `/proc/PID/ns/net` shows it) the
//!   namespace by its inode.
//! - `container:ID` a container's namespace by its id: 4 to 64 hex digits are a
//!   prefix of the id (case-insensitive); any value is also taken as the
//!   container's hostname or label, exact.
//!
//! Owner terms match nothing when the owner is unknown, so `!proc:x` includes
//! those sockets.
//!
//! The namespace terms are about a sample's namespaces ([`NetnsInfo`]):
//! [`Filter::in_namespaces`] resolves them once per sample into sets of
//! [`NetnsId`]s, and its [`Matcher`] tests sockets against those sets.
//! [`Filter::matches`] takes the sample to describe no namespace (every socket
//! in [`NetnsId::OWN`], labelled `host`, inode unknown).
//!
//! [`TcpState::parse`]: crate::model::TcpState::parse

mod parse;
pub mod services;

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::str::FromStr;

use crate::model::{NetnsId, NetnsInfo, NetnsKind, ProcessInfo, SocketRecord};

/// A parsed filter expression. The default is the empty filter, which matches all.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    source: String,
    root: Option<Node>,
    /// The namespace terms, by the slot their [`Pred::Netns`] names.
    ns_terms: Box<[NsTerm]>,
    /// Them resolved against a sample that describes no namespace.
    own_sets: Box<[NsSet]>,
}

/// The namespaces one namespace term selects, sorted.
type NsSet = Box<[NetnsId]>;

impl Filter {
    /// Parses `text`; empty or all-whitespace text is the empty filter.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        Filter::parse_with(text, services::global())
    }

    /// [`Filter::parse`] with `services` for the port names (`port:https`).
    pub fn parse_with(text: &str, services: &services::Services) -> Result<Filter, FilterError> {
        let (root, ns_terms) = parse::parse(text, services)?;
        let own_sets = resolve(&ns_terms, &[]);
        Ok(Filter {
            source: text.to_owned(),
            root,
            ns_terms: ns_terms.into_boxed_slice(),
            own_sets,
        })
    }

    /// Whether this filter selects within what `earlier` selects for being
    /// `earlier` with more terms after it (`state:estab`, then `state:estab
    /// port:80`): its text is `earlier`'s, whitespace, then a filter that
    /// parses alone, and neither it nor `earlier` is an `or` at the top (a
    /// juxtaposition is an AND). Conservative: a `false` only costs a build. Then `earlier`'s selection tested against
    /// this filter is this filter's selection.
    pub fn refines(&self, earlier: &Filter) -> bool {
        if earlier.is_empty() {
            return true;
        }
        let Some(rest) = self.source.strip_prefix(earlier.source.as_str()) else {
            return false;
        };
        let top_or = |f: &Filter| matches!(f.root, Some(Node::Or(_)));
        rest.starts_with(char::is_whitespace)
            && !top_or(self)
            && !top_or(earlier)
            // ("a" then "a b or c" is an `or` at the top; "port:80" then
            // "port:80 ,443" has no filter after the space.)
            && Filter::parse(rest).is_ok_and(|extra| !extra.is_empty())
    }

    /// Whether `socket`, owned by `process` (`None` when the owner is not known),
    /// passes the filter, in a sample that describes no namespace: see
    /// [`Filter::in_namespaces`] for one that does.
    pub fn matches(&self, socket: &SocketRecord, process: Option<&ProcessInfo>) -> bool {
        self.root
            .as_ref()
            .is_none_or(|n| n.eval(socket, process, &self.own_sets))
    }

    /// The filter for the sockets of a sample whose namespaces are
    /// `namespaces` (`Sample::namespaces`): its namespace terms are resolved
    /// here, once, so that matching stays a lookup per socket.
    pub fn in_namespaces(&self, namespaces: &[NetnsInfo]) -> Matcher<'_> {
        let sets = if self.ns_terms.is_empty() || namespaces.is_empty() {
            Cow::Borrowed(&*self.own_sets)
        } else {
            Cow::Owned(resolve(&self.ns_terms, namespaces).into_vec())
        };
        Matcher { filter: self, sets }
    }

    /// Whether the filter has a namespace term (`ns:`, `netns:`, `container:`).
    pub fn needs_namespaces(&self) -> bool {
        !self.ns_terms.is_empty()
    }

    /// Whether this is the "no filter" case, which matches every socket.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The text the filter was parsed from, as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the result of [`Filter::matches`] can depend on `process`. When it
    /// cannot, callers may skip looking the owner up and pass `None`.
    pub fn needs_process(&self) -> bool {
        self.root.as_ref().is_some_and(Node::needs_process)
    }

    /// Whether matching needs the sockets' owners (`pid:` as well as the terms
    /// that need the process): without the owner lookup they match nothing.
    pub fn needs_owners(&self) -> bool {
        self.root.as_ref().is_some_and(Node::needs_owners)
    }
}

/// A [`Filter`] with its namespace terms resolved against one sample's
/// namespaces ([`Filter::in_namespaces`]).
#[derive(Clone, Debug)]
pub struct Matcher<'a> {
    filter: &'a Filter,
    sets: Cow<'a, [NsSet]>,
}

impl Matcher<'_> {
    /// Whether `socket`, owned by `process` (`None` when the owner is not
    /// known), passes the filter.
    pub fn matches(&self, socket: &SocketRecord, process: Option<&ProcessInfo>) -> bool {
        self.filter
            .root
            .as_ref()
            .is_none_or(|n| n.eval(socket, process, &self.sets))
    }

    /// Whether this is the empty filter, which matches every socket.
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
    }

    /// See [`Filter::needs_process`].
    pub fn needs_process(&self) -> bool {
        self.filter.needs_process()
    }
}

/// What each namespace term selects among `namespaces`; none described is the
/// own namespace alone, labelled `host`.
fn resolve(terms: &[NsTerm], namespaces: &[NetnsInfo]) -> Box<[NsSet]> {
    if terms.is_empty() {
        return Box::new([]);
    }
    let own;
    let namespaces = if namespaces.is_empty() {
        own = [NetnsInfo {
            id: NetnsId::OWN,
            label: "host".to_owned(),
            kind: NetnsKind::Host,
            sampled: true,
            ..NetnsInfo::default()
        }];
        &own[..]
    } else {
        namespaces
    };
    terms
        .iter()
        .map(|t| {
            let mut ids: Vec<NetnsId> = namespaces
                .iter()
                .filter(|n| t.selects(n))
                .map(|n| n.id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_boxed_slice()
        })
        .collect()
}

/// The keys a term may have, in the order errors list them (for a help screen).
pub fn keys() -> impl Iterator<Item = &'static str> {
    parse::KEYS.iter().map(|(k, _)| *k)
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Filter, FilterError> {
        Filter::parse(text)
    }
}

/// Why a filter did not parse, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// What is wrong with the term, without the term's position.
    pub message: String,
    /// Byte range of the offending term (or operator, or parenthesis) in the input.
    pub span: Range<usize>,
    term: String,
    column: usize,
}

impl FilterError {
    /// The input, then a caret line under the offending term followed by the
    /// message, for a terminal. Control characters and bidi controls in the input
    /// are shown as spaces so that the carets stay aligned.
    pub fn render(&self, input: &str) -> String {
        let line: String = input
            .chars()
            .map(|c| {
                if crate::escape::needs_escape(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        format!(
            "{line}\n{} {}",
            self.carets(input),
            crate::escape::Printable(&self.message)
        )
    }

    /// The line under `input` that marks the offending term: spaces up to
    /// it, a `^` under each of its characters (one at the end for a span at
    /// or past the end of the input).
    pub fn carets(&self, input: &str) -> String {
        let mut carets = String::new();
        for (i, _) in input.char_indices() {
            if i < self.span.start {
                carets.push(' ');
            } else if i < self.span.end {
                carets.push('^');
            }
        }
        if !carets.ends_with('^') {
            carets.push('^');
        }
        carets
    }

    /// 1-based column (in characters) where the offending term starts.
    pub fn column(&self) -> usize {
        self.column
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad filter term {:?} at column {}: {}",
            self.term, self.column, self.message
        )
    }
}

impl std::error::Error for FilterError {}

// ---------------------------------------------------------------------------
// The compiled expression.

#[derive(Clone, Debug)]
enum Node {
    Pred(Pred),
    Not(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
}

impl Node {
    fn eval(&self, s: &SocketRecord, p: Option<&ProcessInfo>, sets: &[NsSet]) -> bool {
        match self {
            Node::Pred(pred) => pred.eval(s, p, sets),
            Node::Not(n) => !n.eval(s, p, sets),
            Node::And(ns) => ns.iter().all(|n| n.eval(s, p, sets)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(s, p, sets)),
        }
    }

    fn needs_process(&self) -> bool {
        match self {
            Node::Pred(pred) => matches!(pred, Pred::Proc(_) | Pred::User(_)),
            Node::Not(n) => n.needs_process(),
            Node::And(ns) | Node::Or(ns) => ns.iter().any(Node::needs_process),
        }
    }

    fn needs_owners(&self) -> bool {
        match self {
            Node::Pred(pred) => matches!(pred, Pred::Proc(_) | Pred::User(_) | Pred::Pid(_)),
            Node::Not(n) => n.needs_owners(),
            Node::And(ns) | Node::Or(ns) => ns.iter().any(Node::needs_owners),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Either,
    Local,
    Remote,
}

/// One term; a list value (`state:listen,estab`) is one term matching any item.
#[derive(Clone, Debug)]
enum Pred {
    /// Bit `index()` set for each accepted state.
    State(u16),
    /// Inclusive port ranges.
    Port(Side, Box<[(u16, u16)]>),
    /// ASCII-lowercased needles.
    Proc(Box<[Box<[u8]>]>),
    Pid(Box<[u32]>),
    User(Box<[UserNeedle]>),
    Addr(Side, Box<[Net]>),
    /// A namespace term: the index of its [`NsTerm`] (and of its resolved set).
    Netns(usize),
}

/// A namespace term, to resolve against a sample's namespaces.
#[derive(Clone, Debug)]
enum NsTerm {
    /// `ns:`: labels, exact.
    Label(Box<[Box<str>]>),
    /// `netns:`: inodes.
    Inode(Box<[u64]>),
    /// `container:`: ids or names.
    Container(Box<[ContainerNeedle]>),
}

#[derive(Clone, Debug)]
struct ContainerNeedle {
    /// As written: a hostname or label.
    name: Box<str>,
    /// Lowercased, when it can be an id prefix (4 to 64 hex digits).
    id_prefix: Option<Box<str>>,
}

/// Whether the container id `id` (the short one the model keeps) and the
/// needle `pre` agree over the shorter of the two: a prefix of the short id,
/// or the full id of which the short one is the start.
fn same_id(id: &str, pre: &str) -> bool {
    let k = id.len().min(pre.len());
    k >= 4
        && id
            .get(..k)
            .zip(pre.get(..k))
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
}

impl NsTerm {
    fn selects(&self, n: &NetnsInfo) -> bool {
        match self {
            NsTerm::Label(labels) => labels.iter().any(|l| **l == *n.label),
            NsTerm::Inode(inodes) => n.inode != 0 && inodes.contains(&n.inode),
            NsTerm::Container(needles) => n.container.as_deref().is_some_and(|id| {
                needles.iter().any(|c| {
                    c.id_prefix.as_deref().is_some_and(|pre| same_id(id, pre))
                        || *c.name == *n.label
                        || n.hostname.as_deref() == Some(&*c.name)
                })
            }),
        }
    }
}

#[derive(Clone, Debug)]
enum UserNeedle {
    Name(Box<str>),
    Uid(u32),
}

/// A CIDR as a mask over the address bits, so that a test is one AND and compare.
#[derive(Clone, Copy, Debug)]
enum Net {
    V4 { bits: u32, mask: u32 },
    V6 { bits: u128, mask: u128 },
}

impl Net {
    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4 { bits, mask }, IpAddr::V4(a)) => u32::from(a) & mask == bits,
            (Net::V6 { bits, mask }, IpAddr::V6(a)) => u128::from(a) & mask == bits,
            _ => false,
        }
    }
}

/// The remote end, or `None` when there is no peer (a listener's `0.0.0.0:0`).
fn peer(s: &SocketRecord) -> Option<SocketAddr> {
    let r = s.remote;
    (r.port() != 0 || !r.ip().is_unspecified()).then_some(r)
}

fn on_side(s: &SocketRecord, side: Side, test: impl Fn(SocketAddr) -> bool) -> bool {
    match side {
        Side::Local => test(s.local),
        Side::Remote => peer(s).is_some_and(&test),
        Side::Either => test(s.local) || peer(s).is_some_and(&test),
    }
}

/// ASCII case-insensitive substring test; `needle` is already lowercase.
fn contains_folded(hay: &str, needle: &[u8]) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl Pred {
    fn eval(&self, s: &SocketRecord, p: Option<&ProcessInfo>, sets: &[NsSet]) -> bool {
        match self {
            Pred::Netns(slot) => sets
                .get(*slot)
                .is_some_and(|set| set.binary_search(&s.netns).is_ok()),
            Pred::State(set) => set & (1 << s.state.index()) != 0,
            Pred::Port(side, ranges) => on_side(s, *side, |a| {
                let port = a.port();
                ranges.iter().any(|&(lo, hi)| lo <= port && port <= hi)
            }),
            Pred::Proc(needles) => {
                p.is_some_and(|p| needles.iter().any(|n| contains_folded(&p.name, n)))
            }
            Pred::Pid(pids) => s.owner.pid().is_some_and(|pid| pids.contains(&pid)),
            Pred::User(users) => users.iter().any(|u| match u {
                UserNeedle::Name(name) => p.is_some_and(|p| *p.user == **name),
                UserNeedle::Uid(uid) => {
                    s.known_uid() == Some(*uid) || p.is_some_and(|p| p.uid == *uid)
                }
            }),
            Pred::Addr(side, nets) => {
                on_side(s, *side, |a| nets.iter().any(|n| n.contains(a.ip())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_refines_the_one_whose_text_it_extends_with_more_terms() {
        let f = |t: &str| Filter::parse(t).expect(t);
        assert!(f("state:estab").refines(&f("")));
        assert!(f("state:estab port:80").refines(&f("state:estab")));
        assert!(f("state:estab (port:80 or port:443)").refines(&f("state:estab")));
        // Conservative: an `and` word first is not taken apart (built again).
        assert!(!f("state:estab and port:80").refines(&f("state:estab")));
        assert!(f("state:estab !proc:java").refines(&f("state:estab")));
        // Not a refinement: an `or`, a list grown, another term, no space.
        assert!(!f("state:estab or port:80").refines(&f("state:estab")));
        assert!(!f("port:80 | port:443").refines(&f("port:80")));
        assert!(!f("state:estab port:80").refines(&f("state:estab or port:22")));
        assert!(!f("port:80,443").refines(&f("port:80")));
        assert!(!f("port:8080").refines(&f("port:80")));
        assert!(!f("port:443 state:estab").refines(&f("state:estab")));
        assert!(
            !f("state:estab").refines(&f("state:estab")),
            "nothing added"
        );
    }
    use crate::model::TcpState;

    fn ns(id: u32, inode: u64, label: &str) -> NetnsInfo {
        NetnsInfo {
            id: NetnsId(id),
            inode,
            label: label.to_owned(),
            kind: NetnsKind::Named,
            sampled: true,
            ..NetnsInfo::default()
        }
    }

    fn namespaces() -> Vec<NetnsInfo> {
        let mut docker = ns(2, 4_026_532_999, "docker 3f2a9c1e04b7");
        docker.kind = NetnsKind::Container;
        docker.container = Some("3f2a9c1e04b7".to_owned());
        docker.runtime = Some("docker".to_owned());
        docker.hostname = Some("web".to_owned());
        let mut host = ns(0, 4_026_531_840, "host");
        host.kind = NetnsKind::Host;
        vec![host, ns(1, 4_026_532_100, "blue"), docker]
    }

    fn socket(netns: u32) -> SocketRecord {
        let mut s = SocketRecord::new(
            TcpState::Listen,
            "0.0.0.0:8080".parse().expect("address"),
            "0.0.0.0:0".parse().expect("address"),
        );
        s.netns = NetnsId(netns);
        s
    }

    /// The namespaces (by id) whose socket `text` selects.
    fn hits(text: &str) -> Vec<u32> {
        let f = Filter::parse(text).expect("parses");
        let m = f.in_namespaces(&namespaces());
        (0..4).filter(|&i| m.matches(&socket(i), None)).collect()
    }

    #[test]
    fn ns_selects_by_label_exactly() {
        assert_eq!(hits("ns:blue"), [1]);
        assert_eq!(hits("ns:Blue"), [] as [u32; 0], "labels are case-sensitive");
        assert_eq!(hits("ns:blu"), [] as [u32; 0], "and whole");
        assert_eq!(hits("ns:host,blue"), [0, 1]);
        assert_eq!(
            hits("!ns:host"),
            [1, 2, 3],
            "an unknown namespace is not host"
        );
        assert_eq!(hits("NS:blue lport:8080"), [1]);
        assert_eq!(hits("ns:blue lport:80"), [] as [u32; 0]);
    }

    #[test]
    fn netns_selects_by_inode_bare_or_bracketed() {
        assert_eq!(hits("netns:4026532100"), [1]);
        assert_eq!(hits("netns:[4026532999]"), [2]);
        assert_eq!(hits("netns:[4026531840],4026532100"), [0, 1]);
        assert_eq!(hits("netns:12345"), [] as [u32; 0]);
    }

    #[test]
    fn container_selects_by_id_prefix_or_name() {
        assert_eq!(hits("container:3f2a"), [2]);
        assert_eq!(hits("container:3F2A9C1E04B7"), [2], "hex in either case");
        let full = format!("container:3f2a9c1e04b7{}", "0".repeat(52));
        assert_eq!(hits(&full), [2], "the full id of the short one");
        assert_eq!(hits("container:3f2b"), [] as [u32; 0]);
        assert_eq!(
            hits("container:3f2"),
            [] as [u32; 0],
            "3 digits are no prefix"
        );
        assert_eq!(hits("container:web"), [2], "its hostname");
        assert_eq!(hits("container:blue"), [] as [u32; 0], "not a container");
    }

    #[test]
    fn without_namespaces_every_socket_is_in_host() {
        let f = Filter::parse("ns:host").expect("parses");
        assert!(f.matches(&socket(0), None));
        assert!(!f.matches(&socket(1), None));
        assert!(f.in_namespaces(&[]).matches(&socket(0), None));
        let f = Filter::parse("netns:4026531840 | container:3f2a").expect("parses");
        assert!(!f.matches(&socket(0), None), "no inode, no container known");
        assert!(f.needs_namespaces());
        assert!(!Filter::parse("lport:1").expect("parses").needs_namespaces());
        let plain = Filter::parse("lport:8080").expect("parses");
        assert!(plain.in_namespaces(&namespaces()).matches(&socket(3), None));
    }

    #[test]
    fn bad_namespace_terms_say_why() {
        let err = |text: &str| Filter::parse(text).expect_err(text).message;
        assert_eq!(
            err("netns:abc"),
            "invalid namespace inode \"abc\" (expected a number like 4026531840, \
             or [4026531840] as /proc/PID/ns/net shows it)"
        );
        assert!(err("netns:[123").starts_with("invalid namespace inode \"[123\""));
        assert_eq!(err("netns:0"), "namespace inode 0 names no namespace");
        assert_eq!(
            err("netns:99999999999999999999"),
            "namespace inode 99999999999999999999 is out of range"
        );
        assert_eq!(
            err(&format!("container:{}", "a".repeat(65))),
            "container id \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" \
             is too long (65 hex digits; an id has 64)"
        );
        assert_eq!(err("ns:"), "empty value for \"ns\" (e.g. ns:blue)");
        let e = Filter::parse("state:listen netns:x").expect_err("bad inode");
        assert_eq!((e.span.clone(), e.column()), (13..20, 14));
    }
}
