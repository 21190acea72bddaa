//! `GET /alerts/{id}`: the page a notification links to, over HTTP. The chart's threshold line
//! and firing shading read back to the rule's threshold and the alert's firing time; the
//! timeline holds its transitions and acks; the forms refuse a missing, wrong or cross-site
//! token and act with the page's own; "silence until resolved" ends when the alert resolves;
//! every label and annotation is escaped.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestDaemon, wait_for};

const EVIL: &str = "<script>alert(1)</script>";

const RULES: &str = r#"groups:
  - name: api
    interval: 1s
    rules:
      - alert: ApiSlow
        metric: lat
        stat: max
        window: 3s
        above: 0.2
        resolve_at: 0.15
        for: 1s
        group_by: [endpoint]
        severity: critical
        labels: {team: platform}
        annotations:
          summary: "max of {{ labels.endpoint }} is {{ value }}"
          runbook: "https://runbooks.example/api?a=1&b=<2>"
          dashboard: "javascript:alert(2)"
"#;

async fn push(d: &TestDaemon, endpoint: &str, value: f64) {
    let body =
        json!({"metrics": [{"name": "lat", "type": "timing", "value": value, "labels": {"endpoint": endpoint}}]});
    assert_eq!(d.push_json(&body).await.0, 200);
}

async fn alert(d: &TestDaemon, endpoint: &str) -> Option<Value> {
    let (_, body) = d.get("/api/v1/alerts?state=all").await;
    body["alerts"].as_array()?.iter().find(|a| a["labels"]["endpoint"] == endpoint).cloned()
}

async fn push_until(d: &TestDaemon, endpoint: &str, value: f64, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(30), || async {
        push(d, endpoint, value).await;
        alert(d, endpoint).await.filter(|a| want(a))
    })
    .await
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn page(d: &TestDaemon, id: &str) -> (u16, String) {
    let response = client().get(format!("{}/alerts/{id}", d.base)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The first `name="…"` attribute value in `html` after `from`.
fn attr<'a>(html: &'a str, from: &str, name: &str) -> &'a str {
    let at = html.find(from).unwrap_or_else(|| panic!("no {from} in {html}"));
    let rest = &html[at..];
    let start = rest.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} after {from}")) + name.len() + 3;
    &rest[start..start + rest[start..].find('"').unwrap()]
}

fn number(text: &str) -> f64 {
    text.parse().unwrap_or_else(|_| panic!("not a number: {text}"))
}

/// The `#measured` chart's SVG.
fn measured_chart(html: &str) -> &str {
    let start = html.find("<figure id=\"measured\">").expect("the chart");
    &html[start..start + html[start..].find("</svg>").unwrap()]
}

async fn post_form(d: &TestDaemon, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> (u16, String, String) {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut request = client()
        .post(format!("{}{path}", d.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.unwrap();
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (response.status().as_u16(), location, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_page_charts_the_breach_lists_the_episode_and_its_forms_act() {
    let d = TestDaemon::with_rules(RULES).await;
    let firing = push_until(&d, "/vendors", 0.5, "firing", |a| a["state"] == "firing").await;
    let id = firing["id"].as_str().unwrap().to_owned();
    let firing_since = firing["firing_since"].as_i64().unwrap();

    let (status, html) = page(&d, &id).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<span class=\"badge firing\">FIRING</span> ApiSlow"), "{html}");
    assert!(html.contains("max of /vendors is 0.5"), "the summary, rendered for this alert: {html}");
    assert!(html.contains("<strong>500 ms</strong>") || html.contains("<strong>0.5"), "the value: {html}");
    assert!(html.contains("<code class=\"label\">endpoint=\"/vendors\"</code>"), "the labels: {html}");

    // The chart: the threshold line reads back to 0.2, the firing band starts when it fired,
    // and the measured line reaches the pushed 0.5.
    let svg = measured_chart(&html);
    let (min, max) = (number(attr(svg, "<svg", "data-min")), number(attr(svg, "<svg", "data-max")));
    let plot: Vec<f64> = attr(svg, "<svg", "data-plot").split(' ').map(number).collect();
    let value_at = |y: f64| max - (y - plot[1]) / (plot[3] - plot[1]) * (max - min);
    let threshold = value_at(number(attr(svg, "<line class=\"level threshold\"", "y1")));
    assert!((threshold - 0.2).abs() < 0.01 * max, "threshold drawn at {threshold}");
    let resolve = value_at(number(attr(svg, "<line class=\"level resolve\"", "y1")));
    assert!((resolve - 0.15).abs() < 0.01 * max, "resolve line drawn at {resolve}");
    assert_eq!(number(attr(svg, "<rect class=\"band firing\"", "data-from")) as i64, firing_since);
    let (from, to) = (number(attr(svg, "<svg", "data-from")), number(attr(svg, "<svg", "data-to")));
    let x = number(attr(svg, "<rect class=\"band firing\"", "x"));
    let t = from + (x - plot[0]) / (plot[2] - plot[0]) * (to - from);
    assert!(
        (t - firing_since as f64).abs() <= (to - from) / 300.0,
        "the band is drawn at {t}, fired at {firing_since}"
    );
    let latest = value_at(number(attr(svg, "<circle class=\"latest\"", "cy")));
    assert!((latest - 0.5).abs() < 0.01 * max, "the latest measured value is drawn at {latest}");
    assert!(svg.contains("<line class=\"mark firing\""), "the transition is marked");
    assert!(html.contains("<strong>Firing</strong>") && html.contains("<strong>Pending</strong>"), "timeline: {html}");

    // Forms: no token, a wrong token, another site's origin — refused; the page's own acts.
    let csrf = attr(&html, "<form method=\"post\" action=\"", "value").to_owned();
    assert_eq!(attr(&html, "<form method=\"post\"", "action"), format!("{id}/ack"));
    let ack_path = format!("/alerts/{id}/ack");
    let ack = [("by", "ana"), ("comment", "on it <b>now</b>")];
    assert_eq!(post_form(&d, &ack_path, &ack, None).await.0, 403);
    let wrong = [("csrf", "1999999999.AAAA"), ("by", "ana"), ("comment", "")];
    assert_eq!(post_form(&d, &ack_path, &wrong, None).await.0, 403);
    let with_token = [("csrf", csrf.as_str()), ("by", "ana"), ("comment", "on it <b>now</b>")];
    let (status, _, body) = post_form(&d, &ack_path, &with_token, Some("https://evil.example")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(alert(&d, "/vendors").await.unwrap()["acked"], Value::Null, "nothing refused acted");
    let (status, location, _) = post_form(&d, &ack_path, &with_token, Some(&d.base)).await;
    assert_eq!((status, location.as_str()), (303, format!("../{id}#timeline").as_str()));
    assert_eq!(alert(&d, "/vendors").await.unwrap()["acked"]["by"], "ana");
    let (_, html) = page(&d, &id).await;
    assert!(html.contains("<strong>Acknowledged</strong> by ana: “on it &lt;b&gt;now&lt;/b&gt;”"), "{html}");
    assert!(html.contains("action=\"") && html.contains("/unack\""), "an acked alert offers to withdraw it");

    // Silence until resolved: active now, ended by the resolve.
    let csrf = attr(&html, "<form method=\"post\" action=\"", "value").to_owned();
    let silence = [("csrf", csrf.as_str()), ("by", "bo"), ("comment", "failover"), ("for", "resolved")];
    assert_eq!(post_form(&d, &format!("/alerts/{id}/silence"), &silence, None).await.0, 303);
    let silenced = alert(&d, "/vendors").await.unwrap();
    assert_eq!(silenced["silenced"], true, "{silenced}");
    push_until(&d, "/vendors", 0.1, "resolved", |a| a["state"] == "inactive").await;
    let (_, listed) = d.get("/api/v1/silences").await;
    assert_eq!(listed["silences"].as_array().unwrap().len(), 0, "the silence ended with the alert: {listed}");
    let (_, html) = page(&d, &id).await;
    assert!(html.contains("<span class=\"badge resolved\">RESOLVED</span>"), "{html}");
    assert!(html.contains("<strong>Resolved</strong>") && html.contains("<strong>Silenced</strong> by bo"), "{html}");
    assert!(!html.contains("<form"), "a resolved alert has nothing to act on");
    let csrf_then = silence[0].1;
    let late = [("csrf", csrf_then), ("by", "bo"), ("for", "1h")];
    assert_eq!(post_form(&d, &format!("/alerts/{id}/silence"), &late, None).await.0, 409);

    assert_eq!(page(&d, "ffffffffffffffff").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_label_and_annotation_renders_as_text() {
    let d = TestDaemon::with_rules(RULES).await;
    let firing = push_until(&d, EVIL, 0.5, "firing", |a| a["state"] == "firing").await;
    let (status, html) = page(&d, firing["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(!html.contains("<script"), "no markup from data: {html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the label value as text: {html}");
    assert!(html.contains("href=\"https://runbooks.example/api?a=1&amp;b=&lt;2&gt;\""), "the runbook link: {html}");
    assert!(!html.contains("href=\"javascript:"), "a javascript: annotation is not a link: {html}");
    assert!(html.contains("<code>javascript:alert(2)</code>"), "{html}");
}

/// A ratio rule's page charts the two parts it divides: read back from the SVG, numerator
/// over denominator at the latest point is the alert's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ratio_alert_charts_its_numerator_and_denominator() {
    let rules = r#"groups:
  - name: api
    interval: 1s
    rules:
      - alert: ErrorRatioHigh
        ratio:
          numerator: 'responses_total{code="5xx"}'
          denominator: responses_total
        window: 3s
        above: 0.05
        severity: critical
"#;
    let d = TestDaemon::with_rules(rules).await;
    let body = json!({"metrics": [
        {"name": "responses_total", "type": "counter", "value": 10, "labels": {"code": "5xx"}},
        {"name": "responses_total", "type": "counter", "value": 90, "labels": {"code": "2xx"}},
    ]});
    let firing = wait_for("the ratio firing", Duration::from_secs(30), || async {
        assert_eq!(d.push_json(&body).await.0, 200);
        let (_, alerts) = d.get("/api/v1/alerts").await;
        alerts["alerts"].as_array()?.iter().find(|a| a["state"] == "firing").cloned()
    })
    .await;
    let (status, html) = page(&d, firing["id"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let start = html.find("<figure id=\"parts\">").expect("the parts chart");
    let svg = &html[start..start + html[start..].find("</svg>").unwrap()];
    let (min, max) = (number(attr(svg, "<svg", "data-min")), number(attr(svg, "<svg", "data-max")));
    let plot: Vec<f64> = attr(svg, "<svg", "data-plot").split(' ').map(number).collect();
    let value_at = |y: f64| max - (y - plot[1]) / (plot[3] - plot[1]) * (max - min);
    let denominator = value_at(number(attr(svg, "<g class=\"other compare\">", "cy")));
    // The chart's own line is drawn last: its latest point is the last circle.
    let own_latest = &svg[svg.rfind("<circle class=\"latest\"").unwrap()..];
    let numerator = value_at(number(attr(own_latest, "<circle", "cy")));
    assert!(denominator > numerator && numerator > 0.0, "{numerator} / {denominator}");
    // Two pixels of 600 is the drawing's precision; the ratio holds within it.
    let ratio = numerator / denominator;
    assert!(
        (ratio - 0.1).abs() < 0.01,
        "{numerator} / {denominator} = {ratio}, the alert measured {}",
        firing["value"]
    );
    assert!(html.contains("Solid: sum of responses_total{code=&quot;5xx&quot;}"), "{html}");
}
