//! Bytes → decode → detect → align with the real models.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use visage_service::vision::decode::DecodeLimits;
use visage_service::vision::pipeline::{Pipeline, PipelineConfig};

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        // A smaller pixel budget than the server's 40 MP keeps executions
        // fast; the limit checks themselves are the same code.
        let config = PipelineConfig {
            decode: DecodeLimits { max_pixels: 4_000_000, max_dimension: 4096 },
            ..PipelineConfig::default()
        };
        match Pipeline::load(&models, config) {
            Ok(p) => p,
            Err(e) => panic!("loading the models from {} (run `make models`): {e:#}", models.display()),
        }
    })
}

fuzz_target!(|data: &[u8]| visage_fuzz::decode_detect(pipeline(), data));
