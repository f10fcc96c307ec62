//! Request bodies to requests: gzip or zstd within a size limit, then OTLP
//! protobuf or OTLP/JSON. Pure functions over bytes; the receivers read the
//! bytes and map these errors to their protocol's codes.

use std::io::Read;

use prost::Message;

use crate::OtlpSignal;

/// A body Sluice cannot turn into a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not valid gzip, protobuf or JSON: the message says which and where.
    #[error("{0}")]
    Malformed(String),
    /// Larger than its limit once decompressed.
    #[error("{0}")]
    TooLarge(String),
    /// Decompressing it would take more memory than may be spent now.
    #[error("{0}")]
    OverBudget(String),
}

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub const PROTOBUF: &str = "application/x-protobuf";
    pub const JSON: &str = "application/json";

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => Self::PROTOBUF,
            Encoding::Json => Self::JSON,
        }
    }
}

/// How a request body is compressed (HTTP `Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    Zstd,
}

impl Compression {
    /// The encodings a sender may name, for error messages.
    pub const ACCEPTED: &str = "gzip, zstd or identity";

    /// Reads a `Content-Encoding` value; `None` for one Sluice cannot
    /// decode. Only a single coding is accepted: OTLP exporters never stack
    /// them, and each layer would need its own limit.
    pub fn from_header(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Self::Identity),
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// Decompresses `raw`, never holding more than `limit` bytes of output.
    /// An identity body is returned as it is (its size was limited as read).
    pub fn decompress(self, raw: bytes::Bytes, limit: usize) -> Result<bytes::Bytes, DecodeError> {
        self.decompress_within(raw, limit, &mut |_| true)
    }

    /// [`Compression::decompress`], asking `reserve` for each step of
    /// output memory (at most [`STEP`] bytes) before it is used; a refusal
    /// stops with [`DecodeError::OverBudget`].
    pub fn decompress_within(
        self,
        raw: bytes::Bytes,
        limit: usize,
        reserve: &mut dyn FnMut(usize) -> bool,
    ) -> Result<bytes::Bytes, DecodeError> {
        match self {
            Self::Identity => Ok(raw),
            Self::Gzip => read_limited(
                flate2::read::MultiGzDecoder::new(&raw[..]),
                limit,
                "gzip",
                reserve,
            )
            .map(Into::into),
            Self::Zstd => read_limited(zstd_decoder(&raw)?, limit, "zstd", reserve).map(Into::into),
        }
    }
}

/// Output grows by this much at a time, each step reserved first.
pub const STEP: usize = 1 << 20;

/// Inflates a gzip body (several members, as gzip allows) without ever
/// holding more than `limit` bytes of output.
pub fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    read_limited(
        flate2::read::MultiGzDecoder::new(raw),
        limit,
        "gzip",
        &mut |_| true,
    )
}

/// The largest zstd window a body may ask for: 8 MiB, the bound RFC 9659
/// sets for `Content-Encoding: zstd`. Without it a 20-byte frame could make
/// the decoder reserve 128 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Decompresses a zstd body (several frames, as zstd allows) without ever
/// holding more than `limit` bytes of output.
pub fn unzstd(raw: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    read_limited(zstd_decoder(raw)?, limit, "zstd", &mut |_| true)
}

fn zstd_decoder(raw: &[u8]) -> Result<impl Read + '_, DecodeError> {
    let malformed = |e: std::io::Error| DecodeError::Malformed(format!("invalid zstd body: {e}"));
    let mut decoder = zstd::stream::read::Decoder::with_buffer(raw).map_err(malformed)?;
    decoder
        .window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(malformed)?;
    Ok(decoder)
}

/// Reads `decoder` to its end in steps of at most [`STEP`] bytes, each
/// reserved first, refusing output past `limit`.
fn read_limited(
    decoder: impl Read,
    limit: usize,
    name: &str,
    reserve: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = decoder.take(limit as u64 + 1);
    let mut out: Vec<u8> = Vec::new();
    loop {
        let step = STEP.min(limit + 1 - out.len());
        if !reserve(step) {
            return Err(DecodeError::OverBudget(format!(
                "decompressing the request body would take more memory than the server may \
                 spend on requests now ({} bytes so far); retry later",
                out.len()
            )));
        }
        let start = out.len();
        out.resize(start + step, 0);
        let mut filled = start;
        while filled < out.len() {
            match decoder.read(&mut out[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(DecodeError::Malformed(format!("invalid {name} body: {e}")));
                }
            }
        }
        out.truncate(filled);
        if out.len() > limit {
            return Err(DecodeError::TooLarge(format!(
                "request body exceeds the limit of {limit} bytes once decompressed"
            )));
        }
        if filled < start + step {
            return Ok(out);
        }
    }
}

/// Decodes one export request of signal `S`.
pub fn decode<S: OtlpSignal>(encoding: Encoding, bytes: &[u8]) -> Result<S::Request, DecodeError> {
    match encoding {
        Encoding::Protobuf => S::Request::decode(bytes).map_err(|e| {
            DecodeError::Malformed(format!(
                "malformed OTLP protobuf {} request: {e}",
                S::SIGNAL.name()
            ))
        }),
        Encoding::Json => decode_json::<S::Request>(bytes).map_err(|e| {
            DecodeError::Malformed(format!(
                "malformed OTLP/JSON {} request: {e}",
                S::SIGNAL.name()
            ))
        }),
    }
}

/// Decodes OTLP/JSON. The protobuf JSON mapping lets a sender omit empty
/// fields, but opentelemetry-proto's serde types insist on a few of them
/// (`values` of an `arrayValue` or `kvlistValue`, a KeyValue's `key`). The
/// fast path decodes directly; only a request refused for a missing field
/// is decoded again with those fields filled in.
fn decode_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let first = match serde_json::from_slice(bytes) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    if !first.to_string().starts_with("missing field") {
        return Err(first);
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
    fill_omitted_defaults(&mut value);
    serde_json::from_value(value).map_err(|_| first)
}

fn fill_omitted_defaults(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            for (name, child) in fields.iter_mut() {
                if (name == "arrayValue" || name == "kvlistValue")
                    && let Value::Object(list) = child
                {
                    list.entry("values")
                        .or_insert_with(|| Value::Array(Vec::new()));
                }
                if (name == "attributes" || name == "values")
                    && let Value::Array(items) = child
                {
                    for item in items.iter_mut() {
                        if let Value::Object(kv) = item
                            && (kv.contains_key("value") || name == "attributes")
                        {
                            kv.entry("key")
                                .or_insert_with(|| Value::String(String::new()));
                        }
                    }
                }
                fill_omitted_defaults(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fill_omitted_defaults),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    #[test]
    fn omitted_empty_fields_decode_as_empty() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
            "attributes":[
                {"key":"empty.array","value":{"arrayValue":{}}},
                {"key":"empty.map","value":{"kvlistValue":{}}},
                {"value":{"stringValue":"no key"}},
                {"key":"nested","value":{"kvlistValue":{"values":[
                    {"value":{"arrayValue":{}}}
                ]}}}
            ]}]}]}]}"#;
        // opentelemetry-proto alone refuses this valid request...
        assert!(serde_json::from_slice::<ExportTraceServiceRequest>(body).is_err());
        // ...so the fallback fills in what the sender was allowed to omit.
        let req: ExportTraceServiceRequest = decode_json(body).unwrap();
        let attrs = &req.resource_spans[0].scope_spans[0].spans[0].attributes;
        let value = |i: usize| attrs[i].value.as_ref().and_then(|v| v.value.clone());
        assert!(matches!(value(0), Some(Value::ArrayValue(a)) if a.values.is_empty()));
        assert!(matches!(value(1), Some(Value::KvlistValue(l)) if l.values.is_empty()));
        assert_eq!(attrs[2].key, "");
        let Some(Value::KvlistValue(nested)) = value(3) else {
            panic!("{:?}", value(3))
        };
        assert_eq!(nested.values[0].key, "");
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::encode_all(data, 3).unwrap()
    }

    #[test]
    fn zstd_bodies_decompress_within_the_limit() {
        let data = b"span ".repeat(10_000);
        let raw = zstd(&data);
        assert_eq!(unzstd(&raw, data.len()).unwrap(), data);
        // Two frames back to back are one body, as with gzip members.
        let mut two = raw.clone();
        two.extend_from_slice(&zstd(b"tail"));
        assert_eq!(unzstd(&two, 1 << 20).unwrap().len(), data.len() + 4);
        // One byte over the limit is refused as too large, not truncated.
        assert!(matches!(
            unzstd(&raw, data.len() - 1),
            Err(DecodeError::TooLarge(_))
        ));
    }

    #[test]
    fn corrupt_or_oversized_frames_are_malformed() {
        let raw = zstd(&b"x".repeat(1000));
        let truncated = &raw[..raw.len() - 3];
        let e = unzstd(truncated, 1 << 20).unwrap_err();
        assert!(
            matches!(&e, DecodeError::Malformed(m) if m.contains("zstd")),
            "{e:?}"
        );
        assert!(matches!(
            unzstd(b"plain text", 1 << 20),
            Err(DecodeError::Malformed(_))
        ));
        // A frame that asks for a 1 GiB window is refused before anything is
        // reserved for it.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        encoder.long_distance_matching(true).unwrap();
        encoder.window_log(30).unwrap();
        std::io::Write::write_all(&mut encoder, &b"y".repeat(4096)).unwrap();
        let wide = encoder.finish().unwrap();
        let e = unzstd(&wide, 1 << 20).unwrap_err();
        assert!(
            matches!(&e, DecodeError::Malformed(m) if m.contains("zstd")),
            "{e:?}"
        );
    }

    #[test]
    fn every_step_of_output_is_reserved_first() {
        let data = b"span ".repeat(1_000_000);
        let raw = bytes::Bytes::from(zstd(&data));
        let mut reserved = 0;
        let out = Compression::Zstd
            .decompress_within(raw.clone(), 64 << 20, &mut |n| {
                reserved += n;
                true
            })
            .unwrap();
        assert_eq!(out.len(), data.len());
        assert!(
            reserved >= data.len() && reserved <= data.len() + STEP,
            "{reserved}"
        );
        // Refused at the second step: nothing past the first is read.
        let mut steps = 0;
        let e = Compression::Zstd
            .decompress_within(raw, 64 << 20, &mut |_| {
                steps += 1;
                steps < 2
            })
            .unwrap_err();
        assert!(matches!(e, DecodeError::OverBudget(_)), "{e:?}");
    }

    #[test]
    fn content_encodings() {
        assert_eq!(Compression::from_header(" GZIP "), Some(Compression::Gzip));
        assert_eq!(Compression::from_header("zstd"), Some(Compression::Zstd));
        assert_eq!(Compression::from_header(""), Some(Compression::Identity));
        assert_eq!(Compression::from_header("br"), None);
        assert_eq!(Compression::from_header("gzip, zstd"), None);
    }

    #[test]
    fn other_errors_are_reported_as_they_were() {
        let err = decode_json::<ExportTraceServiceRequest>(br#"{"resourceSpans": 5}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
