//! The grammar of one line of the text format 0.0.4, following Prometheus 2.42's lexer.

use std::borrow::Cow;

use super::float::parse_go_float;
use super::{MetricType, Sample};

/// What one line holds.
#[derive(Debug, PartialEq)]
pub(crate) enum Line<'a> {
    /// Empty or only blanks.
    Blank,
    /// `#` followed by anything that is not a HELP or TYPE line.
    Comment,
    /// `# HELP name text`.
    Help,
    /// `# TYPE name type`.
    Type(&'a str, MetricType),
    /// A sample.
    Sample(Sample<'a>),
}

/// Parses one line (without its `\n`). The error is the reason, without the line number.
pub(crate) fn parse_line(line: &str) -> Result<Line<'_>, String> {
    let mut cur = Cursor { s: line, pos: 0 };
    let indented = cur.skip_blanks();
    match cur.peek() {
        None => Ok(Line::Blank),
        Some(b'#') => {
            cur.pos += 1;
            parse_comment(cur)
        }
        // Prometheus keeps the blanks as part of the name and then rejects the name.
        Some(_) if indented => Err(format!(
            "a sample must start at the beginning of the line, got {}",
            cur.excerpt_at(0)
        )),
        Some(_) => parse_sample(cur).map(Line::Sample),
    }
}

/// After the `#`. Only `#[ \t]+(HELP|TYPE)[ \t]+` starts a metadata line.
fn parse_comment(mut cur: Cursor<'_>) -> Result<Line<'_>, String> {
    if !cur.skip_blanks() {
        return Ok(Line::Comment);
    }
    let rest = cur.rest();
    let kind = if rest.starts_with("HELP") {
        "HELP"
    } else if rest.starts_with("TYPE") {
        "TYPE"
    } else {
        return Ok(Line::Comment);
    };
    cur.pos += kind.len();
    if !cur.skip_blanks() {
        return Ok(Line::Comment);
    }
    let name = cur
        .metric_name()
        .ok_or_else(|| format!("expected metric name after {kind}, got {}", cur.excerpt()))?;
    // Prometheus takes the rest of the line as the text and drops its first character (the
    // separator); a second blank therefore becomes part of the text.
    let text = cur.rest();
    let mut chars = text.chars();
    chars.next();
    let text = chars.as_str();
    if kind == "HELP" {
        return Ok(Line::Help);
    }
    let metric_type = MetricType::from_type_text(text)
        .ok_or_else(|| format!("invalid metric type {text:?} for {name}"))?;
    Ok(Line::Type(name, metric_type))
}

fn parse_sample(mut cur: Cursor<'_>) -> Result<Sample<'_>, String> {
    let name = cur
        .metric_name()
        .ok_or_else(|| format!("expected a metric name, got {}", cur.excerpt()))?;
    cur.skip_blanks();
    let mut labels = Vec::new();
    if cur.peek() == Some(b'{') {
        cur.pos += 1;
        parse_labels(&mut cur, &mut labels)?;
        cur.skip_blanks();
    }
    let value_text = cur.take_while(|b| !matches!(b, b' ' | b'\t' | b'{'));
    if value_text.is_empty() {
        return Err(format!(
            "expected value after metric {name}, got {}",
            cur.excerpt()
        ));
    }
    let value = parse_go_float(value_text).map_err(|e| {
        format!(
            "{} while parsing value {value_text:?} of {name}",
            e.as_str()
        )
    })?;
    cur.skip_blanks();
    let mut timestamp_ms = None;
    if cur.peek().is_some() {
        let digits = cur.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(format!(
                "expected timestamp or end of line after the value of {name}, got {}",
                cur.excerpt()
            ));
        }
        let ts = digits
            .parse::<i64>()
            .map_err(|_| format!("timestamp {digits} of {name} is out of range"))?;
        timestamp_ms = Some(ts);
        cur.skip_blanks();
        if cur.peek().is_some() {
            return Err(format!(
                "expected end of line after the timestamp of {name}, got {}",
                cur.excerpt()
            ));
        }
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// After the `{`, up to and including the `}`. Commas between pairs are optional and one
/// trailing comma is allowed, as in Prometheus.
fn parse_labels<'a>(
    cur: &mut Cursor<'a>,
    labels: &mut Vec<(&'a str, Cow<'a, str>)>,
) -> Result<(), String> {
    loop {
        cur.skip_blanks();
        if cur.peek() == Some(b'}') {
            cur.pos += 1;
            return Ok(());
        }
        let label = cur
            .label_name()
            .ok_or_else(|| format!("expected label name, got {}", cur.excerpt()))?;
        cur.skip_blanks();
        if cur.peek() != Some(b'=') {
            return Err(format!(
                "expected \"=\" after label {label}, got {}",
                cur.excerpt()
            ));
        }
        cur.pos += 1;
        cur.skip_blanks();
        let value = cur.label_value().ok_or_else(|| {
            format!(
                "expected a quoted value for label {label}, got {}",
                cur.excerpt()
            )
        })?;
        if labels.iter().any(|(l, _)| *l == label) {
            return Err(format!("label name {label:?} is not unique"));
        }
        labels.push((label, value));
        cur.skip_blanks();
        if cur.peek() == Some(b',') {
            cur.pos += 1;
        }
    }
}

/// A position in one line. `pos` is always on a character boundary: it only moves past ASCII
/// bytes or to the end of a run found by byte search.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    /// Skips spaces and tabs; true when at least one was skipped.
    fn skip_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// The longest run of ASCII bytes satisfying `keep`, or up to the end of the line.
    /// A non-ASCII byte stops the run only if `keep` rejects it; multi-byte characters are
    /// either taken whole or not at all because every continuation byte is non-ASCII too.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let mut end = start;
        while end < bytes.len() && keep(bytes[end]) {
            end += 1;
        }
        // `keep` is called on every byte of a multi-byte character in turn, and the callers'
        // predicates treat all non-ASCII bytes alike, so `end` is a character boundary.
        match self.s.get(start..end) {
            Some(run) => {
                self.pos = end;
                run
            }
            None => "",
        }
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    fn metric_name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {
                Some(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'))
            }
            _ => None,
        }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    fn label_name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                Some(self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_'))
            }
            _ => None,
        }
    }

    /// A double-quoted value. `\\`, `\"` and `\n` are unescaped; any other backslash pair is
    /// kept as written. Borrowed when the value has no escape.
    fn label_value(&mut self) -> Option<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let bytes = self.s.as_bytes();
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            match bytes.get(i)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    // The escaped character may be multi-byte: skip only the backslash and the
                    // next byte; the rest of that character is plain content.
                    bytes.get(i + 1)?;
                    i += 2;
                }
                _ => i += 1,
            }
        }
        let raw = self.s.get(start..i)?;
        self.pos = i + 1;
        if !escaped {
            return Some(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        Some(Cow::Owned(out))
    }

    /// Up to 32 characters from the cursor, quoted, for error messages.
    fn excerpt(&self) -> String {
        self.excerpt_at(self.pos)
    }

    /// Up to 32 characters from byte `pos` (a character boundary), quoted.
    fn excerpt_at(&self, pos: usize) -> String {
        let rest = self.s.get(pos..).unwrap_or("");
        if rest.is_empty() {
            return "end of line".to_owned();
        }
        let cut: String = rest.chars().take(32).collect();
        if cut.len() < rest.len() {
            format!("{cut:?}…")
        } else {
            format!("{cut:?}")
        }
    }
}
