//! Property tests of the exposition parser: render arbitrary series to text, parse them back,
//! compare; and arbitrary input never panics.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use proptest::prelude::*;
use wva_collector::parse_exposition;

#[derive(Debug, Clone)]
struct Series {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

/// How a line is written: each choice is one Prometheus accepts.
#[derive(Debug, Clone)]
struct Style {
    around: &'static str,
    trailing_comma: bool,
    value_form: u8,
}

fn metric_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_:][a-zA-Z0-9_:]{0,24}"
}

fn label_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,12}"
}

/// Arbitrary Unicode plus the characters that need escaping, made frequent.
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just('\\'),
                Just('"'),
                Just('\n'),
                Just('\r'),
                Just('\t'),
                Just('{'),
                Just('}'),
                Just(','),
                Just('='),
                Just('#'),
                Just(' '),
                any::<char>(),
            ],
            0..16
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        (0u32..1_000_000).prop_map(f64::from),
    ]
}

fn series() -> impl Strategy<Value = Series> {
    (
        metric_name(),
        proptest::collection::btree_map(label_name(), label_value(), 0..6),
        value(),
        proptest::option::of(0i64..=i64::MAX),
    )
        .prop_map(|(name, labels, value, timestamp_ms)| Series {
            name,
            labels: labels.into_iter().collect(),
            value,
            timestamp_ms,
        })
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop_oneof![Just(""), Just(" "), Just(" \t ")],
        any::<bool>(),
        0u8..4,
    )
        .prop_map(|(around, trailing_comma, value_form)| Style {
            around,
            trailing_comma,
            value_form,
        })
}

fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn render_value(v: f64, form: u8) -> String {
    if v.is_nan() {
        return ["NaN", "nan", "NAN", "NaN"][usize::from(form)].to_owned();
    }
    if v.is_infinite() {
        let word = ["Inf", "inf", "Infinity", "INF"][usize::from(form)];
        return if v > 0.0 {
            format!("+{word}")
        } else {
            format!("-{word}")
        };
    }
    match form {
        0 => format!("{v:?}"),
        1 => format!("{v:e}"),
        2 => format!("{v:E}"),
        _ => format!("{v}"),
    }
}

fn render(s: &Series, st: &Style) -> String {
    let a = st.around;
    let mut line = s.name.clone();
    if !s.labels.is_empty() || st.trailing_comma {
        line.push_str(a);
        line.push('{');
        let pairs: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{a}{k}{a}={a}\"{}\"{a}", escape_label_value(v)))
            .collect();
        line.push_str(&pairs.join(","));
        if st.trailing_comma && !s.labels.is_empty() {
            line.push(',');
        }
        line.push('}');
    }
    line.push(' ');
    line.push_str(a);
    line.push_str(&render_value(s.value, st.value_form));
    if let Some(ts) = s.timestamp_ms {
        line.push(' ');
        line.push_str(&ts.to_string());
    }
    line.push_str(a);
    line
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rendered_series_parse_back_identically(
        items in proptest::collection::vec((series(), style()), 1..12),
        final_newline in any::<bool>(),
        with_meta in any::<bool>(),
    ) {
        let mut lines = Vec::new();
        for (s, st) in &items {
            if with_meta {
                lines.push(format!("# HELP {} help \\\\ text \\n with escapes", s.name));
                lines.push(format!("# TYPE {} untyped", s.name));
                lines.push("# a comment".to_owned());
                lines.push("\t # an indented comment".to_owned());
                lines.push(String::new());
            }
            lines.push(render(s, st));
        }
        let mut text = lines.join("\n");
        if final_newline {
            text.push('\n');
        }
        let parsed = parse_exposition(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed.samples.len(), items.len());
        for ((want, _), got) in items.iter().zip(&parsed.samples) {
            prop_assert_eq!(got.name, want.name.as_str());
            let got_labels: Vec<(String, String)> = got
                .labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_string()))
                .collect();
            prop_assert_eq!(&got_labels, &want.labels);
            prop_assert!(same_value(got.value, want.value), "{} vs {}", got.value, want.value);
            prop_assert_eq!(got.timestamp_ms, want.timestamp_ms);
        }
    }

    #[test]
    fn an_indented_sample_rejects_the_text(s in series(), st in style(), lead in "[ \t]{1,3}") {
        let text = format!("{lead}{}", render(&s, &st));
        let err = parse_exposition(&text).unwrap_err();
        prop_assert_eq!(err.line, 1);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_exposition(&text);
    }

    #[test]
    fn text_from_the_grammar_alphabet_never_panics_and_yields_valid_names(
        text in "[a-z:_{}=\",\\\\ \t\n#0-9.eE+\\-a-zA-Zé]{0,200}"
    ) {
        if let Ok(e) = parse_exposition(&text) {
            for s in &e.samples {
                let mut chars = s.name.chars();
                let first = chars.next().unwrap();
                prop_assert!(first.is_ascii_alphabetic() || first == '_' || first == ':');
                prop_assert!(chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
            }
        }
    }

    #[test]
    fn mutated_valid_text_never_panics(
        s in series(),
        st in style(),
        at in any::<prop::sample::Index>(),
        insert in any::<char>(),
        delete in any::<bool>(),
    ) {
        let text = render(&s, &st);
        let mut chars: Vec<char> = text.chars().collect();
        let i = at.index(chars.len() + 1);
        if delete && i < chars.len() {
            chars.remove(i);
        } else {
            chars.insert(i, insert);
        }
        let mutated: String = chars.into_iter().collect();
        let _ = parse_exposition(&mutated);
    }
}
