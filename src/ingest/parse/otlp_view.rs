//! OTLP metrics (`metrics/v1`) read in place from protobuf bytes: names, units and attribute
//! text borrow the body and lists live in the request's arena, so decoding allocates nothing
//! on the heap per data point. Only what perfwatch maps is kept; descriptions, scopes,
//! exemplars, min/max, flags, metadata, schema URLs and unknown fields are skipped, as the
//! specification asks of receivers. Scopes are flattened: a resource's metrics are one list.

use bumpalo::Bump;
use bumpalo::collections::Vec as BumpVec;

use super::protowire::Fields;
pub use super::protowire::WireError;

/// `AggregationTemporality`: 1 delta, 2 cumulative.
pub const DELTA: i32 = 1;
pub const CUMULATIVE: i32 = 2;

/// An `ExportMetricsServiceRequest`.
pub struct Request<'a> {
    pub resources: &'a [ResourceMetrics<'a>],
}

pub struct ResourceMetrics<'a> {
    /// The resource's attributes.
    pub attributes: &'a [KeyValue<'a>],
    /// The metrics of all its scopes.
    pub metrics: &'a [Metric<'a>],
}

pub struct Metric<'a> {
    pub name: &'a str,
    pub unit: &'a str,
    pub data: Data<'a>,
}

/// A metric's points, by type (the last one on the wire, as for a protobuf `oneof`).
pub enum Data<'a> {
    Missing,
    Gauge(&'a [NumberPoint<'a>]),
    Sum {
        points: &'a [NumberPoint<'a>],
        temporality: i32,
        monotonic: bool,
    },
    Histogram {
        points: &'a [HistogramPoint<'a>],
        temporality: i32,
    },
    Exponential {
        points: &'a [ExponentialPoint<'a>],
        temporality: i32,
    },
    /// Summaries are refused; only how many points there were matters.
    Summary {
        points: usize,
    },
}

pub struct NumberPoint<'a> {
    pub attributes: &'a [KeyValue<'a>],
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    /// `as_double`, or `as_int` as a float; `None` when the point has neither.
    pub value: Option<f64>,
}

pub struct HistogramPoint<'a> {
    pub attributes: &'a [KeyValue<'a>],
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub bucket_counts: &'a [u64],
    pub explicit_bounds: &'a [f64],
}

pub struct ExponentialPoint<'a> {
    pub attributes: &'a [KeyValue<'a>],
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub scale: i32,
    pub zero_count: u64,
    pub positive_offset: i32,
    pub positive: &'a [u64],
    /// Whether any negative bucket holds observations (timings cannot).
    pub has_negative: bool,
}

pub struct KeyValue<'a> {
    pub key: &'a str,
    pub value: AttributeValue<'a>,
}

/// An attribute's value; arrays, maps and bytes are `Other` (they make no label).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttributeValue<'a> {
    Missing,
    Text(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Other,
}

/// Decodes an `ExportMetricsServiceRequest` from `body` into `bump`.
pub fn decode<'a>(body: &'a [u8], bump: &'a Bump) -> Result<Request<'a>, WireError> {
    let mut resources = BumpVec::new_in(bump);
    let mut fields = Fields::new(body, "ExportMetricsServiceRequest");
    while let Some((field, value)) = fields.next_field()? {
        if field == 1 {
            resources.push(resource_metrics(fields.bytes(field, value)?, bump)?);
        }
    }
    Ok(Request { resources: resources.into_bump_slice() })
}

fn resource_metrics<'a>(bytes: &'a [u8], bump: &'a Bump) -> Result<ResourceMetrics<'a>, WireError> {
    let (mut attributes, mut metrics) = (BumpVec::new_in(bump), BumpVec::new_in(bump));
    let mut fields = Fields::new(bytes, "ResourceMetrics");
    while let Some((field, value)) = fields.next_field()? {
        match field {
            1 => {
                let mut resource = Fields::new(fields.bytes(field, value)?, "Resource");
                while let Some((field, value)) = resource.next_field()? {
                    if field == 1 {
                        attributes.push(key_value(resource.bytes(field, value)?)?);
                    }
                }
            }
            2 => {
                let mut scope = Fields::new(fields.bytes(field, value)?, "ScopeMetrics");
                while let Some((field, value)) = scope.next_field()? {
                    if field == 2 {
                        metrics.push(metric(scope.bytes(field, value)?, bump)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(ResourceMetrics { attributes: attributes.into_bump_slice(), metrics: metrics.into_bump_slice() })
}

fn metric<'a>(bytes: &'a [u8], bump: &'a Bump) -> Result<Metric<'a>, WireError> {
    let mut metric = Metric { name: "", unit: "", data: Data::Missing };
    let mut fields = Fields::new(bytes, "Metric");
    while let Some((field, value)) = fields.next_field()? {
        match field {
            1 => metric.name = fields.string(field, value)?,
            3 => metric.unit = fields.string(field, value)?,
            5 => {
                let (points, _, _) = points(fields.bytes(field, value)?, "Gauge", bump, number_point)?;
                metric.data = Data::Gauge(points);
            }
            7 => {
                let (points, temporality, monotonic) = points(fields.bytes(field, value)?, "Sum", bump, number_point)?;
                metric.data = Data::Sum { points, temporality, monotonic };
            }
            9 => {
                let (points, temporality, _) = points(fields.bytes(field, value)?, "Histogram", bump, histogram_point)?;
                metric.data = Data::Histogram { points, temporality };
            }
            10 => {
                let bytes = fields.bytes(field, value)?;
                let (points, temporality, _) = points(bytes, "ExponentialHistogram", bump, exponential_point)?;
                metric.data = Data::Exponential { points, temporality };
            }
            11 => {
                let mut summary = Fields::new(fields.bytes(field, value)?, "Summary");
                let mut n = 0;
                while let Some((field, _)) = summary.next_field()? {
                    n += usize::from(field == 1);
                }
                metric.data = Data::Summary { points: n };
            }
            _ => {}
        }
    }
    Ok(metric)
}

/// The body of a `Gauge`, `Sum`, `Histogram` or `ExponentialHistogram`: its data points
/// (field 1), aggregation temporality (2, but not in a gauge) and, for a sum, whether it is
/// monotonic (3). Fields the message does not define are skipped whatever their type.
fn points<'a, P>(
    bytes: &'a [u8],
    message: &'static str,
    bump: &'a Bump,
    point: fn(&'a [u8], &'a Bump) -> Result<P, WireError>,
) -> Result<(&'a [P], i32, bool), WireError> {
    let (mut points, mut temporality, mut monotonic) = (BumpVec::new_in(bump), 0, false);
    let mut fields = Fields::new(bytes, message);
    while let Some((field, value)) = fields.next_field()? {
        match field {
            1 => points.push(point(fields.bytes(field, value)?, bump)?),
            2 if message != "Gauge" => temporality = fields.uint(field, value)? as i32,
            3 if message == "Sum" => monotonic = fields.uint(field, value)? != 0,
            _ => {}
        }
    }
    Ok((points.into_bump_slice(), temporality, monotonic))
}

fn number_point<'a>(bytes: &'a [u8], bump: &'a Bump) -> Result<NumberPoint<'a>, WireError> {
    let mut attributes = BumpVec::new_in(bump);
    let mut point = NumberPoint { attributes: &[], start_time_unix_nano: 0, time_unix_nano: 0, value: None };
    let mut fields = Fields::new(bytes, "NumberDataPoint");
    while let Some((field, value)) = fields.next_field()? {
        match field {
            7 => attributes.push(key_value(fields.bytes(field, value)?)?),
            2 => point.start_time_unix_nano = fields.fixed64(field, value)?,
            3 => point.time_unix_nano = fields.fixed64(field, value)?,
            4 => point.value = Some(fields.double(field, value)?),
            6 => point.value = Some(fields.fixed64(field, value)? as i64 as f64),
            _ => {}
        }
    }
    point.attributes = attributes.into_bump_slice();
    Ok(point)
}

fn histogram_point<'a>(bytes: &'a [u8], bump: &'a Bump) -> Result<HistogramPoint<'a>, WireError> {
    let (mut attributes, mut counts, mut bounds) =
        (BumpVec::new_in(bump), BumpVec::new_in(bump), BumpVec::new_in(bump));
    let mut point = HistogramPoint {
        attributes: &[],
        start_time_unix_nano: 0,
        time_unix_nano: 0,
        count: 0,
        sum: None,
        bucket_counts: &[],
        explicit_bounds: &[],
    };
    let mut fields = Fields::new(bytes, "HistogramDataPoint");
    while let Some((field, value)) = fields.next_field()? {
        match field {
            9 => attributes.push(key_value(fields.bytes(field, value)?)?),
            2 => point.start_time_unix_nano = fields.fixed64(field, value)?,
            3 => point.time_unix_nano = fields.fixed64(field, value)?,
            4 => point.count = fields.fixed64(field, value)?,
            5 => point.sum = Some(fields.double(field, value)?),
            6 => fields.repeated_fixed64(field, value, |c| counts.push(c))?,
            7 => fields.repeated_fixed64(field, value, |b| bounds.push(f64::from_bits(b)))?,
            _ => {}
        }
    }
    point.attributes = attributes.into_bump_slice();
    point.bucket_counts = counts.into_bump_slice();
    point.explicit_bounds = bounds.into_bump_slice();
    Ok(point)
}

fn exponential_point<'a>(bytes: &'a [u8], bump: &'a Bump) -> Result<ExponentialPoint<'a>, WireError> {
    let (mut attributes, mut positive) = (BumpVec::new_in(bump), BumpVec::new_in(bump));
    let mut point = ExponentialPoint {
        attributes: &[],
        start_time_unix_nano: 0,
        time_unix_nano: 0,
        count: 0,
        sum: None,
        scale: 0,
        zero_count: 0,
        positive_offset: 0,
        positive: &[],
        has_negative: false,
    };
    let mut fields = Fields::new(bytes, "ExponentialHistogramDataPoint");
    while let Some((field, value)) = fields.next_field()? {
        match field {
            1 => attributes.push(key_value(fields.bytes(field, value)?)?),
            2 => point.start_time_unix_nano = fields.fixed64(field, value)?,
            3 => point.time_unix_nano = fields.fixed64(field, value)?,
            4 => point.count = fields.fixed64(field, value)?,
            5 => point.sum = Some(fields.double(field, value)?),
            6 => point.scale = fields.sint32(field, value)?,
            7 => point.zero_count = fields.fixed64(field, value)?,
            8 => {
                positive.clear();
                point.positive_offset = buckets(fields.bytes(field, value)?, |c| positive.push(c))?;
            }
            9 => {
                point.has_negative = false;
                buckets(fields.bytes(field, value)?, |c| point.has_negative |= c > 0)?;
            }
            _ => {}
        }
    }
    point.attributes = attributes.into_bump_slice();
    point.positive = positive.into_bump_slice();
    Ok(point)
}

/// A `Buckets` message: its offset; each count goes to `push`.
fn buckets(bytes: &[u8], mut push: impl FnMut(u64)) -> Result<i32, WireError> {
    let mut offset = 0;
    let mut fields = Fields::new(bytes, "Buckets");
    while let Some((field, value)) = fields.next_field()? {
        match field {
            1 => offset = fields.sint32(field, value)?,
            2 => fields.repeated_varint(field, value, &mut push)?,
            _ => {}
        }
    }
    Ok(offset)
}

fn key_value(bytes: &[u8]) -> Result<KeyValue<'_>, WireError> {
    let mut kv = KeyValue { key: "", value: AttributeValue::Missing };
    let mut fields = Fields::new(bytes, "KeyValue");
    while let Some((field, value)) = fields.next_field()? {
        match field {
            1 => kv.key = fields.string(field, value)?,
            2 => kv.value = any_value(fields.bytes(field, value)?)?,
            _ => {}
        }
    }
    Ok(kv)
}

fn any_value(bytes: &[u8]) -> Result<AttributeValue<'_>, WireError> {
    let mut out = AttributeValue::Missing;
    let mut fields = Fields::new(bytes, "AnyValue");
    while let Some((field, value)) = fields.next_field()? {
        out = match field {
            1 => AttributeValue::Text(fields.string(field, value)?),
            2 => AttributeValue::Bool(fields.uint(field, value)? != 0),
            3 => AttributeValue::Int(fields.uint(field, value)? as i64),
            4 => AttributeValue::Double(fields.double(field, value)?),
            5..=7 => AttributeValue::Other,
            _ => out,
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::otlp_messages as owned;
    use prost::Message;

    fn text(key: &str, value: &str) -> owned::KeyValue {
        let value = owned::AnyValue { string_value: Some(value.into()), ..Default::default() };
        owned::KeyValue { key: key.into(), value: Some(value) }
    }

    /// Every kind of metric prost writes reads back the same through the borrowed view.
    #[test]
    fn reads_back_every_kind_prost_writes() {
        let number = |value: Option<f64>, as_int: Option<i64>| owned::NumberDataPoint {
            attributes: vec![text("route", "/checkout")],
            start_time_unix_nano: 5,
            time_unix_nano: 9,
            as_double: value,
            as_int,
        };
        let int = owned::AnyValue { int_value: Some(-42), ..Default::default() };
        let array_like = owned::KeyValue { key: "empty".into(), value: None };
        let request = owned::ExportMetricsServiceRequest {
            resource_metrics: vec![owned::ResourceMetrics {
                resource: Some(owned::Resource {
                    attributes: vec![
                        text("service.name", "gateway"),
                        owned::KeyValue { key: "pid".into(), value: Some(int) },
                        array_like,
                    ],
                }),
                scope_metrics: vec![
                    owned::ScopeMetrics {
                        scope: Some(owned::InstrumentationScope { name: "sdk".into(), ..Default::default() }),
                        metrics: vec![
                            owned::Metric {
                                name: "queue.depth".into(),
                                gauge: Some(owned::Gauge { data_points: vec![number(Some(2.5), None)] }),
                                ..Default::default()
                            },
                            owned::Metric {
                                name: "requests".into(),
                                sum: Some(owned::Sum {
                                    data_points: vec![number(None, Some(-7)), number(None, None)],
                                    aggregation_temporality: CUMULATIVE,
                                    is_monotonic: true,
                                }),
                                ..Default::default()
                            },
                        ],
                    },
                    owned::ScopeMetrics {
                        scope: None,
                        metrics: vec![
                            owned::Metric {
                                name: "latency".into(),
                                unit: "ms".into(),
                                histogram: Some(owned::Histogram {
                                    data_points: vec![owned::HistogramDataPoint {
                                        count: 3,
                                        sum: Some(12.0),
                                        bucket_counts: vec![1, 2, 0],
                                        explicit_bounds: vec![5.0, 10.0],
                                        ..Default::default()
                                    }],
                                    aggregation_temporality: DELTA,
                                }),
                                ..Default::default()
                            },
                            owned::Metric {
                                name: "exp".into(),
                                exponential_histogram: Some(owned::ExponentialHistogram {
                                    data_points: vec![owned::ExponentialHistogramDataPoint {
                                        count: 4,
                                        scale: -2,
                                        zero_count: 1,
                                        positive: Some(owned::Buckets { offset: -3, bucket_counts: vec![2, 0, 1] }),
                                        negative: Some(owned::Buckets {
                                            offset: 0,
                                            bucket_counts: vec![0, u64::MAX, 1],
                                        }),
                                        ..Default::default()
                                    }],
                                    aggregation_temporality: CUMULATIVE,
                                }),
                                ..Default::default()
                            },
                            owned::Metric {
                                name: "quantiles".into(),
                                summary: Some(owned::Summary { data_points: vec![Default::default(); 2] }),
                                ..Default::default()
                            },
                            owned::Metric { name: "nothing".into(), ..Default::default() },
                        ],
                    },
                ],
            }],
        };
        let bytes = request.encode_to_vec();
        let bump = Bump::new();
        let view = decode(&bytes, &bump).unwrap();
        let [resource] = view.resources else { panic!("one resource") };
        let attributes: Vec<_> = resource.attributes.iter().map(|kv| (kv.key, kv.value)).collect();
        assert_eq!(
            attributes,
            [
                ("service.name", AttributeValue::Text("gateway")),
                ("pid", AttributeValue::Int(-42)),
                ("empty", AttributeValue::Missing)
            ]
        );
        let names: Vec<_> = resource.metrics.iter().map(|m| m.name).collect();
        assert_eq!(names, ["queue.depth", "requests", "latency", "exp", "quantiles", "nothing"]);
        let Data::Gauge([gauge]) = resource.metrics[0].data else { panic!("a gauge") };
        assert_eq!((gauge.value, gauge.start_time_unix_nano, gauge.time_unix_nano), (Some(2.5), 5, 9));
        assert_eq!(gauge.attributes[0].key, "route");
        assert_eq!(gauge.attributes[0].value, AttributeValue::Text("/checkout"));
        let Data::Sum { points: [with_int, without], temporality: CUMULATIVE, monotonic: true } =
            resource.metrics[1].data
        else {
            panic!("a cumulative monotonic sum of two points")
        };
        assert_eq!((with_int.value, without.value), (Some(-7.0), None));
        let Data::Histogram { points: [h], temporality: DELTA } = resource.metrics[2].data else {
            panic!("a histogram")
        };
        assert_eq!(resource.metrics[2].unit, "ms");
        assert_eq!(
            (h.count, h.sum, h.bucket_counts, h.explicit_bounds),
            (3, Some(12.0), &[1, 2, 0][..], &[5.0, 10.0][..])
        );
        let Data::Exponential { points: [e], temporality: CUMULATIVE } = resource.metrics[3].data else {
            panic!("an exponential histogram")
        };
        assert_eq!((e.count, e.sum, e.scale, e.zero_count), (4, None, -2, 1));
        assert_eq!((e.positive_offset, e.positive, e.has_negative), (-3, &[2, 0, 1][..], true));
        assert!(matches!(resource.metrics[4].data, Data::Summary { points: 2 }));
        assert!(matches!(resource.metrics[5].data, Data::Missing));
    }

    #[test]
    fn a_cut_off_body_is_an_error_not_a_partial_request() {
        let request = owned::ExportMetricsServiceRequest {
            resource_metrics: vec![owned::ResourceMetrics {
                resource: Some(owned::Resource { attributes: vec![text("service.name", "gateway")] }),
                scope_metrics: vec![],
            }],
        };
        let bytes = request.encode_to_vec();
        let bump = Bump::new();
        let err = decode(&bytes[..bytes.len() - 3], &bump).err().expect("a truncated body is refused");
        assert!(matches!(err, WireError::Truncated { .. }), "{err}");
        // A string that is not UTF-8, deep inside.
        let mut broken = bytes.clone();
        let at = broken.windows(7).position(|w| w == b"gateway").unwrap();
        broken[at] = 0xff;
        let err = decode(&broken, &bump).err().expect("invalid UTF-8 is refused");
        assert_eq!(err.to_string(), "field 1 of AnyValue is not valid UTF-8");
    }
}
