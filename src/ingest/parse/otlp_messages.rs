//! The OTLP metrics messages (opentelemetry-proto, `metrics/v1`) as owned values, written out
//! for prost and serde: OTLP/JSON decodes into them by the lowerCamelCase names (64-bit
//! integers as strings or numbers, enums as integers), and they encode protobuf (and OTLP/JSON,
//! with integers as numbers) for the load generator, benchmarks, tests and perfwatch's answers. Protobuf requests are read in place by
//! `otlp_view` instead. Exemplars, metadata and schema URLs are left out (unknown fields are
//! ignored, as the specification asks of receivers).

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportMetricsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

impl ExportMetricsServiceRequest {
    /// Keeps one member of each `oneof` that an OTLP/JSON body (wrongly) set several of, by
    /// perfwatch's order: gauge, sum, histogram, exponential histogram, summary; `asDouble`
    /// before `asInt`; string, bool, int, double attribute values. Carried over to protobuf
    /// as they are, the last on the wire would win, which is an order by field number.
    pub fn keep_one_of_each(&mut self) {
        for resource in &mut self.resource_metrics {
            resource.resource.iter_mut().for_each(|r| one_value_each(&mut r.attributes));
            for scope in &mut resource.scope_metrics {
                scope.scope.iter_mut().for_each(|s| one_value_each(&mut s.attributes));
                scope.metrics.iter_mut().for_each(Metric::keep_one_of_each);
            }
        }
    }
}

impl Metric {
    fn keep_one_of_each(&mut self) {
        let mut seen = false;
        let mut keep = |present: bool| {
            let kept = present && !seen;
            seen |= present;
            kept
        };
        if !keep(self.gauge.is_some()) {
            self.gauge = None;
        }
        if !keep(self.sum.is_some()) {
            self.sum = None;
        }
        if !keep(self.histogram.is_some()) {
            self.histogram = None;
        }
        if !keep(self.exponential_histogram.is_some()) {
            self.exponential_histogram = None;
        }
        if !keep(self.summary.is_some()) {
            self.summary = None;
        }
        let numbers = self.gauge.iter_mut().flat_map(|g| &mut g.data_points);
        for point in numbers.chain(self.sum.iter_mut().flat_map(|s| &mut s.data_points)) {
            if point.as_double.is_some() {
                point.as_int = None;
            }
            one_value_each(&mut point.attributes);
        }
        for point in self.histogram.iter_mut().flat_map(|h| &mut h.data_points) {
            one_value_each(&mut point.attributes);
        }
        for point in self.exponential_histogram.iter_mut().flat_map(|h| &mut h.data_points) {
            one_value_each(&mut point.attributes);
        }
    }
}

fn one_value_each(attributes: &mut [KeyValue]) {
    for value in attributes.iter_mut().filter_map(|kv| kv.value.as_mut()) {
        if value.string_value.is_some() {
            (value.bool_value, value.int_value, value.double_value) = (None, None, None);
        } else if value.bool_value.is_some() {
            (value.int_value, value.double_value) = (None, None);
        } else if value.int_value.is_some() {
            value.double_value = None;
        }
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportMetricsPartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportMetricsPartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_data_points: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`, the body of an OTLP error answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceMetrics {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopeMetrics {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metric {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(string, tag = "3")]
    pub unit: String,
    #[prost(message, optional, tag = "5")]
    pub gauge: Option<Gauge>,
    #[prost(message, optional, tag = "7")]
    pub sum: Option<Sum>,
    #[prost(message, optional, tag = "9")]
    pub histogram: Option<Histogram>,
    #[prost(message, optional, tag = "10")]
    pub exponential_histogram: Option<ExponentialHistogram>,
    #[prost(message, optional, tag = "11")]
    pub summary: Option<Summary>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gauge {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
}

pub use super::otlp_view::{CUMULATIVE, DELTA};

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sum {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
    #[prost(int32, tag = "2")]
    #[serde(deserialize_with = "temporality")]
    pub aggregation_temporality: i32,
    #[prost(bool, tag = "3")]
    pub is_monotonic: bool,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Histogram {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<HistogramDataPoint>,
    #[prost(int32, tag = "2")]
    #[serde(deserialize_with = "temporality")]
    pub aggregation_temporality: i32,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExponentialHistogram {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<ExponentialHistogramDataPoint>,
    #[prost(int32, tag = "2")]
    #[serde(deserialize_with = "temporality")]
    pub aggregation_temporality: i32,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<SummaryDataPoint>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NumberDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "uint64")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "uint64")]
    pub time_unix_nano: u64,
    #[prost(double, optional, tag = "4")]
    #[serde(deserialize_with = "optional_double")]
    pub as_double: Option<f64>,
    #[prost(sfixed64, optional, tag = "6")]
    #[serde(deserialize_with = "optional_int64")]
    pub as_int: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HistogramDataPoint {
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "uint64")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "uint64")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "uint64")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "optional_double")]
    pub sum: Option<f64>,
    #[prost(fixed64, repeated, tag = "6")]
    #[serde(deserialize_with = "uint64s")]
    pub bucket_counts: Vec<u64>,
    #[prost(double, repeated, tag = "7")]
    #[serde(deserialize_with = "doubles")]
    pub explicit_bounds: Vec<f64>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExponentialHistogramDataPoint {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "uint64")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "uint64")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "uint64")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "optional_double")]
    pub sum: Option<f64>,
    #[prost(sint32, tag = "6")]
    pub scale: i32,
    #[prost(fixed64, tag = "7")]
    #[serde(deserialize_with = "uint64")]
    pub zero_count: u64,
    #[prost(message, optional, tag = "8")]
    pub positive: Option<Buckets>,
    #[prost(message, optional, tag = "9")]
    pub negative: Option<Buckets>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Buckets {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint64, repeated, tag = "2")]
    #[serde(deserialize_with = "uint64s")]
    pub bucket_counts: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SummaryDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "uint64")]
    pub count: u64,
    #[prost(double, tag = "5")]
    #[serde(deserialize_with = "double")]
    pub sum: f64,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// An attribute value; arrays, maps and bytes are not read (they make no label).
#[derive(Clone, PartialEq, prost::Message, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AnyValue {
    #[prost(string, optional, tag = "1")]
    pub string_value: Option<String>,
    #[prost(bool, optional, tag = "2")]
    pub bool_value: Option<bool>,
    #[prost(int64, optional, tag = "3")]
    #[serde(deserialize_with = "optional_int64")]
    pub int_value: Option<i64>,
    #[prost(double, optional, tag = "4")]
    pub double_value: Option<f64>,
}

/// A JSON integer written as a string (as OTLP/JSON does for 64-bit ones) or a number, read
/// by a visitor: serde's untagged enums buffer every value first, which made OTLP/JSON
/// several times slower.
enum JsonInt {
    Unsigned(u64),
    Signed(i64),
}

impl<'de> Deserialize<'de> for JsonInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonInt, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = JsonInt;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer, or an integer in a string")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<JsonInt, E> {
                Ok(JsonInt::Unsigned(v))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<JsonInt, E> {
                Ok(u64::try_from(v).map_or(JsonInt::Signed(v), JsonInt::Unsigned))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<JsonInt, E> {
                match text.parse::<u64>() {
                    Ok(v) => Ok(JsonInt::Unsigned(v)),
                    Err(_) => {
                        text.parse().map(JsonInt::Signed).map_err(|_| E::custom(format!("{text:?} is not an integer")))
                    }
                }
            }
        }
        d.deserialize_any(Visit)
    }
}

impl JsonInt {
    fn signed<E: serde::de::Error>(self) -> Result<i64, E> {
        match self {
            JsonInt::Unsigned(v) => i64::try_from(v).map_err(|_| E::custom("integer out of range")),
            JsonInt::Signed(v) => Ok(v),
        }
    }

    fn unsigned<E: serde::de::Error>(self) -> Result<u64, E> {
        match self {
            JsonInt::Unsigned(v) => Ok(v),
            JsonInt::Signed(_) => Err(E::custom("negative where an unsigned integer belongs")),
        }
    }
}

fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    JsonInt::deserialize(d)?.unsigned()
}

fn uint64s<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    Vec::<JsonInt>::deserialize(d)?.into_iter().map(JsonInt::unsigned).collect()
}

fn optional_int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<JsonInt>::deserialize(d)?.map(JsonInt::signed).transpose()
}

/// A double as protobuf's JSON mapping writes it: a number, or a string holding a number or
/// one of `NaN`, `Infinity` and `-Infinity` (the values are judged later, point by point).
struct JsonDouble(f64);

impl<'de> Deserialize<'de> for JsonDouble {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonDouble, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = JsonDouble;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, or \"NaN\", \"Infinity\", \"-Infinity\" or a number in a string")
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<JsonDouble, E> {
                Ok(JsonDouble(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<JsonDouble, E> {
                Ok(JsonDouble(v as f64))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<JsonDouble, E> {
                Ok(JsonDouble(v as f64))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<JsonDouble, E> {
                match text {
                    "NaN" => Ok(JsonDouble(f64::NAN)),
                    "Infinity" => Ok(JsonDouble(f64::INFINITY)),
                    "-Infinity" => Ok(JsonDouble(f64::NEG_INFINITY)),
                    _ => {
                        text.trim().parse().map(JsonDouble).map_err(|_| E::custom(format!("{text:?} is not a number")))
                    }
                }
            }
        }
        d.deserialize_any(Visit)
    }
}

fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(JsonDouble::deserialize(d)?.0)
}

fn optional_double<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<JsonDouble>::deserialize(d)?.map(|v| v.0))
}

fn doubles<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<JsonDouble>::deserialize(d)?.into_iter().map(|v| v.0).collect())
}

/// An enum as its number (or, leniently, its name).
fn temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(i32),
        Name(String),
    }
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n,
        Value::Name(name) if name.ends_with("DELTA") => DELTA,
        Value::Name(name) if name.ends_with("CUMULATIVE") => CUMULATIVE,
        Value::Name(_) => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_doubles_take_protobufs_spellings() {
        let point: NumberDataPoint = serde_json::from_str(r#"{"asDouble": "NaN"}"#).unwrap();
        assert!(point.as_double.is_some_and(f64::is_nan));
        let point: NumberDataPoint = serde_json::from_str(r#"{"asDouble": "-Infinity"}"#).unwrap();
        assert_eq!(point.as_double, Some(f64::NEG_INFINITY));
        let point: NumberDataPoint = serde_json::from_str(r#"{"asDouble": "2.5"}"#).unwrap();
        assert_eq!(point.as_double, Some(2.5));
        let histogram: HistogramDataPoint =
            serde_json::from_str(r#"{"sum": 3, "explicitBounds": [0.1, "Infinity"]}"#).unwrap();
        assert_eq!((histogram.sum, histogram.explicit_bounds), (Some(3.0), vec![0.1, f64::INFINITY]));
        assert!(serde_json::from_str::<NumberDataPoint>(r#"{"asDouble": "fast"}"#).is_err());
    }

    #[test]
    fn json_integers_are_read_from_strings_or_numbers() {
        let point: NumberDataPoint =
            serde_json::from_str(r#"{"timeUnixNano": "1764000005000000000", "asInt": "-7"}"#).unwrap();
        assert_eq!((point.time_unix_nano, point.as_int), (1_764_000_005_000_000_000, Some(-7)));
        let point: NumberDataPoint = serde_json::from_str(r#"{"timeUnixNano": 5, "asInt": -7}"#).unwrap();
        assert_eq!((point.time_unix_nano, point.as_int), (5, Some(-7)));
        let histogram: HistogramDataPoint =
            serde_json::from_str(r#"{"bucketCounts": ["1", 2], "count": "3"}"#).unwrap();
        assert_eq!((histogram.bucket_counts, histogram.count), (vec![1, 2], 3));
        let not_a_number = serde_json::from_str::<NumberDataPoint>(r#"{"timeUnixNano": "soon"}"#).unwrap_err();
        assert!(not_a_number.to_string().contains("\"soon\" is not an integer"), "{not_a_number}");
        let negative = serde_json::from_str::<NumberDataPoint>(r#"{"timeUnixNano": "-1"}"#).unwrap_err();
        assert!(negative.to_string().contains("negative where an unsigned integer belongs"), "{negative}");
        let float = serde_json::from_str::<NumberDataPoint>(r#"{"timeUnixNano": 1.5}"#).unwrap_err();
        assert!(float.to_string().contains("an integer, or an integer in a string"), "{float}");
    }
}
