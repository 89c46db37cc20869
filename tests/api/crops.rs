//! `--keep-crops`: each face's aligned crop is kept, and embeds like the photo.
use serde_json::Value;
use visage_service::domain::FaceChoice;
use visage_service::domain::{BBox, Detection};
use visage_service::store::Store;
use visage_service::vision::{Pipeline, PipelineConfig, Timings};

use crate::helpers::{config, fresh_db, photo, root, spawn_with, temp_dir};

/// The face ids of a person.
async fn faces_of(app: &crate::helpers::TestApp, person: &str) -> Vec<String> {
    let v: Value = app.get_json(&format!("/v1/persons/{person}")).await;
    v["faces"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn kept_crops_embed_like_the_photo_and_only_when_asked() {
    let dir = temp_dir();
    let db = fresh_db(&dir);
    let mut c = config(&db);
    c.service.keep_crops = true;
    let mut app = spawn_with(c).await;
    assert_eq!(app.get_json("/v1/info").await["enrollment"]["keep_crops"], true);
    let obama = app.enroll("Barack Obama", "obama.jpg").await;
    let kept = faces_of(&app, &obama).await;
    app.stop().await;
    let mut app = spawn_with(config(&db)).await;
    let biden = app.enroll("Joe Biden", "biden.jpg").await;
    let not_kept = faces_of(&app, &biden).await;
    app.stop().await;

    let store = Store::open(&db).await.unwrap();
    let crop = store.face_crop(&kept[0]).await.unwrap().expect("the crop was kept");
    assert_eq!(store.face_crop(&not_kept[0]).await.unwrap(), None, "kept without --keep-crops");
    store.close().await;
    let img = image::load_from_memory(&crop.png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (256, 256));

    // The crop, aligned again for the embedder, embeds like the photo.
    let p = Pipeline::load(&root().join("models"), PipelineConfig::default()).unwrap();
    let (faces, _) = p.analyze_bytes(&photo("obama.jpg"), FaceChoice::Largest, true).unwrap();
    let from_photo = faces[0].embedding.clone().unwrap().values;
    let xs = crop.landmarks.map(|l| l[0]);
    let ys = crop.landmarks.map(|l| l[1]);
    let (x0, y0) = (xs.iter().copied().fold(f32::MAX, f32::min), ys.iter().copied().fold(f32::MAX, f32::min));
    let (x1, y1) = (xs.iter().copied().fold(f32::MIN, f32::max), ys.iter().copied().fold(f32::MIN, f32::max));
    let det = Detection {
        bbox: BBox { x: x0, y: y0, width: x1 - x0, height: y1 - y0 },
        landmarks: crop.landmarks,
        score: 1.0,
    };
    let from_crop = p.describe(&img, det, true, &mut Timings::default()).unwrap().embedding.unwrap().values;
    let cosine: f32 = from_photo.iter().zip(&from_crop).map(|(a, b)| a * b).sum();
    assert!(cosine > 0.98, "the crop embeds at {cosine} from the photo");
}
