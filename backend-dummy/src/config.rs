//! The dummy's config file, read without a YAML parser.
//!
//! The dummy's binary stays small (under 1 MB stripped) by carrying no YAML
//! parser; its config holds nothing but [`aliases`](backend_core::alias),
//! which this reader takes in the one shape an operator writes them:
//!
//! ```yaml
//! # comments, blank lines and a leading '---' are fine
//! aliases:
//!   db_password: "secret/db;password"
//!   api_key: 'aws:prod/api;key'
//!   plain: secret/plain
//! ```
//!
//! One `name: target` per line, every entry indented alike; a target is
//! plain, `"double-quoted"` (no backslash escapes) or `'single-quoted'`
//! (`''` for a quote), with an optional ` # comment` after it. Anything
//! else (another key, flow or block collections, anchors, tags, multi-line
//! scalars, tabs) is refused with its line number, never guessed: what this
//! reader accepts, a YAML parser reads the same (a test holds it to that).

use backend_core::Aliases;
use backend_core::alias::is_name_char;

/// Parses the dummy's config text into its aliases; an error names the line.
pub fn parse(text: &str) -> Result<Aliases, String> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut pairs = Vec::new();
    let mut seen_key = false;
    let mut indent: Option<usize> = None;
    let mut started = false;
    for (n, line) in lines.by_ref() {
        let blank = line.trim().is_empty() || line.trim_start().starts_with('#');
        if blank || (!started && !seen_key && line.trim_end() == "---") {
            started |= !blank;
            continue;
        }
        started = true;
        if !seen_key {
            match top_level(line) {
                Some(empty) => {
                    seen_key = true;
                    if empty {
                        return rest_is_blank(lines, Aliases::default());
                    }
                    continue;
                }
                None => return Err(only_aliases(n)),
            }
        }
        let width = line.len() - line.trim_start_matches(' ').len();
        if width == 0 {
            return Err(only_aliases(n));
        }
        if line[width..].starts_with('\t') || indent.is_some_and(|w| w != width) {
            return Err(format!(
                "line {n}: every alias is indented alike, with spaces"
            ));
        }
        indent = Some(width);
        pairs.push(entry(&line[width..]).map_err(|why| format!("line {n}: {why}"))?);
    }
    Aliases::new(pairs)
}

/// `aliases:` (false) or `aliases: {}` (true: no aliases follow), with an
/// optional comment; `None` for any other line.
fn top_level(line: &str) -> Option<bool> {
    let rest = line.strip_prefix("aliases:")?;
    match without_comment(rest).trim() {
        "" => Some(false),
        "{}" => Some(true),
        _ => None,
    }
}

fn rest_is_blank<'a>(
    mut lines: impl Iterator<Item = (usize, &'a str)>,
    done: Aliases,
) -> Result<Aliases, String> {
    match lines.find(|(_, l)| !(l.trim().is_empty() || l.trim_start().starts_with('#'))) {
        Some((n, _)) => Err(only_aliases(n)),
        None => Ok(done),
    }
}

fn only_aliases(n: usize) -> String {
    format!(
        "line {n}: the dummy backend's config holds only 'aliases:', a map of 'name: handle' lines"
    )
}

/// `name: target` after the indentation.
fn entry(line: &str) -> Result<(String, String), String> {
    let split = line
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map_or(line.len(), |(i, _)| i);
    let (name, rest) = line.split_at(split);
    let Some(rest) = rest.strip_prefix(':') else {
        return Err("expected 'name: handle', the name in Vector's characters".into());
    };
    if name.is_empty() || name == "-" {
        return Err("expected 'name: handle', the name in Vector's characters".into());
    }
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Err("expected a space after 'name:'".into());
    }
    let target = target(rest.trim_start_matches(' '))?;
    Ok((name.to_owned(), target))
}

/// A target: quoted or plain, then nothing but an optional comment.
fn target(text: &str) -> Result<String, String> {
    let (value, after) = match text.chars().next() {
        None => return Err("no handle after 'name:'".into()),
        Some('"') => {
            let body = &text[1..];
            let end = body
                .find('"')
                .ok_or("a double-quoted handle must end on its line")?;
            let value = &body[..end];
            if value.contains('\\') {
                return Err("write a handle holding '\\' in single quotes".into());
            }
            (value.to_owned(), &body[end + 1..])
        }
        Some('\'') => {
            let mut value = String::new();
            let mut chars = text[1..].char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("a single-quoted handle must end on its line".into()),
                    Some((i, '\'')) if text[1 + i + 1..].starts_with('\'') => {
                        value.push('\'');
                        chars.next();
                    }
                    Some((i, '\'')) => break 1 + i + 1,
                    Some((_, c)) => value.push(c),
                }
            };
            (value, &text[end..])
        }
        Some(_) => {
            let value = without_comment(text).trim_end_matches(' ');
            plain(value)?;
            (value.to_owned(), "")
        }
    };
    let only_comment = after.starts_with(' ') && without_comment(after).trim().is_empty();
    if !(after.is_empty() || only_comment) {
        return Err("nothing but a comment may follow a quoted handle".into());
    }
    if value.chars().any(char::is_control) {
        return Err("a control character in the handle".into());
    }
    Ok(value)
}

/// Text up to a ` #` comment (a `#` at the start counts too).
fn without_comment(text: &str) -> &str {
    if text.starts_with('#') {
        return "";
    }
    text.find(" #").map_or(text, |i| &text[..i])
}

/// Refuses plain text a YAML parser would read as something else than the
/// text itself: an indicator first, `: ` inside, a trailing `:`, a tab.
/// (`,`, brackets and braces are plain text after the first character, in
/// a block mapping.)
fn plain(value: &str) -> Result<(), String> {
    const INDICATORS: &[char] = &[
        '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '%', '@', '`',
    ];
    let refused = value.starts_with(INDICATORS)
        || value.contains(": ")
        || value.ends_with(':')
        || value.contains('\t');
    if refused {
        return Err("quote this handle (it holds characters YAML reads specially)".into());
    }
    if not_a_string(value) {
        return Err("quote this handle (YAML reads it as a number, a boolean or null)".into());
    }
    Ok(())
}

/// Whether YAML (1.1 resolution, as the other backends' readers) may read
/// plain `value` as a null, a boolean or a number: the words, and anything
/// number-like (erring towards "quote it").
fn not_a_string(value: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "y", "yes", "n", "no", "true", "false", "on", "off", ".inf", "+.inf", "-.inf",
        ".nan",
    ];
    let lower = value.to_ascii_lowercase();
    WORDS.contains(&lower.as_str())
        || (value.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '.')
            && value
                .chars()
                .all(|c| c.is_ascii_hexdigit() || "xXoO_+-.:".contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .iter()
            .map(|(n, t)| (n.to_owned(), t.to_owned()))
            .collect()
    }

    #[test]
    fn reads_the_shapes_operators_write() {
        let text = "# dummy\n---\naliases:   # the map\n  db_password: \"secret/db;password\"\n  api_key: 'aws:prod/api;''k'''  # c\n\n  plain: secret/plain # note\n  x.y-z/w: ssm:/a/b#c\n";
        assert_eq!(
            ok(text),
            [
                ("api_key", "aws:prod/api;'k'"),
                ("db_password", "secret/db;password"),
                ("plain", "secret/plain"),
                ("x.y-z/w", "ssm:/a/b#c"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert!(ok("").is_empty());
        assert!(ok("# nothing\n\n---\n").is_empty());
        assert!(ok("aliases:\n").is_empty());
        assert!(ok("aliases: {}\n# end\n").is_empty());
    }

    #[test]
    fn refuses_everything_else_with_the_line() {
        for (text, line) in [
            ("address: x\n", 1),
            ("aliases:\n  a: b\nother: c\n", 3),
            ("aliases:\n  a: b\n   c: d\n", 3),
            ("aliases:\n\t a: b\n", 2),
            ("aliases:\n  a: [b]\n", 2),
            ("aliases:\n  a: {b: c}\n", 2),
            ("aliases:\n  a: &x b\n", 2),
            ("aliases:\n  a: !!str b\n", 2),
            ("aliases:\n  a: |\n    b\n", 2),
            ("aliases:\n  a: \"b\n", 2),
            ("aliases:\n  a: \"b\\n\"\n", 2),
            ("aliases:\n  a: 'b' c\n", 2),
            ("aliases:\n  a:\n", 2),
            ("aliases:\n  a:b\n", 2),
            ("aliases:\n  a;b: c\n", 2),
            ("aliases:\n  \"a\": c\n", 2),
            ("aliases:\n  - a\n", 2),
            ("aliases:\n  a: b: c\n", 2),
            ("aliases: {}\n  a: b\n", 2),
            ("aliases: {a: b}\n", 1),
            ("---\n---\n", 2),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(&format!("line {line}: ")), "{text:?}: {e}");
        }
        let e = parse("aliases:\n  a: b\n  b: c\n").unwrap_err();
        assert!(e.contains("itself an alias"), "{e}");
    }
}
