//! Webhooks through the API, delivered to a real receiver that verifies
//! every delivery with the `standardwebhooks` package: what a change or an
//! identify tells, in order; the attempts; a retry; pause and resume; and
//! the errors of each route.
use std::time::Duration;

use serde_json::{Value, json};
use visage_service::events::Secret;

use crate::helpers::{assert_error, config, fresh_db, photo, spawn_app, spawn_with, temp_dir};
use crate::webhook_delivery::Receiver;

/// The next `n` deliveries the receiver verified: (type, data, webhook-id).
fn deliveries(rx: &mut Receiver, n: usize) -> Vec<(String, Value, String)> {
    (0..n)
        .map(|_| {
            let seen = tokio::task::block_in_place(|| rx.next());
            assert_eq!(seen["verified"], true, "{seen}");
            let kind = seen["payload"]["type"].as_str().unwrap().to_string();
            (kind, seen["payload"]["data"].clone(), seen["id"].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_identifies_reach_a_webhook_in_order_signed() {
    let dir = temp_dir();
    let mut c = config(&fresh_db(&dir));
    c.service.webhooks.sender.allow_private = true;
    let mut app = spawn_with(c).await;
    // Any receiver's secret will do: the service generates one and shows it once.
    let r = app.client.post(app.url("/v1/webhooks")).json(&json!({"url": "http://127.0.0.1:9/ok", "events": ["*"]}));
    let created: Value = r.send().await.unwrap().json().await.unwrap();
    let secret = Secret::parse(created["secret"].as_str().unwrap()).unwrap();
    let mut rx = Receiver::start(&secret);
    let id = created["id"].as_str().unwrap().to_string();
    let patched = app
        .client
        .patch(app.url(&format!("/v1/webhooks/{id}")))
        .json(&json!({"url": rx.url("/ok"), "events": ["person.created", "person.deleted", "face.deleted", "identify.identified", "identify.unknown"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let listed = app.get_json("/v1/webhooks").await;
    assert_eq!(listed["webhooks"][0]["id"], id.as_str());
    assert!(listed["webhooks"][0].get("secret").is_none() && !listed.to_string().contains("whsec_"), "{listed}");

    let person = app.enroll("Barack Obama", "obama.jpg").await;
    let r = app
        .post_image("/v1/identify", photo("obama2.jpg"), &[("external_id", "cam-7:991"), ("source", "front-door")])
        .await;
    assert_eq!(r.status(), 200);
    let r = app.post_image("/v1/identify", photo("biden.jpg"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.client.delete(app.url(&format!("/v1/persons/{person}"))).send().await.unwrap().status(), 204);

    let seen = deliveries(&mut rx, 5);
    let kinds: Vec<&str> = seen.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["person.created", "identify.identified", "identify.unknown", "face.deleted", "person.deleted"],
        "{seen:?}"
    );
    assert_eq!(seen[0].1["person"], json!({"id": person, "name": "Barack Obama"}));
    let identified = &seen[1].1;
    assert_eq!(identified["match"]["person_id"], person.as_str());
    assert_eq!(
        (identified["external_id"].as_str(), identified["source"].as_str()),
        (Some("cam-7:991"), Some("front-door"))
    );
    assert!(identified["match"]["similarity"].as_f64().unwrap() > 0.5, "{identified}");
    assert!(identified.get("embedding").is_none() && identified["box"]["width"].as_f64().unwrap() > 0.0);
    assert_eq!(seen[2].1["match"], Value::Null);
    assert_eq!(seen[3].1["reason"], "person_deleted");
    assert_eq!(seen[4].1["face_ids"], json!([seen[3].1["face_id"]]));

    // The attempts, newest first; one sent again on request arrives with the same webhook-id.
    let log = wait_for_deliveries(&app, &id, 5).await;
    assert!(log.iter().all(|d| d["outcome"] == "delivered" && d["status"] == 204), "{log:?}");
    let first = log.last().unwrap();
    let retry =
        app.client.post(app.url(&format!("/v1/webhooks/{id}/deliveries/{}/retry", first["id"].as_str().unwrap())));
    let again: Value = retry.send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (again["outcome"].as_str(), again["event_seq"].clone()),
        (Some("delivered"), first["event_seq"].clone())
    );
    assert_eq!(deliveries(&mut rx, 1)[0].2, seen[0].2);

    // Paused: events keep their place and arrive once resumed.
    let pause =
        |paused: bool| app.client.patch(app.url(&format!("/v1/webhooks/{id}"))).json(&json!({"paused": paused}));
    assert_eq!(pause(true).send().await.unwrap().json::<Value>().await.unwrap()["paused"], true);
    app.post_image("/v1/identify", photo("biden.jpg"), &[("source", "while-paused")]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(rx.lines.try_recv().is_err(), "a paused webhook received a delivery");
    pause(false).send().await.unwrap();
    let late = deliveries(&mut rx, 1);
    assert_eq!((late[0].0.as_str(), late[0].1["source"].as_str()), ("identify.unknown", Some("while-paused")));

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for line in ["visage_webhook_deliveries_total{outcome=\"delivered\"}", "visage_webhook_delivery_seconds_count"] {
        assert!(metrics.contains(line), "no {line} in /metrics");
    }
    assert_eq!(app.client.delete(app.url(&format!("/v1/webhooks/{id}"))).send().await.unwrap().status(), 204);
    let log = app.get_json("/v1/audit?limit=50").await;
    for action in ["create_webhook", "update_webhook", "delete_webhook"] {
        assert!(log["entries"].as_array().unwrap().iter().any(|e| e["action"] == action), "{action}: {log}");
    }
    app.stop().await;
}

/// The webhook's attempts once `n` have been recorded (within 10 s).
async fn wait_for_deliveries(app: &crate::helpers::TestApp, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let log = app.get_json(&format!("/v1/webhooks/{id}/deliveries")).await;
        let entries = log["deliveries"].as_array().unwrap().clone();
        if entries.len() >= n {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} attempts recorded in 10 s");
}

#[tokio::test]
async fn webhook_routes_refuse_what_they_cannot_take() {
    let app = spawn_app().await;
    let post = |body: Value| app.client.post(app.url("/v1/webhooks")).json(&body).send();
    for (body, param) in [
        (json!({"url": "ftp://example.com/x", "events": ["*"]}), "url"),
        (json!({"url": "http://127.0.0.1:8080/x", "events": ["*"]}), "url"),
        (json!({"url": "http://[::1]/x", "events": ["*"]}), "url"),
        (json!({"url": "https://user:pw@example.com/x", "events": ["*"]}), "url"),
        (json!({"url": format!("https://example.com/{}", "a".repeat(2000)), "events": ["*"]}), "url"),
        (json!({"url": "https://example.com/x", "events": []}), "events"),
        (json!({"url": "https://example.com/x", "events": ["person.exploded"]}), "events"),
        (json!({"url": "https://example.com/x", "events": ["*"], "secret": "not-a-secret"}), "secret"),
    ] {
        let v = assert_error(post(body.clone()).await.unwrap(), 400, "invalid_parameter").await;
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
    }
    let r = post(json!({"url": "https://example.com/x", "events": ["*"], "colour": "red"})).await.unwrap();
    assert_error(r, 400, "invalid_json").await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let r = post(json!({"url": "https://example.com/x", "events": ["person.created"], "secret": given})).await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert!(created.get("secret").is_none(), "a secret given is not shown back: {created}");
    let id = created["id"].as_str().unwrap();
    let missing = "01a2224222ec71bdb9d7a84d55c0e1f2";
    for (method, path, code) in [
        ("GET", format!("/v1/webhooks/{missing}"), "webhook_not_found"),
        ("GET", "/v1/webhooks/nope".to_string(), "webhook_not_found"),
        ("DELETE", format!("/v1/webhooks/{missing}"), "webhook_not_found"),
        ("GET", format!("/v1/webhooks/{missing}/deliveries"), "webhook_not_found"),
        ("POST", format!("/v1/webhooks/{id}/deliveries/{missing}/retry"), "delivery_not_found"),
        ("POST", format!("/v1/webhooks/{id}/deliveries/x/retry"), "delivery_not_found"),
    ] {
        let r = app.client.request(method.parse().unwrap(), app.url(&path)).send().await.unwrap();
        assert_error(r, 404, code).await;
    }
    let r = app.client.get(app.url(&format!("/v1/webhooks/{id}/deliveries?limit=0"))).send().await.unwrap();
    assert_error(r, 400, "invalid_parameter").await;
    let r = app.client.patch(app.url(&format!("/v1/webhooks/{id}"))).json(&json!({"events": ["nope"]})).send().await;
    assert_error(r.unwrap(), 400, "invalid_parameter").await;
    let r = app.client.patch(app.url(&format!("/v1/webhooks/{missing}"))).json(&json!({"paused": true})).send().await;
    assert_error(r.unwrap(), 404, "webhook_not_found").await;
    let r = app.post_image("/v1/identify", photo("obama.jpg"), &[("source", &"x".repeat(201))]).await;
    assert_error(r, 400, "invalid_parameter").await;
    app.stop().await;
}

#[tokio::test]
async fn event_types_are_listed_each_with_its_documented_schema() {
    let app = spawn_app().await;
    let types = app.get_json("/v1/events/types").await;
    let doc = app.get_json("/openapi.json").await;
    let list = types["types"].as_array().unwrap();
    assert_eq!(list.len(), 12);
    for t in list {
        let schema = t["schema"].as_str().unwrap();
        let name = schema.rsplit('/').next().unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{schema} is not in the OpenAPI document");
        assert!(!t["description"].as_str().unwrap().is_empty());
    }
    let names: Vec<&str> = list.iter().map(|t| t["type"].as_str().unwrap()).collect();
    for want in ["identify.identified", "identify.unknown", "identify.ambiguous", "person.merged", "cluster.grew"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    app.stop().await;
}

/// The kinds of the events in the outbox, in order.
async fn kinds(db: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    let store = visage_service::store::Store::open(db).await.unwrap();
    let events = store.events_after(visage_service::domain::ChangePos::default(), 1000).await.unwrap();
    store.close().await;
    events.into_iter().map(|e| (e.kind, e.data)).collect()
}

#[tokio::test]
async fn every_change_writes_its_events_in_its_transaction_order() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let mut app = spawn_with(config(&db)).await;
    let a = app.enroll("A", "obama.jpg").await;
    let kept = |name: &'static str| app.post_image("/v1/faces", photo(name), &[]);
    let first: Value = kept("obama2.jpg").await.json().await.unwrap();
    let second: Value = kept("obama3.jpg").await.json().await.unwrap();
    let cluster = first["faces"][0]["cluster_id"].as_str().unwrap().to_string();
    assert_eq!(second["faces"][0]["cluster_id"], cluster.as_str(), "the two photos of one man make one cluster");
    let named = app.post_json(&format!("/v1/clusters/{cluster}/assign"), &json!({"name": "B"})).await;
    let b = named["person_id"].as_str().unwrap().to_string();
    app.post_json(&format!("/v1/persons/{a}/merge"), &json!({"from": [b]})).await;
    let r = app.client.patch(app.url(&format!("/v1/persons/{a}"))).json(&json!({"name": "A2"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let face = first["faces"][0]["id"].as_str().unwrap();
    let r = app.client.delete(app.url(&format!("/v1/persons/{a}/faces/{face}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.client.delete(app.url(&format!("/v1/persons/{a}"))).send().await.unwrap().status(), 204);
    let events = kinds(&db).await;
    let got: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        got,
        [
            "person.created",
            "face.added", // enrolled
            "face.added",
            "cluster.created",
            "face.added",
            "cluster.grew", // kept unassigned
            "person.created",
            "face.moved",
            "face.moved", // the cluster named
            "face.moved",
            "face.moved",
            "person.merged", // merged
            "person.updated",
            "face.deleted", // renamed, a face deleted
            "face.deleted",
            "face.deleted",
            "person.deleted", // deleted with its faces
        ]
    );
    assert_eq!(events[3].1["size"], 1);
    assert_eq!((events[5].1["cluster_id"].as_str(), events[5].1["size"].as_i64()), (Some(cluster.as_str()), Some(2)));
    assert_eq!(events[7].1["from"]["cluster_id"], cluster.as_str());
    assert_eq!(events[11].1["into"]["id"], a.as_str());
    assert_eq!(events[11].1["merged"][0]["name"], "B");
    assert_eq!(events[12].1["person"]["name"], "A2");
    assert_eq!(events[13].1["reason"], "request");
    assert_eq!(
        (events[16].1["person"]["name"].as_str(), events[16].1["face_ids"].as_array().map(Vec::len)),
        (Some("A2"), Some(2))
    );
    app.stop().await;
}
