//! The VM application package: built, unpacked, installed into a staging root, config valid.

use std::path::Path;
use std::process::Command;

#[test]
fn vm_application_package_installs_into_a_staging_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out_dir = tempfile::tempdir().unwrap();
    let build = Command::new("bash")
        .arg(root.join("packaging/build-vm-app.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_spotkit"), "--out"])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let tarball = String::from_utf8(build.stdout)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(tarball.ends_with("-linux-x86_64.tar.gz"), "{tarball}");
    let name = Path::new(&tarball)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        name.starts_with(&format!("spotkit-{}-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    let unpack = tempfile::tempdir().unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(unpack.path())
        .status()
        .unwrap();
    assert!(tar.success());
    for f in [
        "spotkit",
        "install.sh",
        "uninstall.sh",
        "spotkit-agent.service",
        "agent.toml",
    ] {
        assert!(unpack.path().join(f).exists(), "{f} in the package");
    }

    let stage = tempfile::tempdir().unwrap();
    let install = Command::new("sh")
        .arg(unpack.path().join("install.sh"))
        .env("DESTDIR", stage.path())
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let bin = stage.path().join("usr/local/bin/spotkit");
    let unit = stage
        .path()
        .join("etc/systemd/system/spotkit-agent.service");
    let conf = stage.path().join("etc/spotkit/agent.toml");
    assert!(bin.exists() && unit.exists() && conf.exists());
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        unit_text
            .contains("ExecStart=/usr/local/bin/spotkit agent --config /etc/spotkit/agent.toml")
    );

    // An operator's edited config survives a reinstall.
    std::fs::write(&conf, "[agent]\npoll_interval = \"2s\"\n").unwrap();
    let again = Command::new("sh")
        .arg(unpack.path().join("install.sh"))
        .env("DESTDIR", stage.path())
        .status()
        .unwrap();
    assert!(again.success());
    assert!(std::fs::read_to_string(&conf).unwrap().contains("2s"));

    // The installed binary accepts the installed config.
    let run = Command::new(&bin)
        .args(["agent", "--config"])
        .arg(&conf)
        .args([
            "--imds-url",
            "http://127.0.0.1:9",
            "--vm-name",
            "vm",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let uninstall = Command::new("sh")
        .arg(unpack.path().join("uninstall.sh"))
        .env("DESTDIR", stage.path())
        .status()
        .unwrap();
    assert!(uninstall.success());
    assert!(!bin.exists() && !unit.exists() && conf.exists());
}
