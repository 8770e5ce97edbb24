//! README's first command must keep working: `spotkit demo` runs to "demo OK".

mod common;

#[test]
fn the_readme_demo_runs_to_success() {
    let out = common::spotkit().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("demo OK"),
        "status {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("messages lost 0"), "{stdout}");
    assert!(
        stdout.contains("jobs resumed from a checkpoint"),
        "{stdout}"
    );
}
