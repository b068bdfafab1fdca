//! Property: the rendered selector matches exactly the model it was built from (spec §10.3).
//!
//! The test unquotes the PromQL string with Go `strconv.Unquote` rules (reimplemented here),
//! compiles the regex anchored as Prometheus does, and checks it matches the original value and
//! none of its mutations.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use proptest::prelude::*;
use wva_collector::catalogue::alternation;

/// Go `strconv.Unquote` for a double-quoted string (the escapes PromQL accepts).
fn go_unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\n' => return None,
            '\\' => {
                let e = chars.next()?;
                match e {
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => return None,
                    'x' => {
                        let h: String = chars.by_ref().take(2).collect();
                        out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
                    }
                    'u' | 'U' => {
                        let n = if e == 'u' { 4 } else { 8 };
                        let h: String = chars.by_ref().take(n).collect();
                        out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

fn compiled(value: &str) -> regex::Regex {
    let quoted = format!("\"{}\"", alternation([value]));
    let re = go_unquote(&quoted).unwrap_or_else(|| panic!("not a valid PromQL string: {quoted}"));
    regex::Regex::new(&format!("^(?:{re})$")).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn selector_matches_the_value_and_none_of_its_mutations(value in "\\PC{0,12}|[\\x00-\\x7f]{1,12}|.{1,8}") {
        prop_assume!(!value.is_empty());
        let re = compiled(&value);
        prop_assert!(re.is_match(&value));
        let mut mutations = vec![format!("{value}x"), format!("x{value}"), String::new(), format!("{value}\n")];
        let chars: Vec<char> = value.chars().collect();
        mutations.push(chars[1..].iter().collect());
        mutations.push(chars[..chars.len() - 1].iter().collect());
        for m in mutations {
            if m != value {
                prop_assert!(!re.is_match(&m), "{:?} also matched {:?}", value, m);
            }
        }
    }

    #[test]
    fn a_batch_alternation_matches_exactly_its_members(values in proptest::collection::btree_set("\\PC{1,6}", 1..6), other in "\\PC{1,6}") {
        let quoted = format!("\"{}\"", alternation(values.iter().map(String::as_str)));
        let re = regex::Regex::new(&format!("^(?:{})$", go_unquote(&quoted).unwrap())).unwrap();
        for v in &values {
            prop_assert!(re.is_match(v));
        }
        prop_assert_eq!(re.is_match(&other), values.contains(&other));
    }
}

#[test]
fn listed_hostile_ids_match_only_themselves() {
    for v in [
        "\"",
        "\\",
        "\\\\\"",
        ".*",
        "a|b",
        ")",
        "(?i)x",
        "[",
        "{",
        "}",
        "$",
        "^",
        "\n",
        "\r",
        "\t",
        "\u{1}",
        "\u{7f}",
        "x\"} or vector(1) or {a=\"",
        "é🦙",
    ] {
        let re = compiled(v);
        assert!(re.is_match(v), "{v:?}");
        for decoy in ["foo", "a", "b", "x", "X", ""] {
            if decoy != v {
                assert!(!re.is_match(decoy), "{v:?} matched {decoy:?}");
            }
        }
    }
}
