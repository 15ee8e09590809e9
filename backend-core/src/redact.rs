//! Making text safe to show: the one place that hides a URL's userinfo
//! (`http://user:PASSWORD@host`) and escapes control characters.
//!
//! Everything we print goes through here: every [`crate::HandleError`] and
//! [`crate::ConfigError`] message when it is made, and every log line when
//! it is written (stderr and the log file, [`crate::logging`]). So a
//! password an operator wrote into `VAULT_ADDR` or `endpoint_url`, or a
//! newline a hostile handle carries into a message, cannot reach the agent's
//! log whichever code path built the text.
//!
//! Hand-written: the job is a scan for `://` and `@`; a URL parser would
//! refuse exactly the malformed URLs (a bad port, a space in the host) whose
//! messages most need redacting.

use std::borrow::Cow;

/// What stands in for a URL's userinfo.
pub const HIDDEN: &str = "***";

/// A URL as it may be shown: everything between `://` and the last `@` is
/// hidden (a password may itself hold `/`, `:` or `@`). Without `://`,
/// everything before the last `@` is hidden. Other text is returned as is.
pub fn url(raw: &str) -> Cow<'_, str> {
    let (start, rest) = match raw.find("://") {
        Some(i) => (i + 3, raw.get(i + 3..).unwrap_or("")),
        None => (0, raw),
    };
    match rest.rfind('@') {
        Some(at) => {
            let mut shown = String::with_capacity(raw.len());
            shown.push_str(raw.get(..start).unwrap_or(""));
            shown.push_str(HIDDEN);
            shown.push_str(rest.get(at..).unwrap_or(""));
            Cow::Owned(shown)
        }
        None => Cow::Borrowed(raw),
    }
}

/// Free text (a message, a log line) as it may be shown: in every
/// whitespace- or quote-delimited word holding `://`, what lies between
/// `://` and the word's last `@` is hidden, and control characters other
/// than a final line feed are escaped (`\n`, `\u{1b}`), so no text can forge
/// a log line or a terminal sequence.
pub fn text(raw: &str) -> Cow<'_, str> {
    let has_control = raw
        .char_indices()
        .any(|(i, c)| c.is_control() && !(c == '\n' && i + 1 == raw.len()));
    if !has_control && !raw.contains("://") {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains("://") {
            out.push_str(&url(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    let last = raw.len().saturating_sub(1);
    for (i, c) in raw.char_indices() {
        if c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '`' | '<' | '>') {
            flush(&mut word, &mut out);
            if c == '\n' && i == last {
                out.push('\n');
            } else if c.is_control() {
                out.extend(c.escape_debug());
            } else {
                out.push(c);
            }
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_userinfo() {
        for (raw, shown) in [
            (
                "http://user:PW@127.0.0.1:99999",
                "http://***@127.0.0.1:99999",
            ),
            ("https://PW@[::1]:8200/v1", "https://***@[::1]:8200/v1"),
            ("http://u:p/a@ss@host/x", "http://***@host/x"),
            ("http://user:P W@host", "http://***@host"),
            ("user:PW@host:9", "***@host:9"),
            ("http://127.0.0.1:8200", "http://127.0.0.1:8200"),
            ("", ""),
        ] {
            assert_eq!(url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn text_hides_userinfo_in_any_word_and_escapes_controls() {
        let cases = [
            (
                "invalid VAULT_ADDR 'http://user:PW@[::1' (bad)",
                "invalid VAULT_ADDR 'http://***@[::1' (bad)",
            ),
            (
                "endpoint http://a:PASS@bad host:9 refused",
                "endpoint http://***@bad host:9 refused",
            ),
            ("a\nforged line", "a\\nforged line"),
            ("ends with a newline\n", "ends with a newline\n"),
            ("esc \u{1b}[31m red", "esc \\u{1b}[31m red"),
            ("plain text stays", "plain text stays"),
            ("\"http://x:PW@h\": quoted", "\"http://***@h\": quoted"),
        ];
        for (raw, shown) in cases {
            assert_eq!(text(raw), shown, "{raw:?}");
        }
        assert!(matches!(text("nothing to do"), Cow::Borrowed(_)));
    }
}
