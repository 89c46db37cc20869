use super::*;

fn key(byte: u8) -> DataKey {
    DataKey::new(&[byte; KEY_LEN])
}

fn embedding_bytes() -> Vec<u8> {
    [0.25f32, -0.5, 0.125, 0.75].iter().flat_map(|v| v.to_le_bytes()).collect()
}

const FACE: Sealed<'static> = Sealed::Embedding { face: "face-1", model: "sface@sha256:ab" };

#[test]
fn a_sealed_embedding_opens_with_its_key_and_row_and_hides_the_values() {
    let keys = DataKeys::new(key(7), vec![]);
    let clear = embedding_bytes();
    let sealed = keys.seal(FACE, clear.clone());
    assert_eq!(sealed.len(), clear.len() + OVERHEAD);
    assert_eq!(sealed.len() % 4, 3, "never mistaken for a clear embedding");
    assert!(!sealed.windows(4).any(|w| clear.chunks(4).any(|c| c == w)), "no clear value in the sealed bytes");
    assert_eq!(sealed_by(&sealed), Some(key(7).id()));
    assert_eq!(keys.open(FACE, &sealed).unwrap().as_ref(), clear.as_slice());
    // A fresh nonce each time.
    assert_ne!(keys.seal(FACE, clear.clone()), sealed);
}

#[test]
fn a_value_moved_to_another_row_or_altered_does_not_open() {
    let keys = DataKeys::new(key(7), vec![]);
    let sealed = keys.seal(FACE, embedding_bytes());
    let other_face = Sealed::Embedding { face: "face-2", model: "sface@sha256:ab" };
    let other_model = Sealed::Embedding { face: "face-1", model: "dlib@sha256:cd" };
    assert_eq!(keys.open(other_face, &sealed), Err(SealError::DoesNotOpen("embedding")));
    assert_eq!(keys.open(other_model, &sealed), Err(SealError::DoesNotOpen("embedding")));
    let as_crop = keys.seal(Sealed::Crop { face: "face-1" }, b"\x89PNG....".to_vec());
    assert!(keys.open(Sealed::Graph { file: "face-1" }, &as_crop).is_err());
    for at in [0, 3, PREFIX_LEN, HEADER_LEN, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[at] ^= 1;
        assert!(keys.open(FACE, &bad).is_err(), "a flipped bit at {at} went unnoticed");
    }
    assert!(keys.open(FACE, &sealed[..sealed.len() - 4]).is_err());
    assert!(keys.open(FACE, &sealed[..7]).is_err(), "too short to be sealed, yet sealed-shaped");
}

#[test]
fn only_the_keys_held_open_and_a_rotation_reads_both() {
    let (old, new) = (key(1), key(2));
    let sealed_old = DataKeys::new(key(1), vec![]).seal(FACE, embedding_bytes());
    let new_only = DataKeys::new(key(2), vec![]);
    assert_eq!(new_only.open(FACE, &sealed_old), Err(SealError::UnknownKey(old.id())));
    let rotating = DataKeys::new(new, vec![old]);
    assert_eq!(rotating.open(FACE, &sealed_old).unwrap().as_ref(), embedding_bytes().as_slice());
    assert_eq!(sealed_by(&rotating.seal(FACE, embedding_bytes())), Some(key(2).id()));
    assert!(DataKeys::none().open(FACE, &sealed_old).is_err());
}

#[test]
fn clear_values_pass_through_and_a_saved_file_must_be_sealed() {
    let clear = embedding_bytes();
    assert_eq!(DataKeys::none().seal(FACE, clear.clone()), clear);
    let keys = DataKeys::new(key(3), vec![]);
    assert_eq!(keys.open(FACE, &clear).unwrap().as_ref(), clear.as_slice());
    let graph = Sealed::Graph { file: "gallery-1.usearch" };
    assert_eq!(keys.open_sealed(graph, b"usearch graph".to_vec()), Err(SealError::NotSealed("graph")));
    let sealed = keys.seal(graph, b"usearch graph".to_vec());
    assert_eq!(keys.open_sealed(graph, sealed.clone()).unwrap(), b"usearch graph");
    let other = Sealed::Graph { file: "gallery-2.usearch" };
    assert_eq!(keys.open_sealed(other, sealed), Err(SealError::DoesNotOpen("graph")));
}

#[test]
fn ids_and_check_values_differ_by_key_and_never_show_it() {
    assert_ne!(key(1).id(), key(2).id());
    assert_eq!(key(1).check_value(), key(1).check_value());
    assert!(!key(9).check_value().windows(4).any(|w| w == [9; 4]));
    assert_eq!(key(1).id().to_string().len(), 16);
}

#[test]
fn key_values_are_read_raw_hex_or_base64_and_nothing_else() {
    let raw = [0xA5u8; KEY_LEN];
    assert_eq!(parse_key(&raw).unwrap(), raw);
    assert_eq!(parse_key(format!("{}\n", hex::encode(raw)).as_bytes()).unwrap(), raw);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw);
    assert_eq!(parse_key(format!("  {b64}\r\n").as_bytes()).unwrap(), raw);
    assert!(matches!(parse_key(b"short"), Err(KeyFileError::Malformed(5))));
    assert!(matches!(parse_key(&[b'z'; 64]), Err(KeyFileError::Malformed(64))));
    assert!(matches!(parse_key(&[0u8; KEY_LEN]), Err(KeyFileError::Zero)));
    assert!(parse_key(&[]).is_err());
}

#[test]
fn a_generated_key_file_is_private_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.key");
    let written = generate(&path).unwrap();
    assert_eq!(read_key_file(&path).unwrap().id(), written.id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert!(generate(&path).is_err(), "an existing key file is never overwritten");
    std::fs::write(dir.path().join("big.key"), vec![b'a'; 2048]).unwrap();
    assert!(matches!(read_key_file(&dir.path().join("big.key")), Err(KeyFileError::TooLarge(_))));
}
