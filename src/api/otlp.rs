//! `POST /v1/metrics`: OTLP/HTTP metrics, `application/x-protobuf` or `application/json`,
//! gzip or not, as the OpenTelemetry specification defines. The answer is an
//! `ExportMetricsServiceResponse` in the request's encoding; refused data points are reported
//! as `partial_success` (`rejected_data_points` and a message naming the first reasons). A body
//! that does not decode is a 400 with a `Status` message saying why.

use std::sync::Arc;

use prost::Message;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{ApiError, IngestState};
use crate::clock;
use crate::ingest::otlp;
use crate::ingest::parse::otlp_messages::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse, Status,
};
use crate::ingest::parse::otlp_view;
use crate::ingest::sink::{IngestBatch, Scratch};

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

pub fn export(state: &Arc<IngestState>, content_type: Option<&str>, body: &[u8]) -> Result<Response, ApiError> {
    let encoding = match content_type.map(|c| c.split(';').next().unwrap_or_default().trim()) {
        Some("application/x-protobuf") => Encoding::Protobuf,
        Some("application/json") => Encoding::Json,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content type {:?}: send application/x-protobuf or application/json", other.unwrap_or("none")),
            ));
        }
    };
    // OTLP/JSON is carried over into protobuf, so both encodings go through one reader.
    let transcoded;
    let protobuf_body = match encoding {
        Encoding::Protobuf => body,
        Encoding::Json => match serde_json::from_slice::<ExportMetricsServiceRequest>(body) {
            Ok(mut request) => {
                request.keep_one_of_each();
                transcoded = request.encode_to_vec();
                &transcoded
            }
            Err(why) => return Ok(not_otlp(encoding, &why)),
        },
    };
    let outcome = super::arena::with(|bump| {
        let request = otlp_view::decode(protobuf_body, bump)?;
        let mut batch =
            IngestBatch::new(&state.aggregator, &state.limits, bump, "otlp", clock::now_ms(), Scratch::default());
        let outcome = otlp::ingest(&request, &mut batch, &state.otlp_labels);
        batch.finish();
        Ok::<_, otlp_view::WireError>(outcome)
    });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(why) => return Ok(not_otlp(encoding, &why)),
    };
    if outcome.hit_series_limit && outcome.accepted == 0 {
        return Ok(status(
            encoding,
            StatusCode::TOO_MANY_REQUESTS,
            "the active series limit (limits.max_series) is reached",
        ));
    }
    let partial_success = (outcome.rejected > 0).then(|| {
        let reasons: Vec<String> = outcome.errors.iter().take(5).map(|e| e.reason.clone()).collect();
        ExportMetricsPartialSuccess {
            rejected_data_points: outcome.rejected as i64,
            error_message: format!("{} data points rejected: {}", outcome.rejected, reasons.join("; ")),
        }
    });
    Ok(match encoding {
        Encoding::Protobuf => {
            protobuf(StatusCode::OK, ExportMetricsServiceResponse { partial_success }.encode_to_vec())
        }
        Encoding::Json => {
            let body = match partial_success {
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedDataPoints": p.rejected_data_points.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            super::reply::json(StatusCode::OK, &body)
        }
    })
}

fn not_otlp(encoding: Encoding, why: &dyn std::fmt::Display) -> Response {
    status(encoding, StatusCode::BAD_REQUEST, &format!("the body is not an OTLP metrics export: {why}"))
}

fn status(encoding: Encoding, code: StatusCode, message: &str) -> Response {
    match encoding {
        // gRPC codes: 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED.
        Encoding::Protobuf => {
            let grpc = if code == StatusCode::TOO_MANY_REQUESTS { 8 } else { 3 };
            protobuf(code, Status { code: grpc, message: message.to_owned() }.encode_to_vec())
        }
        Encoding::Json => super::reply::error(code, message),
    }
}

fn protobuf(code: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = code;
    response.headers_mut().insert("content-type", "application/x-protobuf".parse().expect("a valid header"));
    response
}
