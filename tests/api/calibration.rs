//! Decisions stated as error rates: the calibration report, thresholds
//! given as targets, estimated rates in the answers, "ambiguous".
use serde_json::Value;
use visage_service::service::ThresholdChoice;
use visage_service::store::Store;

use crate::helpers::{config, fresh_db, photo, spawn_app, spawn_with, temp_dir};

#[tokio::test]
async fn one_man_enrolled_twice_is_ambiguous_not_named() {
    let mut app = spawn_app().await;
    let first = app.enroll("Barack Obama", "obama.jpg").await;
    let second = app.enroll("B. Obama", "obama2.jpg").await;
    app.enroll("Joe Biden", "biden.jpg").await;
    let info = app.get_json("/v1/info").await;
    let margin = info["thresholds"]["ambiguity_margin"].as_f64().unwrap();
    assert!(margin > 0.0, "{info}");

    let v: Value = app.post_image("/v1/identify", photo("obama3.jpg"), &[]).await.json().await.unwrap();
    let face = &v["faces"][0];
    assert_eq!(face["status"], "ambiguous", "{v}");
    assert_eq!(face["match"], Value::Null);
    assert_eq!(v["ambiguity_margin"].as_f64().unwrap(), margin);
    let top: Vec<&str> =
        face["candidates"].as_array().unwrap()[..2].iter().map(|c| c["person_id"].as_str().unwrap()).collect();
    assert!(top.contains(&first.as_str()) && top.contains(&second.as_str()), "{v}");
    let (s1, s2) =
        (face["candidates"][0]["similarity"].as_f64().unwrap(), face["candidates"][1]["similarity"].as_f64().unwrap());
    let threshold = v["threshold"].as_f64().unwrap();
    assert!(s2 >= threshold && s1 - s2 < margin, "{v}");
    // Biden is not contested: named.
    let v: Value = app.post_image("/v1/identify", photo("biden.jpg"), &[]).await.json().await.unwrap();
    assert_eq!(v["faces"][0]["status"], "identified", "{v}");

    // The duplicate removed, Obama is named again.
    let r = app.client.delete(app.url(&format!("/v1/persons/{second}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let v: Value = app.post_image("/v1/identify", photo("obama3.jpg"), &[]).await.json().await.unwrap();
    assert_eq!(v["faces"][0]["status"], "identified", "{v}");
    assert_eq!(v["faces"][0]["match"]["person_id"], first.as_str());
    app.stop().await;
}

#[tokio::test]
async fn a_margin_of_zero_turns_ambiguity_off() {
    let dir = temp_dir();
    let mut c = config(&fresh_db(&dir));
    c.thresholds = ThresholdChoice { identify_margin: Some(0.0), ..ThresholdChoice::default() };
    let mut app = spawn_with(c).await;
    let first = app.enroll("Barack Obama", "obama.jpg").await;
    app.enroll("B. Obama", "obama2.jpg").await;
    let v: Value = app.post_image("/v1/identify", photo("obama3.jpg"), &[]).await.json().await.unwrap();
    assert_eq!(v["faces"][0]["status"], "identified", "{v}");
    assert_eq!(v["faces"][0]["match"]["person_id"], first.as_str(), "obama.jpg is the closer photo: {v}");
    assert_eq!(v["ambiguity_margin"], 0.0);
    app.stop().await;
}

#[tokio::test]
async fn answers_state_the_false_accept_rate_of_their_similarity() {
    let mut app = spawn_app().await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    let rate = |v: &Value, key: &str| v[key].as_f64().unwrap_or_else(|| panic!("no {key}: {v}"));
    let same: Value =
        app.post_image("/v1/verify", photo("obama2.jpg"), &[("person_id", &obama)]).await.json().await.unwrap();
    let other: Value =
        app.post_image("/v1/verify", photo("biden.jpg"), &[("person_id", &obama)]).await.json().await.unwrap();
    // Obama's second photo scores where different persons almost never do; Biden where some do.
    assert!(rate(&same, "estimated_far") < 1e-5, "{same}");
    assert!(rate(&other, "estimated_far") > 1e-3 && rate(&other, "estimated_far") < 1.0, "{other}");
    let v: Value = app.post_image("/v1/identify", photo("biden.jpg"), &[]).await.json().await.unwrap();
    let fpir = rate(&v["faces"][0], "estimated_fpir");
    // One face in the gallery: the FPIR of a similarity is its FAR.
    assert!((fpir - rate(&other, "estimated_far")).abs() < 1e-9 * fpir.max(1e-12) + 1e-12, "{v} {other}");
    app.stop().await;
}

#[tokio::test]
async fn thresholds_can_be_set_as_error_rates() {
    let dir = temp_dir();
    let mut c = config(&fresh_db(&dir));
    c.thresholds = ThresholdChoice { verify_far: Some(1e-3), identify_fpir: Some(1e-2), ..ThresholdChoice::default() };
    let mut app = spawn_with(c).await;
    let info = app.get_json("/v1/info").await;
    let t = &info["thresholds"];
    assert_eq!(t["verify_rule"], serde_json::json!({"far": 0.001}), "{t}");
    assert_eq!(t["identify_rule"], serde_json::json!({"fpir": 0.01}), "{t}");
    assert!(t["verify_expected_far"].as_f64().unwrap() <= 1e-3, "{t}");
    let report = app.get_json("/v1/calibration").await;
    let target = report["verify"]["targets"].as_array().unwrap().iter().find(|x| x["far"] == 1e-3).unwrap().clone();
    assert_eq!(t["verify"], target["threshold"], "{report}");
    let empty_identify = t["identify"].as_f64().unwrap();

    // More faces, more chances for a stranger: the 1:N threshold rises.
    app.enroll("Barack Obama", "obama.jpg").await;
    app.enroll("Joe Biden", "biden.jpg").await;
    let info = app.get_json("/v1/info").await;
    let t = &info["thresholds"];
    assert_eq!(t["identify_gallery_faces"], 2);
    assert!(t["identify"].as_f64().unwrap() > empty_identify, "{t}");
    assert!(t["identify_expected_fpir"].as_f64().unwrap() <= 1e-2, "{t}");
    let v: Value = app.post_image("/v1/identify", photo("obama3.jpg"), &[]).await.json().await.unwrap();
    assert_eq!(v["threshold"], t["identify"], "{v}");
    let v: Value = app
        .client
        .post(app.url("/v1/compare"))
        .multipart(
            reqwest::multipart::Form::new()
                .part("image_a", reqwest::multipart::Part::bytes(photo("obama.jpg")).file_name("a.jpg"))
                .part("image_b", reqwest::multipart::Part::bytes(photo("obama2.jpg")).file_name("b.jpg")),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["threshold"], target["threshold"], "{v}");
    app.stop().await;
}

#[tokio::test]
async fn the_calibration_report_counts_the_gallery_own_pairs() {
    let mut app = spawn_app().await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    let r = app.post_raw(&format!("/v1/persons/{obama}/faces"), photo("obama2.jpg"), "image/jpeg").await;
    assert_eq!(r.status(), 201);
    app.enroll("Joe Biden", "biden.jpg").await;
    let r = app.get_json("/v1/calibration").await;
    let g = &r["gallery"];
    assert_eq!((g["faces"].as_u64(), g["persons"].as_u64()), (Some(3), Some(2)), "{r}");
    assert_eq!(g["persons_with_two_or_more_faces"], 1);
    assert_eq!((g["genuine_pairs"].as_u64(), g["impostor_pairs"].as_u64()), (Some(1), Some(2)));
    assert_eq!(g["impostor_pairs_sampled"], false);
    let v = &r["verify"];
    assert_eq!(v["gallery"]["frr"]["errors"], 0, "{r}");
    assert_eq!(v["gallery"]["far"]["errors"], 0, "{r}");
    assert_eq!(v["gallery"]["far"]["pairs"], 2);
    // Two pairs say little: the estimate in force is the reference's.
    assert_eq!(v["expected"], v["reference"], "{r}");
    assert!(r["reference"]["impostor_pairs"].as_u64().unwrap() > 1_000_000, "{r}");
    // Stricter targets need higher thresholds and reject more.
    let targets = v["targets"].as_array().unwrap();
    for w in targets.windows(2) {
        assert!(w[1]["far"].as_f64() < w[0]["far"].as_f64());
        assert!(w[1]["threshold"].as_f64() > w[0]["threshold"].as_f64(), "{r}");
        assert!(w[1]["expected_frr"].as_f64() >= w[0]["expected_frr"].as_f64(), "{r}");
    }
    let i = &r["identify"];
    assert_eq!(i["faces"], 3);
    assert_eq!(i["gallery_leave_one_out"]["probes"], 3);
    assert_eq!(i["gallery_leave_one_out"]["false_positives"], 0, "{r}");
    app.stop().await;
}

/// Unit vectors near one direction: every pair of them scores about 0.8,
/// far above where the reference's different persons do.
fn look_alikes(n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let common: Vec<f32> = (0..dim).map(|_| next()).collect();
    let unit = |v: Vec<f32>| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    let common = unit(common);
    (0..n)
        .map(|_| {
            let own = unit((0..dim).map(|_| next()).collect());
            unit(common.iter().zip(&own).map(|(c, o)| 0.9 * c + 0.45 * o).collect())
        })
        .collect()
}

#[tokio::test]
async fn a_gallery_of_look_alikes_raises_a_far_target_threshold() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let mut c = config(&db);
    c.thresholds = ThresholdChoice { verify_far: Some(1e-3), ..ThresholdChoice::default() };
    let app = spawn_with(c.clone()).await;
    let info = app.get_json("/v1/info").await;
    let (model, dim) =
        (info["models"]["embedder"].as_str().unwrap().to_string(), info["models"]["embedding_dim"].as_u64().unwrap());
    let on_reference = info["thresholds"]["verify"].as_f64().unwrap();
    app.stop().await;

    // Planted: 300 persons who all look alike.
    let store = Store::open(&db).await.unwrap();
    let items: Vec<(String, Vec<f32>)> =
        look_alikes(300, dim as usize).into_iter().enumerate().map(|(i, v)| (format!("look-alike {i}"), v)).collect();
    store.bulk_enroll(&items, &model).await.unwrap();
    store.close().await;

    let app = spawn_with(c).await;
    let report = app.get_json("/v1/calibration").await;
    let v = &report["verify"];
    // At the threshold in force the gallery's own pairs, not the reference, decide.
    assert!(v["gallery"]["far"]["errors"].as_u64().unwrap() >= 5, "{report}");
    assert!(v["expected"]["far"].as_f64().unwrap() > 100.0 * v["reference"]["far"].as_f64().unwrap(), "{report}");
    let info = app.get_json("/v1/info").await;
    let in_force = info["thresholds"]["verify"].as_f64().unwrap();
    assert!(in_force > on_reference + 0.05, "{on_reference} -> {in_force}");
    assert!(info["thresholds"]["verify_expected_far"].as_f64().unwrap() <= 1e-3);
    app.stop().await;
}

#[tokio::test]
async fn gallery_health_finds_planted_problems_with_their_ids() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let mut app = spawn_with(config(&db)).await;
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    let biden = app.enroll("Joe Biden", "biden.jpg").await;
    let clean = app.get_json("/v1/gallery/health").await;
    assert_eq!(
        clean["counts"],
        serde_json::json!({"disagreeing_faces": 0, "look_alikes": 0, "low_quality": 0, "other_model": 0}),
        "{clean}"
    );
    assert_eq!(clean["complete"], true);

    // Planted: Biden's photo filed under Obama, and Obama enrolled a second time.
    let r = app.post_raw(&format!("/v1/persons/{obama}/faces"), photo("obama2.jpg"), "image/jpeg").await;
    assert_eq!(r.status(), 201);
    let r = app.post_raw(&format!("/v1/persons/{obama}/faces"), photo("biden.jpg"), "image/jpeg").await;
    assert_eq!(r.status(), 201);
    let wrong_face = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let again = app.enroll("B. Obama", "obama3.jpg").await;
    let h = app.get_json("/v1/gallery/health").await;
    assert_eq!(h["counts"]["disagreeing_faces"], 1, "{h}");
    let d = &h["disagreeing_faces"][0];
    assert_eq!(
        (d["person_id"].as_str(), d["face_id"].as_str()),
        (Some(obama.as_str()), Some(wrong_face.as_str())),
        "{h}"
    );
    assert_eq!(d["name"], "Barack Obama");
    assert!(d["best_own_similarity"].as_f64() < h["disagree_below"].as_f64());
    // Obama and "B. Obama" look alike; so do Biden and Obama, through the misfiled photo.
    let pairs: Vec<Vec<&str>> = h["look_alikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["person_ids"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect())
        .collect();
    let has = |a: &str, b: &str| pairs.iter().any(|p| p.contains(&a) && p.contains(&b));
    assert!(has(&obama, &again) && has(&obama, &biden), "{h}");
    assert!(!has(&again, &biden), "{h}");
    assert!(h["look_alikes"][0]["similarity"].as_f64() >= h["look_alike_from"].as_f64());
    app.stop().await;

    // Planted: a face of another model; and stricter gates than at enrollment.
    let store = Store::open(&db).await.unwrap();
    store.bulk_enroll(&[("Old Model".into(), vec![1.0, 0.0])], "old-model@sha256:00").await.unwrap();
    store.close().await;
    let mut c = config(&db);
    c.service.min_face_size = 10_000.0;
    let app = spawn_with(c).await;
    let h = app.get_json("/v1/gallery/health").await;
    assert_eq!(h["counts"]["other_model"], 1, "{h}");
    assert_eq!(h["other_model"][0]["name"], "Old Model");
    assert_eq!(h["other_model"][0]["model"], "old-model@sha256:00");
    assert_eq!(h["counts"]["low_quality"], 5, "{h}");
    assert!(h["low_quality"].as_array().unwrap().iter().all(|f| f["reasons"][0] == "face_too_small"));
    app.stop().await;
}
