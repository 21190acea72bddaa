//! Influx line protocol at `/write` and `/api/v2/write`: fields become `<measurement>_<field>`
//! gauges with tags as labels, timestamps in the requested precision, bad lines refused by
//! line number with the good ones kept, InfluxDB's `Token` authorization and gzip bodies.

use std::io::Write;

use serde_json::Value;

use crate::support::TestDaemon;

async fn write(d: &TestDaemon, path: &str, body: &str) -> (u16, Value) {
    let response = d.client.post(format!("{}{path}", d.base)).body(body.to_owned()).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn fields_become_gauges_and_bad_lines_are_refused_by_number_keeping_the_rest() {
    let d = TestDaemon::start("").await;
    let now_s = perfwatch::clock::now_s();
    let body = format!(
        "# a comment\n\
         cpu,host=web-1,region=eu usage_idle=92.5,procs=12i,up=true {now_s}\n\
         cpu,host=web-1,region=eu usage_idle=90.5 {now_s}\n\
         cpu,host web-2 usage_idle=1\n\
         \n\
         nginx,host=web-1 status=\"ok\",active=7u {now_s}\n\
         mem free=x\n"
    );
    let (status, answer) = write(&d, "/api/v2/write?org=o&bucket=b&precision=s", &body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "invalid");
    assert_eq!((answer["accepted"].as_u64(), answer["rejected"].as_u64()), (Some(5), Some(3)), "{answer}");
    let errors: Vec<(u64, &str)> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(errors[0].0, 4);
    assert!(errors[0].1.contains("tag \"host\" has no '=value'"), "{errors:?}");
    assert_eq!(errors[1].0, 6);
    assert!(errors[1].1.contains("field \"status\" is a string"), "{errors:?}");
    assert_eq!(errors[2].0, 7);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("5 accepted, 3 rejected (the good lines are kept); first: line 4")
    );

    let idle = [("metric", "cpu_usage_idle{host=\"web-1\",region=\"eu\"}")];
    assert_eq!(d.query_one(&[idle[0], ("stat", "max")]).await, 92.5);
    assert_eq!(d.query_one(&[idle[0], ("stat", "last")]).await, 90.5);
    assert_eq!(d.query_one(&[("metric", "cpu_procs"), ("stat", "last")]).await, 12.0);
    assert_eq!(d.query_one(&[("metric", "cpu_up"), ("stat", "last")]).await, 1.0, "booleans as 0/1");
    assert_eq!(d.query_one(&[("metric", "nginx_active{host=\"web-1\"}"), ("stat", "last")]).await, 7.0);

    // All good: 204 as InfluxDB answers; v1 path, millisecond precision.
    let (status, _) =
        write(&d, "/write?db=telegraf&precision=ms", &format!("disk,path=/ used=0.5 {}\n", now_s * 1000)).await;
    assert_eq!(status, 204);
    assert_eq!(d.query_one(&[("metric", "disk_used"), ("stat", "last")]).await, 0.5);
    let (status, answer) = write(&d, "/write?precision=fortnight", "x v=1\n").await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("precision \"fortnight\""), "{answer}");
}

#[tokio::test]
async fn influx_clients_token_and_gzip_are_understood() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, base) = crate::support::daemon_with_tokens(dir.path(), "push-secret", None).await;
    let client = perfwatch::http_client::client();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"temp,room=hall celsius=21.5\n").unwrap();
    let body = gz.finish().unwrap();
    let post = |auth: &'static str| {
        client
            .post(format!("{base}/api/v2/write"))
            .header("authorization", auth)
            .header("content-encoding", "gzip")
            .body(body.clone())
            .send()
    };
    assert_eq!(post("Token wrong").await.unwrap().status().as_u16(), 401);
    assert_eq!(post("Token push-secret").await.unwrap().status().as_u16(), 204);
    daemon.shutdown().await;
}
