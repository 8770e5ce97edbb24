//! The report in a real browser: headless Chromium loads the file offline, its DOM has the charts
//! and the summary, and its screenshot is a real picture, not a blank page.
//!
//! Needs `/usr/bin/chromium` (Debian packages `chromium chromium-driver`; `scripts/test` installs
//! them when run as root). Without it the test skips with a note, except under `CI`, where it
//! fails so CI cannot pass without having looked. Set `SPOTKIT_REPORT_SCREENSHOT_DIR=DIR` to keep
//! the screenshot and the page there for a look.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::sample_report;
use spotkit_report::write_report;

const CHROMIUM: &str = "/usr/bin/chromium";
const WINDOW: (u32, u32) = (1200, 2000);
/// Headless Chromium renders this page in a few seconds; a minute means it hung.
const CHROMIUM_WAIT_MAX: Duration = Duration::from_secs(90);

/// `None`: skip (no Chromium, not CI).
fn chromium() -> Option<PathBuf> {
    if Path::new(CHROMIUM).exists() {
        return Some(PathBuf::from(CHROMIUM));
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "{CHROMIUM} is missing, and CI must check the report in a browser: install it with \
             `apt-get update && apt-get install -y chromium chromium-driver` (scripts/test does \
             this when run as root)"
        );
    }
    eprintln!(
        "skipping the browser check of the report: {CHROMIUM} is missing \
         (apt-get install -y chromium chromium-driver)"
    );
    None
}

/// Run headless Chromium on `page` with `extra` arguments in a fresh profile; kill it if it hangs.
fn run_chromium(chromium: &Path, page: &Path, extra: &[String]) -> Output {
    let profile = tempfile::tempdir().expect("temporary profile directory");
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Belt and braces for "no network": no name resolves, so nothing could be fetched.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .env("HOME", profile.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start chromium");
    let poll = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    // Read the pipes on threads so a large DOM cannot fill a pipe and stall Chromium.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buffer = Vec::new();
            let _ = pipe.read_to_end(&mut buffer);
            buffer
        })
    };
    let (stdout, stderr) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if waited >= CHROMIUM_WAIT_MAX {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {CHROMIUM_WAIT_MAX:?} on {}",
                page.display()
            );
        }
        std::thread::sleep(poll);
        waited += poll;
    };
    let output = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Width, height, bytes per pixel and total IDAT bytes of a PNG, checking its structure.
fn png_facts(png: &[u8]) -> (u32, u32, u32, usize) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let (mut at, mut header, mut idat) = (8, None, 0);
    while at + 8 <= png.len() {
        let length = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + length];
        match kind {
            b"IHDR" => {
                let width = u32::from_be_bytes(data[0..4].try_into().unwrap());
                let height = u32::from_be_bytes(data[4..8].try_into().unwrap());
                let (depth, colour) = (u32::from(data[8]), data[9]);
                let channels = match colour {
                    0 => 1,
                    2 => 3,
                    3 => 1,
                    4 => 2,
                    6 => 4,
                    other => panic!("PNG colour type {other}"),
                };
                header = Some((width, height, (channels * depth).div_ceil(8)));
            }
            b"IDAT" => idat += length,
            b"IEND" => break,
            _ => {}
        }
        at += 12 + length;
    }
    let (width, height, bytes_per_pixel) = header.expect("PNG has an IHDR chunk");
    (width, height, bytes_per_pixel, idat)
}

#[test]
fn chromium_renders_the_charts_and_the_summary_offline() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = sample_report();
    let page = write_report(dir.path(), &report).unwrap();

    let dom = String::from_utf8(run_chromium(&chromium, &page, &["--dump-dom".into()]).stdout)
        .expect("the DOM is UTF-8");
    assert_eq!(
        dom.matches("<svg class=\"chart-svg\"").count(),
        4,
        "four charts in the DOM"
    );
    for chart in &report.charts {
        assert!(
            dom.contains(&format!("<h2>{}</h2>", chart.title)),
            "{} in the DOM",
            chart.title
        );
    }
    assert!(dom.contains("<section class=\"summary\" id=\"summary\">"));
    for item in &report.summary {
        assert!(dom.contains(&format!("<div class=\"label\">{}</div>", item.label)));
    }
    assert_eq!(dom.matches("<path class=\"band\"").count(), 3);
    assert_eq!(dom.matches("<rect class=\"bar\"").count(), 3);
    assert!(dom.contains("<polyline class=\"series\""));
    assert!(dom.contains("id=\"report-data\""));

    let screenshot = dir.path().join("screenshot.png");
    run_chromium(
        &chromium,
        &page,
        &[
            format!("--screenshot={}", screenshot.display()),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        ],
    );
    let png = std::fs::read(&screenshot).expect("chromium wrote the screenshot");
    if let Some(keep) = std::env::var_os("SPOTKIT_REPORT_SCREENSHOT_DIR") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&screenshot, keep.join("spotkit-report.png")).unwrap();
        std::fs::copy(&page, keep.join("spotkit-report.html")).unwrap();
    }
    assert!(
        png.len() > 20_000,
        "a screenshot of charts is more than {} bytes",
        png.len()
    );
    let (width, height, bytes_per_pixel, idat) = png_facts(&png);
    assert_eq!((width, height), WINDOW);
    // A blank or uniform page deflates about 1000:1; text and charts never come near 200:1.
    let raw = width as usize * height as usize * bytes_per_pixel as usize;
    assert!(
        raw / idat < 200,
        "the screenshot compresses {}:1, so it is (nearly) uniform: the page did not render",
        raw / idat
    );
}
