//! Lexing and parsing of the filter language into the compiled [`Node`] tree.
//!
//! Recursive descent, one function per grammar rule, because each rule knows which
//! operator demanded the operand that is missing, and so whom to blame in the error.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

use super::{ContainerNeedle, FilterError, Net, Node, NsTerm, Pred, Side, UserNeedle};
use crate::model::TcpState;

/// The keys a term may have, with an example for the "empty value" message.
pub(super) const KEYS: [(&str, &str); 13] = [
    ("state", "state:listen"),
    ("port", "port:443"),
    ("lport", "lport:8000-8100"),
    ("rport", "rport:5432"),
    ("proc", "proc:nginx"),
    ("pid", "pid:1234"),
    ("user", "user:www-data"),
    ("addr", "addr:10.0.0.0/8"),
    ("laddr", "laddr:127.0.0.1"),
    ("raddr", "raddr:2001:db8::/32"),
    ("ns", "ns:blue"),
    ("netns", "netns:4026531840"),
    ("container", "container:3f2a9c1e04b7"),
];

/// Deeper nesting of parentheses and negations is refused, so that neither parsing
/// nor matching can exhaust the stack on hostile input.
const MAX_DEPTH: usize = 100;

/// The expression in `src`, or `None` when it has no tokens (the empty filter),
/// and its namespace terms, which its [`Pred::Netns`] name by index.
pub(super) fn parse(
    src: &str,
    services: &super::services::Services,
) -> Result<(Option<Node>, Vec<NsTerm>), FilterError> {
    let toks = lex(src);
    if toks.is_empty() {
        return Ok((None, Vec::new()));
    }
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
        parens: 0,
        ns_terms: Vec::new(),
        services,
    };
    let node = p.or()?;
    if let Some(t) = p.peek() {
        // `or` stops only at `)` or the end; here it can only be a `)`.
        return Err(p.error(t, "unmatched \")\" (no \"(\" opens it)".to_owned()));
    }
    Ok((Some(node), p.ns_terms))
}

// ---------------------------------------------------------------------------
// Lexing.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    LParen,
    RParen,
    Not,
    And,
    Or,
    Word,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '|')
}

fn lex(src: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut it = src.char_indices().peekable();
    while let Some((start, c)) = it.next() {
        let (kind, end) = match c {
            c if c.is_whitespace() => continue,
            '(' => (Kind::LParen, start + 1),
            ')' => (Kind::RParen, start + 1),
            '!' => (Kind::Not, start + 1),
            '|' => match it.next_if(|&(_, c)| c == '|') {
                Some((i, _)) => (Kind::Or, i + 1),
                None => (Kind::Or, start + 1),
            },
            _ => {
                let mut end = start + c.len_utf8();
                while let Some((i, c)) = it.next_if(|&(_, c)| !is_separator(c)) {
                    end = i + c.len_utf8();
                }
                let word = &src[start..end];
                let kind = if word.eq_ignore_ascii_case("and") {
                    Kind::And
                } else if word.eq_ignore_ascii_case("or") {
                    Kind::Or
                } else if word.eq_ignore_ascii_case("not") {
                    Kind::Not
                } else {
                    Kind::Word
                };
                (kind, end)
            }
        };
        toks.push(Tok { kind, start, end });
    }
    toks
}

// ---------------------------------------------------------------------------
// Parsing: recursive descent over the tokens, one function per grammar rule.

struct Parser<'a> {
    src: &'a str,
    /// Port names (`port:https`).
    services: &'a super::services::Services,
    toks: Vec<Tok>,
    pos: usize,
    /// Parentheses and negations currently open, against [`MAX_DEPTH`].
    depth: usize,
    /// Parentheses currently open, to tell an unmatched `)` from an empty operand.
    parens: usize,
    /// The namespace terms met so far.
    ns_terms: Vec<NsTerm>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Tok> {
        self.toks.get(self.pos).copied()
    }

    fn text(&self, t: Tok) -> &str {
        &self.src[t.start..t.end]
    }

    fn error(&self, t: Tok, message: String) -> FilterError {
        FilterError {
            message,
            span: t.start..t.end,
            term: self.text(t).to_owned(),
            column: self.src[..t.start].chars().count() + 1,
        }
    }

    fn or(&mut self) -> Result<Node, FilterError> {
        let mut items = vec![self.and()?];
        while let Some(op) = self.peek().filter(|t| t.kind == Kind::Or) {
            self.pos += 1;
            items.push(self.and_after(Some(op))?);
        }
        Ok(collapse(items, Node::Or))
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        self.and_after(None)
    }

    /// An AND chain whose first operand was demanded by the operator `after`.
    fn and_after(&mut self, after: Option<Tok>) -> Result<Node, FilterError> {
        let mut items = vec![self.unary(after)?];
        loop {
            match self.peek() {
                Some(t) if t.kind == Kind::And => {
                    self.pos += 1;
                    items.push(self.unary(Some(t))?);
                }
                Some(t) if matches!(t.kind, Kind::Word | Kind::Not | Kind::LParen) => {
                    items.push(self.unary(None)?);
                }
                _ => break,
            }
        }
        Ok(collapse(items, Node::And))
    }

    /// One operand. `after` is the operator that demanded it, which is blamed when
    /// the operand is missing; `None` at the start of the input or of a group.
    fn unary(&mut self, after: Option<Tok>) -> Result<Node, FilterError> {
        let Some(t) = self.peek() else {
            return Err(self.missing_after(after));
        };
        match t.kind {
            Kind::Word => {
                self.pos += 1;
                Ok(Node::Pred(self.term(t)?))
            }
            Kind::Not => {
                self.pos += 1;
                self.enter(t)?;
                let inner = self.unary(Some(t))?;
                self.depth -= 1;
                Ok(Node::Not(Box::new(inner)))
            }
            Kind::LParen => {
                self.pos += 1;
                match self.peek() {
                    None => {
                        return Err(
                            self.error(t, "unmatched \"(\" (no \")\" closes it)".to_owned())
                        );
                    }
                    Some(close) if close.kind == Kind::RParen => {
                        let span = Tok {
                            end: close.end,
                            ..t
                        };
                        return Err(self.error(span, "empty parentheses".to_owned()));
                    }
                    Some(_) => {}
                }
                self.enter(t)?;
                self.parens += 1;
                let inner = self.or()?;
                self.parens -= 1;
                self.depth -= 1;
                match self.peek() {
                    Some(close) if close.kind == Kind::RParen => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(self.error(t, "unmatched \"(\" (no \")\" closes it)".to_owned())),
                }
            }
            Kind::RParen if self.parens == 0 => {
                Err(self.error(t, "unmatched \")\" (no \"(\" opens it)".to_owned()))
            }
            Kind::RParen => Err(self.missing_after(after)),
            Kind::And | Kind::Or => match after {
                Some(op) => Err(self.missing_after(Some(op))),
                None => Err(self.error(t, format!("{:?} needs a term before it", self.text(t)))),
            },
        }
    }

    /// The error for an operator with nothing after it.
    fn missing_after(&self, after: Option<Tok>) -> FilterError {
        match after {
            Some(op) if op.kind == Kind::Not => self.error(
                op,
                format!("{:?} needs a term or \"(\" after it", self.text(op)),
            ),
            Some(op) => self.error(op, format!("{:?} needs a term after it", self.text(op))),
            // Unreachable in practice: an operand is only demanded without an
            // operator where the caller has checked that a token follows.
            None => {
                let end = self.src.len();
                FilterError {
                    message: "a term is missing".to_owned(),
                    span: end..end,
                    term: String::new(),
                    column: self.src.chars().count() + 1,
                }
            }
        }
    }

    fn enter(&mut self, t: Tok) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                t,
                format!("nested too deeply (more than {MAX_DEPTH} parentheses and negations)"),
            ));
        }
        Ok(())
    }

    fn term(&mut self, t: Tok) -> Result<Pred, FilterError> {
        let word = self.text(t);
        let Some((key, value)) = word.split_once(':') else {
            return Err(self.error(t, bare_word_message(word)));
        };
        let Some(&(key, example)) = KEYS.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) else {
            let what = if key.is_empty() {
                "missing key before \":\"".to_owned()
            } else {
                format!("unknown key {key:?}")
            };
            return Err(self.error(t, format!("{what} (expected one of: {})", key_list(""))));
        };
        if value.is_empty() {
            return Err(self.error(t, format!("empty value for {key:?} (e.g. {example})")));
        }
        let items = value.split(',');
        if items.clone().any(str::is_empty) {
            return Err(self.error(t, format!("empty item in the list {value:?}")));
        }
        let err = |message: String| self.error(t, message);
        let ns_term = match key {
            "ns" => Some(NsTerm::Label(items.clone().map(Box::from).collect())),
            "netns" => {
                let inodes = items.clone().map(parse_inode).collect::<Result<_, _>>();
                Some(NsTerm::Inode(inodes.map_err(err)?))
            }
            "container" => {
                let needles = items.clone().map(parse_container).collect::<Result<_, _>>();
                Some(NsTerm::Container(needles.map_err(err)?))
            }
            _ => None,
        };
        if let Some(ns_term) = ns_term {
            self.ns_terms.push(ns_term);
            return Ok(Pred::Netns(self.ns_terms.len() - 1));
        }
        let err = |message: String| self.error(t, message);
        Ok(match key {
            "state" => {
                let mut set = 0u16;
                for item in items {
                    let st = TcpState::parse(item).ok_or_else(|| err(unknown_state(item)))?;
                    set |= 1 << st.index();
                }
                Pred::State(set)
            }
            "port" | "lport" | "rport" => {
                let side = side_of(key);
                let services = self.services;
                let ranges = items
                    .map(|i| parse_port_range(i, services))
                    .collect::<Result<_, _>>();
                Pred::Port(side, ranges.map_err(err)?)
            }
            "proc" => Pred::Proc(
                items
                    .map(|i| i.to_ascii_lowercase().into_bytes().into_boxed_slice())
                    .collect(),
            ),
            "pid" => {
                let pids = items.map(|i| {
                    i.parse::<u32>()
                        .map_err(|_| format!("invalid pid {i:?} (expected a process id number)"))
                });
                Pred::Pid(pids.collect::<Result<_, _>>().map_err(err)?)
            }
            "user" => Pred::User(
                items
                    .map(|i| match i.parse::<u32>() {
                        Ok(uid) => UserNeedle::Uid(uid),
                        Err(_) => UserNeedle::Name(i.into()),
                    })
                    .collect(),
            ),
            _ => {
                // addr, laddr, raddr
                let nets = items.map(parse_net).collect::<Result<_, _>>();
                Pred::Addr(side_of(key), nets.map_err(err)?)
            }
        })
    }
}

/// A one-item list is kept bare, so `a` alone costs no extra indirection.
fn collapse(mut items: Vec<Node>, wrap: fn(Box<[Node]>) -> Node) -> Node {
    match items.pop() {
        Some(only) if items.is_empty() => only,
        Some(last) => {
            items.push(last);
            wrap(items.into_boxed_slice())
        }
        None => wrap(Box::new([])),
    }
}

fn side_of(key: &str) -> Side {
    match key.as_bytes().first() {
        Some(b'l') => Side::Local,
        Some(b'r') => Side::Remote,
        _ => Side::Either,
    }
}

fn key_list(suffix: &str) -> String {
    let keys: Vec<String> = KEYS.iter().map(|(k, _)| format!("{k}{suffix}")).collect();
    keys.join(", ")
}

fn bare_word_message(word: &str) -> String {
    let guess = if TcpState::parse(word).is_some() {
        "state"
    } else if word.parse::<u16>().is_ok() {
        "port"
    } else if parse_net(word).is_ok() {
        "addr"
    } else {
        "proc"
    };
    format!(
        "a term needs a key (one of: {}); did you mean \"{guess}:{word}\"?",
        key_list(":")
    )
}

fn unknown_state(item: &str) -> String {
    let names: Vec<String> = TcpState::ALL
        .iter()
        .map(|s| s.name().to_ascii_lowercase())
        .collect();
    format!(
        "unknown TCP state {item:?} (expected one of: {})",
        names.join(", ")
    )
}

/// A namespace inode, bare or as `[INODE]` (`net:[INODE]` without the `net:`).
fn parse_inode(item: &str) -> Result<u64, String> {
    let bare = item
        .strip_prefix('[')
        .map_or(Some(item), |i| i.strip_suffix(']'));
    let bad = || {
        format!(
            "invalid namespace inode {item:?} \
             (expected a number like 4026531840, or [4026531840] as /proc/PID/ns/net shows it)"
        )
    };
    let text = bare.filter(|b| !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()));
    match text.map(str::parse::<u64>) {
        Some(Ok(0)) => Err("namespace inode 0 names no namespace".to_owned()),
        Some(Ok(inode)) => Ok(inode),
        Some(Err(_)) => Err(format!("namespace inode {item} is out of range")),
        None => Err(bad()),
    }
}

/// A container's id prefix (4 to 64 hex digits) or its hostname or label.
fn parse_container(item: &str) -> Result<ContainerNeedle, String> {
    let hex = item.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && item.len() > 64 {
        return Err(format!(
            "container id {item:?} is too long ({} hex digits; an id has 64)",
            item.len()
        ));
    }
    Ok(ContainerNeedle {
        name: item.into(),
        id_prefix: (hex && item.len() >= 4).then(|| item.to_ascii_lowercase().into()),
    })
}

fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid port {text:?} (expected a number 0-65535, a range like 8000-8100 or a service name like https)"
        ));
    }
    text.parse()
        .map_err(|_| format!("port {text} is out of range (0-65535)"))
}

fn parse_port_range(
    item: &str,
    services: &super::services::Services,
) -> Result<(u16, u16), String> {
    // A name (`https`, `http-alt`): anything but digits and dashes.
    if item.bytes().any(|b| !b.is_ascii_digit() && b != b'-') {
        return match services.port(item) {
            Some(p) => Ok((p, p)),
            None if item.bytes().any(|b| b.is_ascii_alphabetic()) => Err(format!(
                "unknown service {item:?} (not a tcp name of the services file; a port is a number 0-65535 or a range like 8000-8100)"
            )),
            None => parse_port(item).map(|p| (p, p)),
        };
    }
    match item.split_once('-') {
        None => parse_port(item).map(|p| (p, p)),
        Some((lo, hi)) => {
            let (lo, hi) = (parse_port(lo)?, parse_port(hi)?);
            if lo > hi {
                return Err(format!(
                    "port range {item} is backwards ({lo} is above {hi})"
                ));
            }
            Ok((lo, hi))
        }
    }
}

/// An IP address or CIDR; `[::1]` brackets are allowed, and an IPv4-mapped IPv6
/// address is taken as the IPv4 address, since the model stores sockets unmapped.
fn parse_net(item: &str) -> Result<Net, String> {
    let (addr, prefix) = match item.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (item, None),
    };
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = bare.parse().map_err(|_| {
        format!(
            "invalid address {addr:?} \
             (expected an IP like 10.0.0.1 or ::1, or a CIDR like 10.0.0.0/8)"
        )
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match prefix {
        None => max,
        Some(p) => {
            let bad = || format!("invalid prefix length {p:?} in {item:?} (expected 0-{max})");
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let len: u8 = p.parse().map_err(|_| bad())?;
            if len > max {
                let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
                return Err(format!(
                    "prefix length {len} is too long for an {family} address (at most {max})"
                ));
            }
            len
        }
    };
    let net = IpNet::new(ip, len).map_err(|e| format!("invalid CIDR {item:?}: {e}"))?;
    Ok(net_of(unmap_net(net)))
}

fn unmap_net(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else { return net };
    let addr: Ipv6Addr = v6.addr();
    match (addr.to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
        (Some(v4), Some(len)) => IpNet::new(IpAddr::V4(v4), len).unwrap_or(net),
        _ => net,
    }
}

/// The masks of `net`, host bits cleared, so that a match is one AND and compare.
fn net_of(net: IpNet) -> Net {
    match net {
        IpNet::V4(n) => {
            let mask = u32::from(n.netmask());
            Net::V4 {
                bits: u32::from(n.addr()) & mask,
                mask,
            }
        }
        IpNet::V6(n) => {
            let mask = u128::from(n.netmask());
            Net::V6 {
                bits: u128::from(n.addr()) & mask,
                mask,
            }
        }
    }
}
