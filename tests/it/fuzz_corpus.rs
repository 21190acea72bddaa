//! Every fuzz target run over its seed corpus (`fuzz/corpus/<target>/`) and over the inputs
//! fuzzing once crashed on (`fuzz/regressions/<target>/`), so a fixed crash stays fixed on
//! every `cargo test`, without AFL++.

use std::path::Path;

#[path = "../../fuzz/src/targets.rs"]
mod targets;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_target_survives_its_corpus_and_past_crashes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    for target in targets::TARGETS {
        let seeds = inputs(&root.join("corpus").join(target));
        assert!(!seeds.is_empty(), "fuzz target {target} has no seed corpus in fuzz/corpus/{target}/");
        for path in seeds.iter().chain(&inputs(&root.join("regressions").join(target))) {
            let data = std::fs::read(path).unwrap();
            if let Err(panic) = std::panic::catch_unwind(|| targets::run(target, &data)) {
                let why = (panic.downcast_ref::<String>().cloned())
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| format!("{panic:?}"));
                failures.push(format!("{target} on {}: {why}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} inputs crashed:\n{}", failures.len(), failures.join("\n"));
}
