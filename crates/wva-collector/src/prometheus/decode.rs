//! Decoding `/api/v1/query` answers into samples (spec §1.4 "Decoding").

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::CollectorError;

/// One decoded vector sample: the kept labels, its evaluation time and value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// Kept labels (grouping labels only), sorted by name.
    pub labels: Vec<(Arc<str>, Arc<str>)>,
    /// Evaluation timestamp (unix seconds).
    pub t: f64,
    /// Value; NaN and ±Inf are kept here and dropped when assembling.
    pub v: f64,
}

impl Sample {
    /// The value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }
}

/// A decoded answer, as cached.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DecodedResult {
    /// Float samples.
    pub samples: Vec<Sample>,
    /// Native-histogram samples skipped.
    pub unsupported: usize,
    /// `warnings` + `infos` received.
    pub warnings: usize,
    /// Decoded body size.
    pub bytes: usize,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    infos: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSample {
    #[serde(default)]
    metric: HashMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    histogram: Option<serde_json::Value>,
}

/// Replaces control characters and keeps at most the first 256 bytes of a body.
pub(crate) fn body_excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(256)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An error answer (`status: "error"`), if the body is one.
pub(crate) fn error_answer(body: &[u8]) -> Option<(String, String)> {
    let env: Envelope = serde_json::from_slice(body).ok()?;
    if env.status == "error" {
        Some((
            env.error_type.unwrap_or_else(|| "unknown".to_string()),
            env.error.unwrap_or_default(),
        ))
    } else {
        None
    }
}

/// Decodes a 2xx body; keeps only the labels in `keep`.
pub(crate) fn decode(
    query: &str,
    body: &[u8],
    keep: &[&str],
) -> Result<DecodedResult, CollectorError> {
    let decode_err = |reason: String| CollectorError::Decode {
        query: query.to_string(),
        reason,
    };
    let env: Envelope = serde_json::from_slice(body)
        .map_err(|e| decode_err(format!("{e}; body starts with \"{}\"", body_excerpt(body))))?;
    if env.status != "success" {
        return Err(CollectorError::Api {
            query: query.to_string(),
            status: 200,
            error_type: env.error_type.unwrap_or_else(|| env.status.clone()),
            error: env.error.unwrap_or_default(),
        });
    }
    let data = env
        .data
        .ok_or_else(|| decode_err("no data in a success answer".to_string()))?;
    if data.result_type != "vector" {
        return Err(CollectorError::UnexpectedResultType {
            query: query.to_string(),
            got: data.result_type,
        });
    }
    let raw: Vec<RawSample> =
        serde_json::from_value(data.result).map_err(|e| decode_err(e.to_string()))?;
    let mut out = DecodedResult {
        samples: Vec::with_capacity(raw.len()),
        unsupported: 0,
        warnings: env.warnings.map_or(0, |w| w.len()) + env.infos.map_or(0, |w| w.len()),
        bytes: body.len(),
    };
    // Intern label values within one answer: many samples share a namespace or model.
    let mut interned: HashMap<String, Arc<str>> = HashMap::new();
    let mut names: Vec<Arc<str>> = keep.iter().map(|k| Arc::from(*k)).collect();
    names.sort();
    for s in raw {
        let Some((t, text)) = s.value else {
            if s.histogram.is_some() {
                out.unsupported += 1;
                continue;
            }
            return Err(decode_err(
                "a sample has neither value nor histogram".to_string(),
            ));
        };
        let v: f64 = text
            .parse()
            .map_err(|_| decode_err(format!("sample value {text:?} is not a number")))?;
        let mut labels = Vec::new();
        for name in &names {
            if let Some(val) = s.metric.get(&**name) {
                let val = match interned.get(val) {
                    Some(a) => a.clone(),
                    None => {
                        let a: Arc<str> = Arc::from(val.as_str());
                        interned.insert(val.clone(), a.clone());
                        a
                    }
                };
                labels.push((name.clone(), val));
            }
        }
        out.samples.push(Sample { labels, t, v });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: &[&str] = &["namespace", "model_name", "pod"];

    #[test]
    fn vector_with_nan_inf_and_histogram_decodes() {
        let body = br#"{"status":"success","warnings":["w"],"data":{"resultType":"vector","result":[
            {"metric":{"namespace":"ns","pod":"p","model_name":"m","extra":"x"},"value":[100.5,"NaN"]},
            {"metric":{"namespace":"ns","pod":"q","model_name":"m"},"value":[100.5,"+Inf"]},
            {"metric":{"namespace":"ns","pod":"r","model_name":"m"},"value":[100.5,"0.25"]},
            {"metric":{},"histogram":[100.5,{"count":"1"}]}]},"unknown":1}"#;
        let d = decode("q", body, KEEP).unwrap();
        assert_eq!(d.samples.len(), 3);
        assert!(d.samples[0].v.is_nan());
        assert_eq!(d.samples[1].v, f64::INFINITY);
        assert_eq!(d.samples[2].v, 0.25);
        assert_eq!(d.samples[0].label("extra"), None);
        assert_eq!(d.samples[0].label("pod"), Some("p"));
        assert_eq!(d.unsupported, 1);
        assert_eq!(d.warnings, 1);
    }

    #[test]
    fn matrix_and_scalar_are_unexpected_result_types() {
        for t in ["matrix", "scalar"] {
            let body =
                format!(r#"{{"status":"success","data":{{"resultType":"{t}","result":[]}}}}"#);
            let e = decode("kv_cache_usage", body.as_bytes(), KEEP).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("query kv_cache_usage: expected a vector result, got {t}")
            );
        }
    }

    #[test]
    fn html_is_a_decode_error_with_a_clean_excerpt() {
        let e = decode("q", b"<html>\n<body>oops</body></html>", KEEP).unwrap_err();
        assert!(matches!(e, CollectorError::Decode { .. }));
        assert!(e.to_string().contains("<html> <body>oops"), "{e}");
    }
}
