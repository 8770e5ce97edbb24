//! tracing to stderr, as text or JSON; the level from `SPOTKIT_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

pub fn init(format: Option<&str>) {
    init_with_default(format, "info");
}

/// As [`init`], with `default` when `SPOTKIT_LOG` is unset (the demo keeps stderr for its
/// progress line).
pub fn init_with_default(format: Option<&str>, default: &str) {
    let filter = EnvFilter::try_from_env("SPOTKIT_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests, demo) is harmless: the first subscriber stays.
    let _ = if format == Some("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
