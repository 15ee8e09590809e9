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
/// hidden (a password may itself hold `/`, `:` or `@`), and so is the
/// query after the host and path (`?token=`, an Azure SAS `?sig=`):
/// `?***`. A fragment stays (our messages link `README.md#rbac`; a
/// fragment is never sent). Without `://`, everything before the last `@`
/// is hidden. Other text is returned as is.
pub fn url(raw: &str) -> Cow<'_, str> {
    let (start, rest) = match raw.find("://") {
        Some(i) => (i + 3, raw.get(i + 3..).unwrap_or("")),
        None => (0, raw),
    };
    let at = rest.rfind('@');
    let host = at.unwrap_or(0);
    let query = rest.get(host..).and_then(|r| r.find('?')).map(|q| host + q);
    if at.is_none() && query.is_none() {
        return Cow::Borrowed(raw);
    }
    let end = query.unwrap_or(rest.len());
    let mut shown = String::with_capacity(raw.len());
    shown.push_str(raw.get(..start).unwrap_or(""));
    match at {
        Some(at) => {
            shown.push_str(HIDDEN);
            shown.push_str(rest.get(at..end).unwrap_or(""));
        }
        None => shown.push_str(rest.get(..end).unwrap_or("")),
    }
    if let Some(q) = query {
        // Punctuation the URL ends with belongs to the sentence around it
        // (`through the proxy http://h/?***: ...`), not to the query.
        let tail = rest.get(q + 1..).unwrap_or("");
        let kept = tail.trim_end_matches([':', ',', ';', '.', ')']).len();
        shown.push('?');
        shown.push_str(HIDDEN);
        shown.push_str(tail.get(kept..).unwrap_or(""));
    }
    Cow::Owned(shown)
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

/// A deserializer's message with the values it quotes hidden: serde writes
/// the offending value into `invalid type: integer `987654321`, expected a
/// string`, `invalid value: string "x"` and `unknown variant `x``, and in a
/// config that value may be a credential of any YAML type. The value after
/// each of those phrases, in backticks or double quotes, becomes `...`;
/// field names and the list of what was expected stay.
pub fn serde_values(text: &str) -> Cow<'_, str> {
    const PHRASES: [&str; 3] = ["invalid type: ", "invalid value: ", "unknown variant "];
    if !PHRASES.iter().any(|p| text.contains(p)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, phrase)) = PHRASES
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, *p)))
        .min_by_key(|(i, _)| *i)
    {
        let after = at + phrase.len();
        out.push_str(rest.get(..after).unwrap_or(""));
        rest = rest.get(after..).unwrap_or("");
        // The value's quote comes before the clause ends (", expected").
        let clause = rest.find(',').unwrap_or(rest.len());
        let quote = rest
            .char_indices()
            .take_while(|(i, _)| *i < clause)
            .find(|(_, c)| *c == '`' || *c == '"');
        if let Some((open, q)) = quote {
            let close = rest
                .get(open + 1..)
                .and_then(|r| r.rfind(q).filter(|_| q == '`').or_else(|| r.find(q)));
            // A backtick value may hold backticks itself: it ends at the
            // last backtick before the clause's end, else the first after.
            let close = if q == '`' {
                rest.get(open + 1..clause)
                    .and_then(|r| r.rfind('`'))
                    .or(close)
            } else {
                close
            };
            if let Some(close) = close {
                out.push_str(rest.get(..open).unwrap_or(""));
                out.push(q);
                out.push_str("...");
                out.push(q);
                rest = rest.get(open + 1 + close + 1..).unwrap_or("");
            } else {
                out.push_str(rest.get(..open).unwrap_or(""));
                out.push_str("...");
                rest = "";
            }
        }
    }
    out.push_str(rest);
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
            ("http://u:pw@h:1/?token=TOK", "http://***@h:1/?***"),
            ("https://h/p?sig=SAS&se=1", "https://h/p?***"),
            ("https://h/README.md#rbac", "https://h/README.md#rbac"),
            ("http://h/?token=TOK:", "http://h/?***:"),
            ("http://u:p?w@h/x", "http://***@h/x"),
            ("http://h/a@b?x=1", "http://***@b?***"),
            ("", ""),
        ] {
            assert_eq!(url(raw), shown, "{raw}");
        }
    }

    #[test]
    fn serde_messages_lose_their_values() {
        for (raw, shown) in [
            (
                "backends.v: invalid type: integer `987654321`, expected a string",
                "backends.v: invalid type: integer `...`, expected a string",
            ),
            (
                "invalid type: boolean `true`, expected a string at line 2",
                "invalid type: boolean `...`, expected a string at line 2",
            ),
            (
                "invalid type: floating point `1.5e3`, expected u32",
                "invalid type: floating point `...`, expected u32",
            ),
            (
                "invalid value: string \"hunter2, x\", expected one of a",
                "invalid value: string \"...\", expected one of a",
            ),
            (
                "unknown variant `hunter2secret`, expected one of `token`, `approle`",
                "unknown variant `...`, expected one of `token`, `approle`",
            ),
            (
                "invalid type: sequence, expected a string",
                "invalid type: sequence, expected a string",
            ),
            (
                "unknown field `adress`, expected one of `address`",
                "unknown field `adress`, expected one of `address`",
            ),
            (
                "invalid type: integer `1`, expected a string; invalid type: integer `2`",
                "invalid type: integer `...`, expected a string; invalid type: integer `...`",
            ),
        ] {
            assert_eq!(serde_values(raw), shown, "{raw}");
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
