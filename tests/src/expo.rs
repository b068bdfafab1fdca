//! A small parser of the Prometheus text format, enough to read the manager's own `/metrics`.

use std::collections::BTreeMap;

/// One sample: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses every sample line (comments skipped; unparsable lines ignored).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// The `# TYPE` of each family.
pub fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => (&line[..i], &line[i..]),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '}' {
                end = Some(i);
                break;
            }
            if c == ',' || c == ' ' {
                continue;
            }
            let key_start = i;
            let mut key_end = i;
            for (j, c2) in chars.by_ref() {
                if c2 == '=' {
                    key_end = j;
                    break;
                }
            }
            let key = body[key_start..key_end].trim().to_string();
            chars.next(); // opening quote
            let mut value = String::new();
            while let Some((_, c3)) = chars.next() {
                match c3 {
                    '\\' => match chars.next().map(|p| p.1) {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => {}
                    },
                    '"' => break,
                    other => value.push(other),
                }
            }
            labels.insert(key, value);
        }
        &body[end? + 1..]
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Values of `name` keyed by the value of `label`.
pub fn by_label(samples: &[Sample], name: &str, label: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter_map(|s| Some((s.labels.get(label)?.clone(), s.value)))
        .collect()
}

/// Sum of every sample of `name`.
pub fn sum(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_escapes_and_plain_samples() {
        let text = "# TYPE a gauge\na{x=\"1\",y=\"q\\\"z\"} 2.5\nb 3\nc{} +Inf\n";
        let s = parse(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels["y"], "q\"z");
        assert_eq!(s[0].value, 2.5);
        assert_eq!(s[1].name, "b");
        assert!(s[2].value.is_infinite());
        assert_eq!(types(text)["a"], "gauge");
    }
}
