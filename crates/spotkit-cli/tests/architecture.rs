//! Architecture invariants from ARCHITECTURE.md, checked on the manifests.

use std::path::Path;

fn manifest(krate: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse().unwrap()
}

fn dependencies(krate: &str) -> Vec<String> {
    manifest(krate)
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn core_has_no_dependencies_at_all() {
    assert_eq!(dependencies("spotkit-core"), Vec::<String>::new());
}

#[test]
fn runners_and_seams_never_depend_on_a_backend() {
    for krate in [
        "spotkit-core",
        "spotkit-cloud",
        "spotkit-agent",
        "spotkit-orchestrator",
    ] {
        let deps = dependencies(krate);
        for backend in ["spotkit-azure", "spotkit-sim"] {
            assert!(
                !deps.iter().any(|d| d == backend),
                "{krate} depends on {backend}; wire backends in spotkit-cli instead"
            );
        }
    }
}
