//! `.env` files: `KEY=value` lines, as Docker Compose and most dotenv
//! libraries read them.
//!
//! Written here rather than taken from a crate because the common crates
//! either load the variables into the process environment or interpolate
//! `${VAR}` from it; we want neither, only a map of literal strings. The
//! accepted subset: blank lines and `#` comments, an optional `export `,
//! unquoted values (a ` #` starts a comment, surrounding spaces trimmed),
//! single-quoted values taken literally, double-quoted values with `\n`,
//! `\r`, `\t`, `\"` and `\\` escapes. A later line overrides an earlier one
//! with the same key, as in a shell. Quoted values span one line only.
//!
//! Errors give the line number and the problem, never the line itself,
//! which may hold a secret.

use serde_json::{Map, Value};

/// Parses `.env` text into an object of strings.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut map = Map::new();
    match fill(&mut map, text) {
        Ok(()) => Ok(Value::Object(map)),
        Err(e) => {
            // The lines before the bad one were values: overwrite them.
            map.values_mut().for_each(wipe_string);
            Err(e)
        }
    }
}

fn fill(map: &mut Map<String, Value>, text: &str) -> Result<(), String> {
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, rest) =
            assignment(line).ok_or_else(|| format!("line {number}: expected KEY=value"))?;
        let value = value(rest).map_err(|e| format!("line {number}: {e}"))?;
        if let Some(mut old) = map.insert(key.to_owned(), Value::String(value)) {
            wipe_string(&mut old);
        }
    }
    Ok(())
}

fn wipe_string(v: &mut Value) {
    if let Value::String(s) = v {
        zeroize::Zeroize::zeroize(s);
    }
}

/// Whether every meaningful line of `text` is an assignment (and there is
/// at least one): how a document without a telling extension is recognised.
pub fn looks_like(text: &str) -> bool {
    let mut lines = text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .peekable();
    lines.peek().is_some() && lines.all(|l| assignment(l).is_some())
}

/// Splits `[export ]KEY=rest`; `None` when the line is not an assignment.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let line = match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    };
    let (key, rest) = line.split_once('=')?;
    let key = key.trim_end();
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    valid.then_some((key, rest))
}

/// The value after `=`: quoted or bare, trailing comment removed.
fn value(rest: &str) -> Result<String, &'static str> {
    let rest = rest.trim_start_matches([' ', '\t']);
    let (value, after) = if let Some(body) = rest.strip_prefix('"') {
        double_quoted(body)?
    } else if let Some(body) = rest.strip_prefix('\'') {
        let end = body.find('\'').ok_or("unterminated single quote")?;
        let (inner, after) = body.split_at(end);
        (inner.to_owned(), after.get(1..).unwrap_or_default())
    } else {
        return Ok(bare(rest).to_owned());
    };
    let after = after.trim_start_matches([' ', '\t', '\r']);
    if after.is_empty() || after.starts_with('#') {
        Ok(value)
    } else {
        Err("unexpected text after the closing quote")
    }
}

/// A double-quoted body up to its closing quote, escapes applied; returns
/// the value and what follows the quote.
fn double_quoted(body: &str) -> Result<(String, &str), &'static str> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, body.get(i + 1..).unwrap_or_default())),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    zeroize::Zeroize::zeroize(&mut out);
    Err("unterminated double quote")
}

/// An unquoted value: up to a ` #` comment, surrounding blanks trimmed.
fn bare(rest: &str) -> &str {
    let end = rest
        .char_indices()
        .find(|&(i, c)| {
            c == '#'
                && rest
                    .get(..i)
                    .is_some_and(|before| before.is_empty() || before.ends_with([' ', '\t']))
        })
        .map_or(rest.len(), |(i, _)| i);
    rest.get(..end).unwrap_or(rest).trim()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_accepted_subset() {
        let text = "# comment\n\
                    \n\
                    PLAIN=abc\n\
                    export EXPORTED=yes\n\
                    SPACED = padded value  \n\
                    COMMENTED=val # note\n\
                    HASH=a#b\n\
                    SINGLE='it''s # not a comment'\n\
                    SQ='lit\\n $X'\n\
                    DOUBLE=\"line\\nbreak \\\"q\\\" \\\\ \\x\" # c\n\
                    EMPTY=\n\
                    CRLF=win\r\n\
                    dotted.key-1=ok\n\
                    PLAIN=override\n";
        // `SINGLE` above is not valid: text after the closing quote.
        assert_eq!(
            parse(text).unwrap_err(),
            "line 8: unexpected text after the closing quote"
        );
        let text = text.replace("SINGLE='it''s # not a comment'\n", "SINGLE='a # b'\n");
        assert_eq!(
            parse(&text).unwrap(),
            json!({
                "PLAIN": "override", "EXPORTED": "yes", "SPACED": "padded value",
                "COMMENTED": "val", "HASH": "a#b", "SINGLE": "a # b", "SQ": "lit\\n $X",
                "DOUBLE": "line\nbreak \"q\" \\ \\x", "EMPTY": "", "CRLF": "win",
                "dotted.key-1": "ok"
            })
        );
    }

    #[test]
    fn errors_name_the_line_not_its_text() {
        assert_eq!(
            parse("A=1\nsecret-value-here\n").unwrap_err(),
            "line 2: expected KEY=value"
        );
        assert_eq!(
            parse("A=\"open").unwrap_err(),
            "line 1: unterminated double quote"
        );
        assert_eq!(
            parse("A='open").unwrap_err(),
            "line 1: unterminated single quote"
        );
        assert_eq!(
            parse("BAD KEY=1").unwrap_err(),
            "line 1: expected KEY=value"
        );
        assert_eq!(parse("=1").unwrap_err(), "line 1: expected KEY=value");
        assert!(parse("exportX=1").is_ok());
    }

    #[test]
    fn sniffing() {
        assert!(looks_like("A=1\n# c\nexport B='x'\n"));
        assert!(!looks_like("# only a comment\n"));
        assert!(!looks_like("a: 1\nb=2\n"));
        assert!(!looks_like("just a password"));
        assert!(!looks_like("{\"a\": \"=\"}"));
    }
}
