//! The face pipeline on the real models and real photos: parity with
//! onnxruntime and OpenCV (golden values in tests/golden/), and the decisions
//! a user relies on.
//!
//! Needs `make models test-data` (the README's test command runs it).
use std::path::PathBuf;
use std::sync::OnceLock;

use image::{RgbImage, codecs::jpeg::JpegEncoder};
use serde_json::Value;
use visage_model::{Backend, BackendConfig, LoadedModel, Manifest, ModelKind, onnx_rewrite};
use visage_service::calibration::EmbedderPolicy;
use visage_service::domain::FaceChoice;
use visage_service::domain::similarity::{cosine, dot};
use visage_service::vision::detect::DetectorConfig;
use visage_service::vision::embed::Embedder;
use visage_service::vision::{Pipeline, PipelineConfig};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn models_dir() -> PathBuf {
    root().join("models")
}

fn photo(name: &str) -> Vec<u8> {
    let path = root().join("tests/data").join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `make test-data` to fetch the test photos", path.display()))
}

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        Pipeline::load(&models_dir(), PipelineConfig::default())
            .unwrap_or_else(|e| panic!("{e:#}; run `make models` to fetch the models"))
    })
}

/// Every backend this build has: tract always, ONNX Runtime with the
/// `onnxruntime` feature (`make test` builds it and fetches the library).
fn backends() -> Vec<BackendConfig> {
    let mut all = vec![BackendConfig::default()];
    if cfg!(feature = "onnxruntime") {
        all.push(BackendConfig { backend: Backend::Onnxruntime, onnxruntime_library: None });
    }
    all
}

fn load(entry: &visage_model::ModelEntry, backend: &BackendConfig) -> LoadedModel {
    LoadedModel::load(&models_dir(), entry, backend)
        .unwrap_or_else(|e| panic!("{e:#}; run `make models` (and `make onnxruntime`)"))
}

fn golden(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("tests/golden").join(name)).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// The synthetic input of tests/golden/make_golden.py: (x*31 + y*17 + c*101) % 256.
fn pattern(c: usize, y: usize, x: usize) -> f32 {
    ((x * 31 + y * 17 + c * 101) % 256) as f32
}

/// The pattern as an RGB image (channel c of the tensor is RGB channel c).
fn pattern_image(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (x, y) = (x as usize, y as usize);
        image::Rgb([pattern(0, y, x) as u8, pattern(1, y, x) as u8, pattern(2, y, x) as u8])
    })
}

fn embedding_of(bytes: &[u8]) -> Vec<f32> {
    let (faces, _) = pipeline().analyze_bytes(bytes, FaceChoice::Largest, true).unwrap();
    faces.into_iter().next().expect("a face").embedding.unwrap().values
}

fn threshold() -> f32 {
    EmbedderPolicy::of_model(&pipeline().manifest, pipeline().embedder.id(), &models_dir()).unwrap().verify
}

#[test]
fn rewrite_of_the_shipped_files_folds_every_quantized_constant() {
    use prost::Message;
    let manifest = Manifest::load(&models_dir()).unwrap();
    for (id, dq, inputs_dropped) in [("yunet-2023mar-int8bq", 64, 0), ("sface-2021dec-int8bq", 29, 29)] {
        let entry = manifest.models.iter().find(|m| m.id == id).unwrap();
        let bytes = std::fs::read(models_dir().join(&entry.file)).unwrap();
        let mut proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice()).unwrap();
        let report = onnx_rewrite::fold_constants(&mut proto).unwrap();
        assert_eq!(report.dequantize_folded, dq, "{id}");
        assert_eq!(report.inputs_dropped, inputs_dropped, "{id}");
        let graph = proto.graph.unwrap();
        assert!(graph.node.iter().all(|n| n.op_type != "DequantizeLinear"), "{id}");
        let inits: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let free: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).filter(|n| !inits.contains(n)).collect();
        assert_eq!(free.len(), 1, "{id}: only the image input is left, got {free:?}");
    }
}

#[test]
fn sface_matches_onnxruntime_on_every_backend() {
    let manifest = Manifest::load(&models_dir()).unwrap();
    let entry = manifest.get("sface-2021dec-int8bq", ModelKind::Embedder).unwrap();
    // The embedder feeds RGB: channel c of the tensor is RGB channel c.
    let img = pattern_image(112, 112);
    let theirs = floats(&golden("ort_models.json")["sface_112"]);
    for backend in backends() {
        let embedder = Embedder::new(load(entry, &backend)).unwrap();
        assert_eq!(embedder.backend(), backend.backend);
        let ours = embedder.members()[0].raw(&img).unwrap();
        assert_eq!(ours.len(), 128);
        let cos = cosine(&ours, &theirs);
        let max_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        eprintln!(
            "SFace on {}: parity with onnxruntime cosine {cos:.7}, max |diff| {max_diff:.2e}",
            backend.backend.name()
        );
        assert!(cos > 0.9999, "{}: cosine {cos}", backend.backend.name());
    }
}

#[test]
fn dlib_resnet_read_from_its_own_file_matches_dlib_on_every_backend() {
    let manifest = Manifest::load(&models_dir()).unwrap();
    let entry = manifest.get("dlib-resnet-v1", ModelKind::Embedder).unwrap();
    let img = pattern_image(150, 150);
    // dlib's own descriptor of the same chip (tests/golden/make_dlib_golden.py).
    let theirs = floats(&golden("dlib.json")["pattern_150"]);
    for backend in backends() {
        let embedder = Embedder::new(load(entry, &backend)).unwrap();
        let ours = embedder.members()[0].raw(&img).unwrap();
        assert_eq!(ours.len(), 128);
        let max_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        eprintln!("dlib ResNet on {}: max |diff| from dlib {max_diff:.2e}", backend.backend.name());
        assert!(max_diff < 1e-4, "{}: {max_diff}", backend.backend.name());
    }
}

fn pipeline_with(embedder: &str) -> Pipeline {
    let config = PipelineConfig { embedder: Some(embedder.into()), ..PipelineConfig::default() };
    Pipeline::load(&models_dir(), config).unwrap_or_else(|e| panic!("{e:#}; run `make models`"))
}

#[test]
fn dlib_chips_from_yunet_landmarks_give_dlibs_descriptors() {
    // dlib's chain (its detector, its 5-point predictor, its chip) against
    // visage's (YuNet's landmarks fitted to the same chip template).
    let p = pipeline_with("dlib");
    let gold = golden("dlib.json");
    let mut ours = std::collections::BTreeMap::new();
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"] {
        let (faces, _) = p.analyze_bytes(&photo(name), FaceChoice::Largest, true).unwrap();
        let e = faces.into_iter().next().expect("a face").embedding.unwrap();
        let theirs = floats(&gold["photos"][name]);
        let c = cosine(&e.values, &theirs);
        eprintln!("{name}: visage dlib chain vs dlib's own, cosine {c:.4}");
        assert!(c > 0.95, "{name}: {c}");
        ours.insert(name, e.values);
    }
    // dlib's cosines sit high and close together (0.96 against 0.83 here).
    assert!(dot(&ours["obama.jpg"], &ours["obama2.jpg"]) > dot(&ours["obama.jpg"], &ours["biden.jpg"]) + 0.08);
}

#[test]
fn fused_embeddings_weigh_the_members_cosines() {
    let fused = pipeline_with("sface+dlib");
    let (sface, dlib) = (pipeline_with("sface"), pipeline_with("dlib"));
    let emb = |p: &Pipeline, name: &str| {
        let (faces, _) = p.analyze_bytes(&photo(name), FaceChoice::Largest, true).unwrap();
        faces.into_iter().next().expect("a face").embedding.unwrap()
    };
    let weights: Vec<f32> = fused.embedder.members().iter().map(|m| m.weight()).collect();
    assert_eq!(fused.embedder.dim(), 256);
    assert!(fused.embedder.id().name == "sface+dlib" && fused.embedder.id() != sface.embedder.id());
    for (a, b) in [("obama.jpg", "obama2.jpg"), ("obama.jpg", "biden.jpg")] {
        let f = dot(&emb(&fused, a).values, &emb(&fused, b).values);
        let s = dot(&emb(&sface, a).values, &emb(&sface, b).values);
        let d = dot(&emb(&dlib, a).values, &emb(&dlib, b).values);
        eprintln!("{a} vs {b}: fused {f:.4} = {:.1} x sface {s:.4} + {:.1} x dlib {d:.4}", weights[0], weights[1]);
        assert!((f - (weights[0] * s + weights[1] * d)).abs() < 1e-4, "{f} vs {s} and {d}");
    }
}

#[test]
fn yunet_matches_onnxruntime_at_a_non_square_size_on_every_backend() {
    let manifest = Manifest::load(&models_dir()).unwrap();
    let (h, w) = (96, 160);
    let mut input = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            input.extend((0..w).map(|x| pattern(c, y, x)));
        }
    }
    let gold = golden("ort_models.json");
    for backend in backends() {
        let model = load(manifest.default_detector().unwrap(), &backend);
        let outputs = model.network.run(input.clone(), [1, 3, h, w]).unwrap();
        let mut worst = 0.0f32;
        for (i, name) in model.outputs.iter().enumerate() {
            let theirs = floats(&gold["yunet_96x160"][name]);
            assert_eq!(outputs[i].len(), theirs.len(), "{name}");
            let diff = outputs[i].iter().zip(&theirs).map(|(a, b)| (a - b).abs() / (1.0 + b.abs())).fold(0.0, f32::max);
            worst = worst.max(diff);
        }
        eprintln!("YuNet on {}: max relative diff from onnxruntime {worst:.2e}", backend.backend.name());
        assert!(worst < 1e-3, "{}: {worst}", backend.backend.name());
    }
}

#[test]
fn whole_chain_matches_opencv_on_every_backend() {
    for backend in backends() {
        // OpenCV runs YuNet at the photo's own size: do the same (no downscaling).
        // OpenCV's chain is SFace's.
        let config = PipelineConfig {
            detector: DetectorConfig { max_side: 4096, ..DetectorConfig::default() },
            backend,
            embedder: Some("sface".into()),
            ..PipelineConfig::default()
        };
        chain_matches_opencv(&Pipeline::load(&models_dir(), config).unwrap());
    }
}

fn chain_matches_opencv(p: &Pipeline) {
    let backend = p.embedder.backend().name();
    let gold = golden("opencv_chain.json");
    for (name, faces) in gold["photos"].as_object().unwrap() {
        let (ours, _) = p.analyze_bytes(&photo(name), FaceChoice::All, true).unwrap();
        let theirs = faces.as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{name}: face count");
        for (o, t) in ours.iter().zip(theirs) {
            let tl: Vec<Vec<f32>> = t["landmarks"].as_array().unwrap().iter().map(floats).collect();
            let worst = o
                .detection
                .landmarks
                .iter()
                .zip(&tl)
                .map(|(a, b)| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt())
                .fold(0.0, f32::max);
            let cos = dot(&o.embedding.as_ref().unwrap().values, &floats(&t["embedding"]));
            eprintln!("{backend} {name}: landmarks within {worst:.2} px of OpenCV, embedding cosine {cos:.5}");
            assert!(worst < 2.0, "{name}: landmark off by {worst}");
            assert!(cos > 0.999, "{name}: cosine {cos}");
        }
    }
}

#[test]
fn each_portrait_has_exactly_one_face_with_landmarks_inside_the_box() {
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"] {
        let (faces, _) = pipeline().analyze_bytes(&photo(name), FaceChoice::All, false).unwrap();
        assert_eq!(faces.len(), 1, "{name}");
        let d = &faces[0].detection;
        assert!(d.score >= 0.9, "{name}");
        for lm in d.landmarks {
            assert!(d.bbox.contains(lm), "{name}: landmark {lm:?} outside {:?}", d.bbox);
        }
        // Right eye is left of the left eye in the image; eyes above the mouth.
        assert!(d.landmarks[0][0] < d.landmarks[1][0] && d.landmarks[0][1] < d.landmarks[3][1], "{name}");
        assert!(faces[0].quality.face_size > 100.0 && faces[0].quality.sharpness > 10.0, "{name}");
    }
}

#[test]
fn obama_photos_match_each_other_and_not_biden() {
    let obama: Vec<Vec<f32>> =
        ["obama.jpg", "obama2.jpg", "obama3.jpg"].iter().map(|n| embedding_of(&photo(n))).collect();
    let biden = embedding_of(&photo("biden.jpg"));
    for i in 0..3 {
        assert!((dot(&obama[i], &obama[i]) - 1.0).abs() < 1e-4, "unit length");
        for j in i + 1..3 {
            let s = dot(&obama[i], &obama[j]);
            assert!(s > threshold(), "obama {i} vs {j}: {s}");
        }
        let s = dot(&obama[i], &biden);
        assert!(s < threshold(), "obama {i} vs biden: {s}");
    }
}

#[test]
fn a_32_bit_png_decodes_and_shows_a_face() {
    let img = pipeline().decode(&photo("32bit.png")).unwrap();
    assert_eq!(img.dimensions(), (626, 1200));
    assert_eq!(pipeline().detect(&img).unwrap().len(), 1);
}

/// A JPEG with an EXIF APP1 segment carrying only `orientation`.
fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 95).encode_image(img).unwrap();
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes()); // first IFD offset
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // count
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn exif_rotated_photos_give_the_upright_embedding() {
    let upright = pipeline().decode(&photo("obama.jpg")).unwrap();
    let reference = embedding_of(&jpeg_with_orientation(&upright, 1));
    // Orientation 6: the stored pixels are the upright photo turned 90° counter-clockwise.
    let stored6 = image::imageops::rotate270(&upright);
    // Orientation 8: turned 90° clockwise.
    let stored8 = image::imageops::rotate90(&upright);
    for (orientation, stored) in [(6, stored6), (8, stored8)] {
        let bytes = jpeg_with_orientation(&stored, orientation);
        let decoded = pipeline().decode(&bytes).unwrap();
        assert_eq!(decoded.dimensions(), upright.dimensions(), "orientation {orientation}");
        let s = dot(&embedding_of(&bytes), &reference);
        assert!(s > 0.99, "orientation {orientation}: cosine {s}");
    }
    // Without the tag the sideways photo is a different (rotated) picture.
    let sideways = jpeg_with_orientation(&image::imageops::rotate270(&upright), 1);
    assert_eq!(pipeline().decode(&sideways).unwrap().dimensions(), (upright.height(), upright.width()));
}

#[test]
fn photos_without_faces_yield_no_faces() {
    let gradient = RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x / 3) as u8, (y / 2) as u8, 128]));
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x2545_F491_4F6C_DD1D);
    let noise = RgbImage::from_fn(500, 400, |_, _| image::Rgb(rng.random()));
    for img in [gradient, noise] {
        assert!(pipeline().detect(&img).unwrap().is_empty());
    }
}

#[test]
fn a_missing_or_corrupt_model_is_refused_with_the_fetch_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(models_dir().join("manifest.toml"), dir.join("manifest.toml")).unwrap();
    let err = Pipeline::load(dir, PipelineConfig::default()).err().unwrap();
    let msg = format!("{err:#}");
    assert!(msg.contains("missing") && msg.contains("make models"), "{msg}");
    let manifest = Manifest::load(dir).unwrap();
    std::fs::write(dir.join(&manifest.default_detector().unwrap().file), b"not a model").unwrap();
    let msg = format!("{:#}", Pipeline::load(dir, PipelineConfig::default()).err().unwrap());
    assert!(msg.contains("SHA-256") && msg.contains("make models"), "{msg}");
}

#[cfg(not(feature = "onnxruntime"))]
#[test]
fn the_onnxruntime_backend_needs_the_feature() {
    let config = PipelineConfig {
        backend: BackendConfig { backend: Backend::Onnxruntime, onnxruntime_library: None },
        ..PipelineConfig::default()
    };
    let msg = format!("{:#}", Pipeline::load(&models_dir(), config).err().unwrap());
    assert!(msg.contains("--features onnxruntime"), "{msg}");
}

#[cfg(feature = "onnxruntime")]
#[test]
fn both_backends_give_the_same_embeddings_on_real_photos() {
    let ort = Pipeline::load(
        &models_dir(),
        PipelineConfig {
            backend: BackendConfig { backend: Backend::Onnxruntime, onnxruntime_library: None },
            ..PipelineConfig::default()
        },
    )
    .unwrap();
    for name in ["obama.jpg", "obama2.jpg", "biden.jpg", "32bit.png"] {
        let (faces, _) = ort.analyze_bytes(&photo(name), FaceChoice::Largest, true).unwrap();
        let theirs = faces.into_iter().next().expect("a face").embedding.unwrap().values;
        let s = dot(&embedding_of(&photo(name)), &theirs);
        eprintln!("{name}: tract vs onnxruntime embedding cosine {s:.6}");
        assert!(s > 0.999, "{name}: {s}");
    }
}

#[cfg(feature = "onnxruntime")]
#[test]
fn a_missing_onnxruntime_library_is_refused_with_the_fetch_command() {
    let dir = tempfile::tempdir().unwrap();
    let config = PipelineConfig {
        backend: BackendConfig {
            backend: Backend::Onnxruntime,
            onnxruntime_library: Some(dir.path().join("libonnxruntime.so")),
        },
        ..PipelineConfig::default()
    };
    let msg = format!("{:#}", Pipeline::load(&models_dir(), config).err().unwrap());
    assert!(msg.contains("missing") && msg.contains("make onnxruntime"), "{msg}");
}

/// visage's own kernels (crates/model/src/kernels) take the operators they were
/// written for in the shipped models' tract plans: a tract upgrade that
/// renames or restructures an operator must not silently fall back to the
/// slow path. (Their outputs are checked by the parity tests above.)
#[test]
fn visage_kernels_replace_tracts_in_the_shipped_models() {
    use visage_model::tract::TractNetwork;
    let manifest = Manifest::load(&models_dir()).unwrap();
    let count = |id: &str, shape: [usize; 4]| {
        let entry = manifest.models.iter().find(|m| m.id == id).unwrap();
        let proto = visage_model::tract_proto(&models_dir(), entry).unwrap();
        let plan = TractNetwork::new(&proto, id).unwrap().plan(shape).unwrap();
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        for node in plan.model().nodes() {
            *kinds.entry(node.op().name().to_string()).or_default() += 1;
        }
        kinds
    };
    let sface = count("sface-2021dec-int8bq", [1, 3, 112, 112]);
    // 13 depthwise 3x3 convolutions and the first 3x3 layer, each with its PReLU.
    assert_eq!(sface.get("VisageDirectConv"), Some(&14), "{sface:?}");
    assert_eq!(sface.get("DepthWiseConv"), None, "{sface:?}");
    if visage_model::kernels::gemm::preferred() {
        // AVX2 without AVX-512: the 12 pointwise convolutions of 64 input
        // channels or more are computed in integers from the file's int8
        // weights, the first one (32 channels) is visage's f32 matrix
        // product, each with its PReLU fused.
        assert_eq!(sface.get("VisageQuantizedConv"), Some(&12), "{sface:?}");
        assert_eq!(sface.get("VisageGemmConv"), Some(&1), "{sface:?}");
        assert_eq!(sface.get("VisageChannelMaxAffine"), None, "{sface:?}");
        assert_eq!(sface.get("OptMaxUnicast"), None, "every PReLU is an epilogue: {sface:?}");
    } else if visage_model::kernels::integer_convs() {
        // AVX-512 with VNNI: all 13 pointwise convolutions in integers (from
        // 16 input channels), tract's f32 products for none.
        assert_eq!(sface.get("VisageQuantizedConv"), Some(&13), "{sface:?}");
        assert_eq!(sface.get("VisageGemmConv"), None, "{sface:?}");
        assert_eq!(sface.get("OptMatMul"), None, "{sface:?}");
        // The PReLU before the first (slopes above 1) folds its signs into
        // it too, so none runs as a general PReLU.
        assert_eq!(sface.get("OptBinChain(Min+Mul)"), None, "{sface:?}");
    } else {
        assert!(sface.get("VisageChannelMaxAffine").is_some_and(|&n| n >= 13), "{sface:?}");
    }
    if visage_model::kernels::qgemv::fast() {
        // fc1 stays block-quantized int8.
        assert_eq!(sface.get("VisageQuantizedGemm"), Some(&1), "{sface:?}");
        if visage_model::kernels::gemm::preferred() {
            assert_eq!(sface.get("OptMatMul"), None, "no f32 matrix product is left: {sface:?}");
        }
    }
    let yunet = count("yunet-2023mar-int8bq", [1, 3, 256, 256]);
    assert_eq!(yunet.get("VisageMaxPool2x2"), Some(&4), "{yunet:?}");
    assert!(yunet.get("VisageDirectConv").is_some_and(|&n| n >= 14), "{yunet:?}");
    assert_eq!(yunet.get("OptMaxPool"), None, "{yunet:?}");
    if visage_model::kernels::integer_convs() {
        // Its 1x1 convolutions in integers: the 21 of 64 input channels, or
        // all 26 (from 16 channels) where AVX-512 VNNI exists.
        let want = if visage_model::kernels::quantized_conv::min_depth() <= 16 { 26 } else { 21 };
        assert_eq!(yunet.get("VisageQuantizedConv"), Some(&want), "{yunet:?}");
    }
}
