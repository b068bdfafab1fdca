//! A parser for the Prometheus text exposition format 0.0.4 (spec/collector.md §7).
//!
//! No maintained crate accepts the `:` in vLLM's metric names (`vllm:num_requests_running`),
//! so the collector carries this small one. It follows Prometheus 2.42's scrape parser:
//! metric names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`, label
//! escapes `\\`, `\"` and `\n` (any other backslash pair is kept as written), optional commas
//! between labels and a trailing one, Go float syntax for values (`NaN`, `±Inf`, `Infinity`
//! in any case), optional integer timestamps in milliseconds, `#` comments, `# HELP` and
//! `# TYPE` lines, blank lines, and a missing final newline. Blanks may stand around braces,
//! `=`, commas and the value, but not before a sample's name (Prometheus then reads the blanks
//! as part of an invalid name). As in Prometheus, one malformed line rejects the whole text;
//! `tests/scrape_prometheus_differential.rs` checks all of this against a real Prometheus.
//!
//! ```
//! use wva_collector::parse_exposition;
//!
//! let text = "# TYPE vllm:num_requests_running gauge\n\
//!             vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3\n";
//! let exposition = parse_exposition(text)?;
//! let sample = &exposition.samples[0];
//! assert_eq!(sample.name, "vllm:num_requests_running");
//! assert_eq!(sample.label("model_name"), Some("m"));
//! assert_eq!(sample.value, 3.0);
//! # Ok::<(), wva_collector::parse::ParseError>(())
//! ```

mod float;
mod line;

use std::borrow::Cow;

use line::{Line, parse_line};

/// One sample line: a series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Metric name, e.g. `vllm:request_success_total`.
    pub name: &'a str,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    /// The value; may be NaN or infinite.
    pub value: f64,
    /// The explicit timestamp in milliseconds since the epoch, if the line has one.
    pub timestamp_ms: Option<i64>,
}

impl Sample<'_> {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(l, _)| *l == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// The type a `# TYPE` line declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
    /// `untyped`.
    Untyped,
}

impl MetricType {
    fn from_type_text(text: &str) -> Option<MetricType> {
        Some(match text {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            _ => return None,
        })
    }

    /// The keyword as written in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }
}

/// A parsed exposition body, borrowing from the text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition<'a> {
    /// Every sample line, in order.
    pub samples: Vec<Sample<'a>>,
    /// Every `# TYPE` line as `(family, type)`, in order.
    pub types: Vec<(&'a str, MetricType)>,
}

impl Exposition<'_> {
    /// The type declared for `family` (the last declaration wins), if any.
    pub fn metric_type(&self, family: &str) -> Option<MetricType> {
        self.types
            .iter()
            .rev()
            .find(|(f, _)| *f == family)
            .map(|(_, t)| *t)
    }
}

/// A malformed line; the whole text is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong with it.
    pub reason: String,
}

/// Parses a text-format 0.0.4 body; the first malformed line fails the whole body.
pub fn parse_exposition(text: &str) -> Result<Exposition<'_>, ParseError> {
    let mut exposition = Exposition {
        // vLLM writes about one sample per 60 bytes; a guess saves most regrowth.
        samples: Vec::with_capacity(text.len() / 64),
        types: Vec::new(),
    };
    for (index, line) in text.split('\n').enumerate() {
        match parse_line(line) {
            Ok(Line::Sample(sample)) => exposition.samples.push(sample),
            Ok(Line::Type(family, metric_type)) => exposition.types.push((family, metric_type)),
            Ok(Line::Blank | Line::Comment | Line::Help) => {}
            Err(reason) => {
                return Err(ParseError {
                    line: index + 1,
                    reason,
                });
            }
        }
    }
    Ok(exposition)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Sample<'_> {
        let mut e = parse_exposition(text).unwrap();
        assert_eq!(e.samples.len(), 1, "{text:?}");
        e.samples.remove(0)
    }

    #[test]
    fn colon_names_and_labels_parse() {
        let s = one("vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"a/b\"} 0.25");
        assert_eq!(s.name, "vllm:kv_cache_usage_perc");
        assert_eq!(s.label("engine"), Some("0"));
        assert_eq!(s.label("model_name"), Some("a/b"));
        assert_eq!(s.value, 0.25);
        assert_eq!(s.timestamp_ms, None);
    }

    #[test]
    fn escapes_are_unescaped_and_unknown_pairs_kept() {
        let s = one(r#"m{a="q\"b\\s\nn\tx\é"} 1"#);
        assert_eq!(s.label("a"), Some("q\"b\\s\nn\\tx\\é"));
    }

    #[test]
    fn unescaped_values_are_borrowed() {
        let s = one(r#"m{a="plain"} 1"#);
        assert!(matches!(s.labels[0].1, Cow::Borrowed("plain")));
    }

    #[test]
    fn blanks_commas_and_braces_are_lenient_like_prometheus() {
        for text in [
            "m{a=\"1\",b=\"2\",} 7",
            "m { a = \"1\" , b = \"2\" } 7",
            "m{a=\"1\" b=\"2\"} 7",
            "m{a=\"1\",b=\"2\"}7  ",
            "m{a=\"1\",b=\"2\"}\t7\t",
        ] {
            let s = one(text);
            assert_eq!(s.label("a"), Some("1"), "{text:?}");
            assert_eq!(s.label("b"), Some("2"), "{text:?}");
            assert_eq!(s.value, 7.0, "{text:?}");
        }
        assert!(one("m{} 1").labels.is_empty());
    }

    #[test]
    fn timestamps_are_kept() {
        assert_eq!(
            one("m 1 1700000000123").timestamp_ms,
            Some(1_700_000_000_123)
        );
        assert_eq!(one("m{a=\"x\"} 1 5 ").timestamp_ms, Some(5));
    }

    #[test]
    fn type_lines_are_recorded_and_help_and_comments_ignored() {
        let e = parse_exposition(
            "# HELP m Some help with \\n escapes.\n# TYPE m counter\n#comment\n# free text\n\nm_total 1\n",
        )
        .unwrap();
        assert_eq!(e.metric_type("m"), Some(MetricType::Counter));
        assert_eq!(e.samples.len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_exposition("a 1\nb 2\nc{x=\"1\" 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().starts_with("line 3: "), "{err}");
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for text in [
            "m",
            "m{a=\"1\"}",
            "1m 1",
            "m{a=1} 1",
            "m{a:b=\"1\"} 1",
            "m{a=\"1\",,} 1",
            "m{,} 1",
            "m{a=\"1\" 1",
            "m{a=\"unterminated} 1",
            "m{a=\"1\",a=\"2\"} 1",
            "m 1 2 3",
            "m 1 -5",
            "m 1 1.5",
            "m 1 99999999999999999999",
            "m one",
            "m 1\r",
            "m +nan",
            "m 1e999",
            "# TYPE m counters",
            "# TYPE m  counter",
            "# TYPE m",
            "# TYPE 1m gauge",
            "# HELP ",
            "{a=\"1\"} 1",
            " m 1",
            "\tm 1",
        ] {
            assert!(parse_exposition(text).is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn comment_look_alikes_are_comments() {
        for text in [
            "#",
            "# HELP",
            "#HELP m x",
            "# TYPEm gauge",
            "# help m x",
            "  # indented comment",
        ] {
            let e = parse_exposition(text).unwrap();
            assert!(e.samples.is_empty() && e.types.is_empty(), "{text:?}");
        }
    }
}
