//! The one table of key bindings. It gives the defaults (declared on each
//! [`Action`]), takes the config file's overrides (refusing a key bound to two
//! actions), answers which action a key press means, and writes the help
//! screen and the README's key table, so that the help can never disagree with
//! the bindings.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// A key with its modifiers, as bindings name it (`q`, `G`, `ctrl-c`, `enter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    /// Only CONTROL and ALT for characters (the character itself says shift);
    /// SHIFT too for other keys.
    mods: KeyModifiers,
}

impl Key {
    /// The key of a press, normalised as bindings are.
    pub fn of(event: &KeyEvent) -> Key {
        let mut mods =
            event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match event.code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                // Terminals report ctrl-letters lower case; a bound `ctrl-C` is the same key.
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }

    /// Parses a binding: a character (`q`, `G`, `?`), a named key (`enter`, `esc`,
    /// `tab`, `shift-tab`, `space`, `backspace`, `up`, `down`, `left`, `right`,
    /// `pageup`, `pagedown`, `home`, `end`, `delete`, `f1`..`f12`), with `ctrl-`,
    /// `alt-` or `shift-` before it.
    pub fn parse(text: &str) -> Result<Key, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") && rest.len() > 5 {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") && rest.len() > 4 {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") && rest.len() > 6 {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            mods |= m;
            rest = &rest[len..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_control() => {
                let c = if mods.contains(KeyModifiers::SHIFT) {
                    c.to_ascii_uppercase()
                } else {
                    c
                };
                KeyCode::Char(c)
            }
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pageup" | "pgup" => KeyCode::PageUp,
                "pagedown" | "pgdn" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                f if f.len() >= 2 && f.starts_with('f') => match f[1..].parse::<u8>() {
                    Ok(n @ 1..=12) => KeyCode::F(n),
                    _ => return Err(format!("unknown key `{text}`")),
                },
                _ => return Err(format!("unknown key `{text}`")),
            },
        };
        Ok(Key::of(&KeyEvent::new(code, mods)))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Key → action, and action → its keys.
#[derive(Clone, Debug)]
pub struct Keymap {
    by_key: HashMap<Key, Action>,
    /// Each action's keys, in the help screen's order.
    by_action: Vec<(Action, Vec<Key>)>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::with_overrides(&BTreeMap::new()).unwrap_or_else(|e| {
            // The defaults are checked by a test; this cannot happen in a build
            // that passed it.
            panic!("the default key bindings are inconsistent: {e}")
        })
    }
}

/// Why a `[keys]` table is refused; [`KeymapError::action`] names the action
/// whose line the config file's error points at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeymapError {
    #[error("unknown action `{0}`")]
    UnknownAction(String),
    #[error("{action}: {reason}")]
    BadKey {
        action: &'static str,
        reason: String,
    },
    #[error("quit: needs at least one key")]
    NoQuitKey,
    #[error("key `{key}` is bound to both `{first}` and `{second}`")]
    Conflict {
        key: String,
        first: &'static str,
        second: &'static str,
    },
}

impl KeymapError {
    /// The action the error is about: the one named, or of two in conflict
    /// the later (whose binding the user most likely just wrote).
    pub fn action(&self) -> Option<&str> {
        match self {
            KeymapError::UnknownAction(a) => Some(a),
            KeymapError::BadKey { action, .. } => Some(action),
            KeymapError::NoQuitKey => Some("quit"),
            KeymapError::Conflict { second, .. } => Some(second),
        }
    }
}

impl Keymap {
    /// The defaults with some actions' keys replaced: `overrides` maps an action's
    /// config name to its new keys (an empty list unbinds it). Errors name the
    /// offending action or key.
    pub fn with_overrides(
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> Result<Keymap, KeymapError> {
        for name in overrides.keys() {
            if Action::from_name(name).is_none() {
                return Err(KeymapError::UnknownAction(name.clone()));
            }
        }
        let mut by_action = Vec::with_capacity(Action::ALL.len());
        for &action in Action::ALL {
            let keys: Vec<Key> = match overrides.get(action.name()) {
                Some(user) => user
                    .iter()
                    .map(|k| {
                        Key::parse(k).map_err(|reason| KeymapError::BadKey {
                            action: action.name(),
                            reason,
                        })
                    })
                    .collect::<Result<_, _>>()?,
                None => action
                    .default_keys()
                    .map(|k| {
                        Key::parse(k).map_err(|reason| KeymapError::BadKey {
                            action: action.name(),
                            reason,
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            by_action.push((action, keys));
        }
        // In raw mode ctrl-c is a key like any other: without a quit key only a
        // signal could end the screen.
        if by_action
            .iter()
            .any(|(a, k)| *a == Action::Quit && k.is_empty())
        {
            return Err(KeymapError::NoQuitKey);
        }
        let mut by_key = HashMap::new();
        for (action, keys) in &by_action {
            for key in keys {
                if let Some(other) = by_key.insert(*key, *action)
                    && other != *action
                {
                    return Err(KeymapError::Conflict {
                        key: key.to_string(),
                        first: other.name(),
                        second: action.name(),
                    });
                }
            }
        }
        Ok(Keymap { by_key, by_action })
    }

    /// The action a key press means, if any.
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.by_key.get(&Key::of(event)).copied()
    }

    /// The keys bound to `action` (maybe none).
    pub fn keys(&self, action: Action) -> &[Key] {
        self.by_action
            .iter()
            .find(|(a, _)| *a == action)
            .map_or(&[], |(_, k)| k.as_slice())
    }

    /// The first key of `action`, for hints ("? help"); `-` when unbound.
    pub fn hint(&self, action: Action) -> String {
        self.keys(action)
            .first()
            .map_or_else(|| "-".to_string(), Key::to_string)
    }

    /// (keys, what they do) for every action, in order: the help screen.
    pub fn help_rows(&self) -> Vec<(String, &'static str)> {
        self.by_action
            .iter()
            .map(|(action, keys)| {
                let keys: Vec<String> = keys.iter().map(Key::to_string).collect();
                let keys = if keys.is_empty() {
                    "(unbound)".to_string()
                } else {
                    keys.join(" ")
                };
                (keys, action.describe())
            })
            .collect()
    }

    /// The README's key table (Markdown), with each action's config name.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from("| keys | action | config name |\n|---|---|---|\n");
        for (action, keys) in &self.by_action {
            let keys: Vec<String> = keys
                .iter()
                .map(|k| format!("`{}`", k.to_string().replace('|', "\\|")))
                .collect();
            out.push_str(&format!(
                "| {} | {} | `{}` |\n",
                keys.join(" "),
                action.describe(),
                action.name()
            ));
        }
        out
    }

    /// The default bindings as the config file's `[keys]` lines.
    pub fn default_config_lines() -> Vec<String> {
        Action::ALL
            .iter()
            .map(|action| {
                let keys: Vec<String> = action.default_keys().map(|k| format!("{k:?}")).collect();
                format!("# {} = [{}]", action.name(), keys.join(", "))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn every_action_has_a_default_key_and_none_is_shared() {
        let map = Keymap::default();
        for &action in Action::ALL {
            assert!(!map.keys(action).is_empty(), "{action:?} has no key");
        }
    }

    #[test]
    fn presses_map_to_actions_as_terminals_send_them() {
        let map = Keymap::default();
        let cases = [
            (press(KeyCode::Char('q'), KeyModifiers::NONE), Action::Quit),
            (
                press(KeyCode::Char('c'), KeyModifiers::CONTROL),
                Action::Quit,
            ),
            (
                press(KeyCode::Char('G'), KeyModifiers::SHIFT),
                Action::Bottom,
            ),
            (press(KeyCode::Char('?'), KeyModifiers::SHIFT), Action::Help),
            (
                press(KeyCode::BackTab, KeyModifiers::SHIFT),
                Action::PrevView,
            ),
            (press(KeyCode::Char(' '), KeyModifiers::NONE), Action::Pause),
            (press(KeyCode::Enter, KeyModifiers::NONE), Action::Drill),
            (
                press(KeyCode::Char('P'), KeyModifiers::SHIFT),
                Action::FilterProcess,
            ),
            (
                press(KeyCode::Char('p'), KeyModifiers::NONE),
                Action::FilterPort,
            ),
        ];
        for (event, action) in cases {
            assert_eq!(map.action(&event), Some(action), "{event:?}");
        }
        assert_eq!(
            map.action(&press(KeyCode::Char('z'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            map.action(&press(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            None,
            "ctrl-q is not q"
        );
    }

    #[test]
    fn keys_print_as_they_parse() {
        for text in [
            "q",
            "G",
            "ctrl-c",
            "shift-tab",
            "space",
            "f5",
            "alt-x",
            "pagedown",
            "<",
        ] {
            let key = Key::parse(text).expect(text);
            assert_eq!(key.to_string(), text);
            assert_eq!(Key::parse(&key.to_string()), Ok(key));
        }
        assert_eq!(Key::parse("shift-g"), Key::parse("G"));
        assert!(Key::parse("ctrl-").is_err());
        assert!(Key::parse("hyper-x").is_err());
        assert_eq!(Key::parse("-").map(|k| k.to_string()), Ok("-".to_string()));
    }

    #[test]
    fn overrides_replace_and_conflicts_are_refused() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), vec!["x".to_string()]);
        let map = Keymap::with_overrides(&o).expect("valid");
        assert_eq!(
            map.action(&press(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action(&press(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );

        o.insert("pause".to_string(), vec!["x".to_string()]);
        let err = Keymap::with_overrides(&o).expect_err("x twice");
        assert!(matches!(err, KeymapError::Conflict { .. }), "{err:?}");
        assert!(matches!(err.action(), Some("quit" | "pause")), "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains("`x`") && err.contains("quit") && err.contains("pause"),
            "{err}"
        );

        let mut bad = BTreeMap::new();
        bad.insert("jump".to_string(), vec!["x".to_string()]);
        assert_eq!(
            Keymap::with_overrides(&bad).expect_err("unknown"),
            KeymapError::UnknownAction("jump".into())
        );
        let mut bad = BTreeMap::new();
        bad.insert("quit".to_string(), vec![]);
        assert!(
            Keymap::with_overrides(&bad)
                .expect_err("no quit")
                .to_string()
                .contains("quit")
        );
        let mut bad = BTreeMap::new();
        bad.insert("quit".to_string(), vec!["ctrl-nope".to_string()]);
        assert!(
            Keymap::with_overrides(&bad)
                .expect_err("bad key")
                .to_string()
                .contains("ctrl-nope")
        );
    }

    #[test]
    fn the_readme_key_table_is_the_keymap() {
        let table = Keymap::default().markdown_table();
        if std::env::var_os("SOCKSCOPE_PRINT_KEYS").is_some() {
            println!("<<<KEYS>>>\n{table}<<<END>>>");
        }
        assert!(
            include_str!("../../README.md").contains(&table),
            "the README's key table is stale; it should be:\n{table}"
        );
    }
}
