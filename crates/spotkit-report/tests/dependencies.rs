//! The report stays a leaf: plain data and text, nothing that could fetch, spawn or template.

#[test]
fn the_report_depends_only_on_serde_serde_json_and_thiserror() {
    let manifest = include_str!("../Cargo.toml");
    let mut section = "";
    let mut dependencies = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[dependencies]" && !line.is_empty() && !line.starts_with('#') {
            dependencies.push(line.split(['.', '=', ' ']).next().unwrap().to_string());
        }
    }
    assert_eq!(
        dependencies,
        ["serde", "serde_json", "thiserror"],
        "spotkit-report must stay free of other crates (see docs/report.md); \
         put I/O and data gathering in the caller"
    );
}
