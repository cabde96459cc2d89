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
//!         | "user" | "addr" | "laddr" | "raddr" ;
//! ```
//!
//! Keys and the words `and`, `or`, `not` are case-insensitive; values are not
//! quoted, so they end at a space, `(`, `)` or `|`. What the terms test:
//!
//! - `state:` any of the listed states, spelt as [`TcpState::parse`] accepts.
//! - `port:`/`lport:`/`rport:` a port or inclusive range (`8000-8100`). A
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
//! Owner terms match nothing when the owner is unknown, so `!proc:x` includes
//! those sockets.
//!
//! [`TcpState::parse`]: crate::model::TcpState::parse

mod parse;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::str::FromStr;

use crate::model::{ProcessInfo, SocketRecord};

/// A parsed filter expression. The default is the empty filter, which matches all.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    source: String,
    root: Option<Node>,
}

impl Filter {
    /// Parses `text`; empty or all-whitespace text is the empty filter.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        Ok(Filter {
            source: text.to_owned(),
            root: parse::parse(text)?,
        })
    }

    /// Whether `socket`, owned by `process` (`None` when the owner is not known),
    /// passes the filter.
    pub fn matches(&self, socket: &SocketRecord, process: Option<&ProcessInfo>) -> bool {
        self.root.as_ref().is_none_or(|n| n.eval(socket, process))
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
        let mut line = String::with_capacity(input.len());
        let mut carets = String::new();
        for (i, c) in input.char_indices() {
            line.push(if crate::escape::needs_escape(c) {
                ' '
            } else {
                c
            });
            if i < self.span.start {
                carets.push(' ');
            } else if i < self.span.end {
                carets.push('^');
            }
        }
        if !carets.ends_with('^') {
            // A span at (or past) the end of the input still gets a caret.
            carets.push('^');
        }
        format!(
            "{line}\n{carets} {}",
            crate::escape::Printable(&self.message)
        )
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
    fn eval(&self, s: &SocketRecord, p: Option<&ProcessInfo>) -> bool {
        match self {
            Node::Pred(pred) => pred.eval(s, p),
            Node::Not(n) => !n.eval(s, p),
            Node::And(ns) => ns.iter().all(|n| n.eval(s, p)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(s, p)),
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
    fn eval(&self, s: &SocketRecord, p: Option<&ProcessInfo>) -> bool {
        match self {
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
                UserNeedle::Uid(uid) => s.uid == *uid || p.is_some_and(|p| p.uid == *uid),
            }),
            Pred::Addr(side, nets) => {
                on_side(s, *side, |a| nets.iter().any(|n| n.contains(a.ip())))
            }
        }
    }
}
