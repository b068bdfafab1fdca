//! Escaping of label values into regex alternations inside PromQL strings (spec §1.1).

/// Escapes a literal for RE2 with Go's `QuoteMeta` set: `\ . + * ? ( ) | [ ] { } ^ $`.
pub fn escape_regex_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes text for a double-quoted PromQL string: `\`, `"`, LF, CR, TAB, other C0 controls and
/// DEL (`\xNN`, lowercase hex); everything else, UTF-8 included, unchanged.
pub fn escape_promql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// The four steps of §1.1: sort, dedupe, regex-escape each value, join with `|`, PromQL-escape.
pub fn alternation<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = values.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    let joined = v
        .iter()
        .map(|s| escape_regex_literal(s))
        .collect::<Vec<_>>()
        .join("|");
    escape_promql_string(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_renders_exactly() {
        assert_eq!(alternation(["a.b|c\\d\"e"]), "a\\\\.b\\\\|c\\\\\\\\d\\\"e");
    }

    #[test]
    fn controls_and_del_become_hex_and_utf8_stays() {
        assert_eq!(
            escape_promql_string("\u{1}\u{7f}\n\r\té🙂"),
            "\\x01\\x7f\\n\\r\\té🙂"
        );
    }

    #[test]
    fn values_are_sorted_and_deduplicated() {
        assert_eq!(alternation(["b", "a", "b"]), "a|b");
    }
}
