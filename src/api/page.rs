//! What every page perfwatch serves to a person shares: the HTML document around a body (no
//! scripts, no outside assets, a phone's width first), the styles, and the response headers
//! (HTML, never cached, never framed).

use warp::http::StatusCode;
use warp::reply::Response;

use crate::html::escape;

/// The styles every page uses; a page adds its own after them.
pub const BASE_CSS: &str = "*{box-sizing:border-box}\
body{font:15px system-ui,sans-serif;margin:1.5em auto;max-width:70em;padding:0 1em;color:#222;overflow-wrap:break-word}\
code.label{display:inline-block;background:#f1f3f4;padding:0 .3em;border-radius:3px;margin:0 .2em .2em 0;overflow-wrap:anywhere}\
h1{margin:0;font-size:1.5em}h2{margin:1.5em 0 .5em;font-size:1.15em}.quiet{color:#666}code{font-size:.9em}\
a{color:#1a56b8}button,input,select{font:inherit}button{padding:.4em 1em;cursor:pointer}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
.scroll{overflow-x:auto;max-width:100%}\
.ok{background:#e8f5e9;border-color:#2e7d32}.bad{background:#ffebee;border-color:#d93025}.nodata{background:#f5f5f5}\
.sev-critical{color:#d93025;font-weight:600}.sev-warning{color:#b26a00}\
svg.chart{display:block;width:100%;height:auto}\
.chart .frame{fill:none;stroke:#ccc}.chart .series{fill:none;stroke:#1a73e8;stroke-width:2;vector-effect:non-scaling-stroke}\
.chart .level{stroke:#d93025;stroke-width:1.5;stroke-dasharray:6 4;vector-effect:non-scaling-stroke}\
.chart .level.resolve{stroke:#2e7d32}.chart .level.warning{stroke:#b26a00}\
.chart .latest{fill:#1a73e8}.chart .band.firing{fill:#d93025;opacity:.15}.chart .band.pending{fill:#f9ab00;opacity:.2}\
.chart .tick{font-size:12px;fill:#555}.chart .mark{stroke:#555;stroke-width:1;stroke-dasharray:2 3;vector-effect:non-scaling-stroke}\
.chart .other .series{stroke:#888;stroke-dasharray:4 3}.chart .other .latest{fill:#888}\
@media (max-width:40em){table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:auto}\
table.stack tr:first-child{display:none}table.stack tr{border-bottom:1px solid #ccc;padding:.4em 0}\
table.stack td{border:0;padding:.1em 0}table.stack td::before{content:attr(data-label) \": \";color:#666}}";

/// A whole HTML document: `title`, the base styles plus `css`, and `body`; refreshing itself
/// every `refresh_s` when given.
pub fn document(title: &str, css: &str, body: &str, refresh_s: Option<u32>) -> String {
    let refresh = refresh_s.map_or(String::new(), |s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"));
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{refresh}\
         <title>{}</title><style>{BASE_CSS}{css}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// `html` as the answer, with `status`.
pub fn respond(status: StatusCode, html: String) -> Response {
    let mut response = Response::new(html.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", "text/html; charset=utf-8".parse().expect("a valid header"));
    headers.insert("cache-control", "no-store".parse().expect("a valid header"));
    // Pages with forms must not be framed by another site (clickjacking).
    headers.insert("x-frame-options", "DENY".parse().expect("a valid header"));
    headers.insert("content-security-policy", CSP.parse().expect("a valid header"));
    response
}

/// Nothing but inline styles and same-origin forms: no scripts run even if markup slipped
/// through escaping.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An alert's labels as chips, `alertname` left out (the alert's name is beside them):
/// `<code class="label">endpoint="/x"</code> …`, escaped.
pub fn label_chips(labels: &crate::model::Labels) -> String {
    let mut out = String::new();
    for (k, v) in labels.iter().filter(|(k, _)| *k != "alertname") {
        out.push_str(&format!("<code class=\"label\">{}=\"{}\"</code> ", escape(k), escape(v)));
    }
    out
}

/// The same from the stored canonical form (`{a="x",b="y"}`); as text if it does not parse.
pub fn stored_label_chips(canonical: &str) -> String {
    match crate::model::SeriesKey::parse(canonical) {
        Some(key) => label_chips(&key.labels),
        None => format!("<code>{}</code>", escape(canonical)),
    }
}

/// A small page saying one thing: a heading and a few paragraphs.
pub fn message(status: StatusCode, title: &str, body: &str) -> Response {
    let body = format!("<div class=\"message\"><h1>{}</h1>{body}</div>", escape(title));
    respond(status, document(&format!("{title} · perfwatch"), MESSAGE_CSS, &body, None))
}

const MESSAGE_CSS: &str = ".message{max-width:40em;margin:0 auto}.message h1{margin-bottom:.5em}.note{color:#555}";
