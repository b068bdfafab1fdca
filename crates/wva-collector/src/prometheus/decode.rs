//! Decoding `/api/v1/query` answers into samples (spec §1.4 "Decoding").

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

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

/// The envelope of an error (or non-2xx) answer; `data` is skipped.
#[derive(Deserialize)]
struct ErrorEnvelope {
    status: String,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
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
    let env: ErrorEnvelope = serde_json::from_slice(body).ok()?;
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
    let mut names: Vec<Arc<str>> = keep.iter().map(|k| Arc::from(*k)).collect();
    names.sort();
    let mut out = DecodedResult {
        bytes: body.len(),
        ..DecodedResult::default()
    };
    let mut sink = SampleSink {
        names: &names,
        // Label values interned within one answer: many samples share a namespace or model.
        interned: HashSet::new(),
        out: &mut out,
    };
    // One streaming pass: samples go straight into `out`, no JSON tree is built.
    let mut de = serde_json::Deserializer::from_slice(body);
    let env = EnvelopeSeed(&mut sink)
        .deserialize(&mut de)
        .and_then(|env| de.end().map(|()| env))
        .map_err(|e| {
            if e.is_data() {
                decode_err(e.to_string())
            } else {
                decode_err(format!("{e}; body starts with \"{}\"", body_excerpt(body)))
            }
        })?;
    if env.status.as_deref() != Some("success") {
        let status = env.status.unwrap_or_default();
        return Err(CollectorError::Api {
            query: query.to_string(),
            status: 200,
            error_type: env.error_type.unwrap_or_else(|| status.clone()),
            error: env.error.unwrap_or_default(),
        });
    }
    let result_type = env
        .result_type
        .ok_or_else(|| decode_err("no data in a success answer".to_string()))?;
    if result_type != "vector" {
        return Err(CollectorError::UnexpectedResultType {
            query: query.to_string(),
            got: result_type,
        });
    }
    if let Some(early) = env.early_result {
        // `result` came before `resultType` (Prometheus never does this): decode it now.
        ResultSeed(&mut SampleSink {
            names: &names,
            interned: HashSet::new(),
            out: &mut out,
        })
        .deserialize(early)
        .map_err(|e| decode_err(e.to_string()))?;
    }
    out.warnings = env.warnings;
    Ok(out)
}

/// What the envelope holds besides the streamed samples.
#[derive(Default)]
struct EnvelopeParts {
    status: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
    /// `data.resultType`; `None` when there is no `data`.
    result_type: Option<String>,
    /// `data.result` when it preceded `resultType`.
    early_result: Option<serde_json::Value>,
    /// `warnings` + `infos` received.
    warnings: usize,
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum EnvelopeField {
    #[serde(rename = "status")]
    Status,
    #[serde(rename = "data")]
    Data,
    #[serde(rename = "errorType")]
    ErrorType,
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "warnings")]
    Warnings,
    #[serde(rename = "infos")]
    Infos,
    #[serde(other)]
    Other,
}

/// The answer object, its `data.result` streamed into the sink.
struct EnvelopeSeed<'a, 's>(&'a mut SampleSink<'s>);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, '_> {
    type Value = EnvelopeParts;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EnvelopeParts, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, '_> {
    type Value = EnvelopeParts;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Prometheus API answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvelopeParts, A::Error> {
        let mut parts = EnvelopeParts::default();
        while let Some(field) = map.next_key::<EnvelopeField>()? {
            match field {
                EnvelopeField::Status => parts.status = Some(map.next_value()?),
                EnvelopeField::ErrorType => parts.error_type = map.next_value()?,
                EnvelopeField::Error => parts.error = map.next_value()?,
                EnvelopeField::Warnings | EnvelopeField::Infos => {
                    let list: Option<Vec<IgnoredAny>> = map.next_value()?;
                    parts.warnings += list.map_or(0, |l| l.len());
                }
                EnvelopeField::Data => {
                    let data: Option<DataParts> =
                        map.next_value_seed(OptionSeed(DataSeed(&mut *self.0)))?;
                    if let Some(data) = data {
                        parts.result_type = data.result_type;
                        parts.early_result = data.early_result;
                    }
                }
                EnvelopeField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if parts.status.is_none() {
            return Err(de::Error::missing_field("status"));
        }
        Ok(parts)
    }
}

/// `data` reduced to its result type (the samples went into the sink).
struct DataParts {
    result_type: Option<String>,
    early_result: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum DataField {
    #[serde(rename = "resultType")]
    ResultType,
    #[serde(rename = "result")]
    Result,
    #[serde(other)]
    Other,
}

/// A nullable value read through a seed.
struct OptionSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for OptionSeed<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for OptionSeed<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an optional value")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// The `data` object: a vector `result` is streamed once its type is known.
struct DataSeed<'a, 's>(&'a mut SampleSink<'s>);

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = DataParts;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DataParts, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = DataParts;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a data object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataParts, A::Error> {
        let mut parts = DataParts {
            result_type: None,
            early_result: None,
        };
        while let Some(field) = map.next_key::<DataField>()? {
            match field {
                DataField::ResultType => parts.result_type = Some(map.next_value()?),
                DataField::Result => match parts.result_type.as_deref() {
                    Some("vector") => map.next_value_seed(ResultSeed(&mut *self.0))?,
                    Some(_) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    None => parts.early_result = Some(map.next_value()?),
                },
                DataField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if parts.result_type.is_none() {
            return Err(de::Error::missing_field("resultType"));
        }
        Ok(parts)
    }
}

/// Where streamed samples go: the kept label names, the interned values and the answer.
struct SampleSink<'s> {
    names: &'s [Arc<str>],
    interned: HashSet<Arc<str>>,
    out: &'s mut DecodedResult,
}

impl SampleSink<'_> {
    fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(a) = self.interned.get(value) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(value);
        self.interned.insert(a.clone());
        a
    }
}

/// A string borrowed from the body when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The `result` array, each sample pushed into the sink as it is parsed.
struct ResultSeed<'a, 's>(&'a mut SampleSink<'s>);

impl<'de> DeserializeSeed<'de> for ResultSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ResultSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of samples")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.0.out.samples.reserve(n);
        }
        while seq.next_element_seed(SampleSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum SampleField {
    Metric,
    Value,
    Histogram,
    #[serde(other)]
    Other,
}

/// One sample object: kept labels, then the value (or a skipped native histogram).
struct SampleSeed<'a, 's>(&'a mut SampleSink<'s>);

impl<'de> DeserializeSeed<'de> for SampleSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SampleSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sample object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let sink = self.0;
        let mut labels: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        let mut value: Option<(f64, Text<'de>)> = None;
        let mut histogram = false;
        while let Some(field) = map.next_key::<SampleField>()? {
            match field {
                SampleField::Metric => {
                    labels = map.next_value_seed(MetricSeed(&mut *sink))?;
                }
                SampleField::Value => value = Some(map.next_value()?),
                SampleField::Histogram => {
                    map.next_value::<IgnoredAny>()?;
                    histogram = true;
                }
                SampleField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let Some((t, text)) = value else {
            if histogram {
                sink.out.unsupported += 1;
                return Ok(());
            }
            return Err(de::Error::custom(
                "a sample has neither value nor histogram",
            ));
        };
        let v: f64 = text
            .0
            .parse()
            .map_err(|_| de::Error::custom(format!("sample value {:?} is not a number", text.0)))?;
        sink.out.samples.push(Sample { labels, t, v });
        Ok(())
    }
}

/// A `metric` object reduced to the kept labels, sorted by name.
struct MetricSeed<'a, 's>(&'a mut SampleSink<'s>);

impl<'de> DeserializeSeed<'de> for MetricSeed<'_, '_> {
    type Value = Vec<(Arc<str>, Arc<str>)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetricSeed<'_, '_> {
    type Value = Vec<(Arc<str>, Arc<str>)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a label map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let sink = self.0;
        let mut labels: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        while let Some(name) = map.next_key::<Text<'de>>()? {
            let kept = sink
                .names
                .binary_search_by(|n| (**n).cmp(&*name.0))
                .ok()
                .map(|i| sink.names[i].clone());
            match kept {
                Some(name) => {
                    let value: Text<'de> = map.next_value()?;
                    let value = sink.intern(&value.0);
                    match labels.iter_mut().find(|(k, _)| *k == name) {
                        Some(slot) => slot.1 = value,
                        None => labels.push((name, value)),
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        labels.shrink_to_fit();
        Ok(labels)
    }
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
