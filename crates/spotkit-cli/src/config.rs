//! Configuration: a TOML file, `SPOTKIT_*` environment variables and flags, in rising precedence.
//!
//! Every value is kept with where it came from, so a validation error names the exact flag,
//! variable or file key, the bad value, and how to fix it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use spotkit_core::agent::{Reaction, Reactions};
use spotkit_core::events::EventType;

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--poll-interval`.
    Flag(&'static str),
    /// An environment variable, e.g. `SPOTKIT_POLL_INTERVAL`.
    Env(&'static str),
    /// A key in the config file.
    File {
        /// Dotted key, e.g. `agent.poll_interval`.
        key: String,
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File { key, path } => write!(f, "key {key} in {}", path.display()),
        }
    }
}

/// A configuration error: which setting, what value, what is wrong, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value failed validation.
    #[error("{origin} = {value:?}: {problem}; {fix}")]
    Invalid {
        /// Where it came from.
        origin: Origin,
        /// The value as given.
        value: String,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}; check the path given to --config/SPOTKIT_CONFIG", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for spotkit.
    #[error("config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A required setting was not given anywhere.
    #[error("{flag} is required; pass {flag}, set {env}, or set {key} in the config file")]
    Missing {
        /// The flag.
        flag: &'static str,
        /// The environment variable.
        env: &'static str,
        /// The file key.
        key: &'static str,
    },
    /// Two settings contradict each other.
    #[error("{first} and {second} cannot both be set; {fix}")]
    Conflict {
        /// One.
        first: Origin,
        /// The other.
        second: Origin,
        /// What to do.
        fix: String,
    },
}

/// The `[agent]` table of the config file. Unknown keys are errors, so a typo is never silently
/// ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    pub imds_url: Option<String>,
    pub vm_name: Option<String>,
    pub poll_interval: Option<String>,
    pub poll_timeout: Option<String>,
    pub first_poll_timeout: Option<String>,
    pub safety_margin: Option<String>,
    pub default_notice: Option<String>,
    pub min_drain: Option<String>,
    pub stop_grace: Option<String>,
    pub approve_events: Option<bool>,
    pub on_preempt: Option<String>,
    pub on_event: Option<String>,
    pub event_hook_timeout: Option<String>,
    pub drain_url: Option<String>,
    pub notify_url: Option<String>,
    pub heartbeat_url: Option<String>,
    pub heartbeat_interval: Option<String>,
    pub ready_check: Option<String>,
    pub ready_url: Option<String>,
    pub listen: Option<String>,
    pub log_format: Option<String>,
    /// Event type name -> `drain` | `hook` | `ignore`.
    pub policy: Option<BTreeMap<String, String>>,
}

/// The `[worker]` table of the config file (docs/worker.md lists the keys).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerFile {
    pub queue: Option<String>,
    pub store: Option<String>,
    pub poison_queue: Option<String>,
    pub concurrency: Option<u32>,
    pub prefetch: Option<u32>,
    pub lease: Option<String>,
    pub max_dequeue: Option<u32>,
    pub shutdown_budget: Option<String>,
    pub checkpoint_grace: Option<String>,
    pub ready_check: Option<String>,
    pub scratch: Option<String>,
    pub log_format: Option<String>,
}

/// The whole config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub agent: AgentFile,
    #[serde(default)]
    pub worker: WorkerFile,
}

/// One setting's sources, highest precedence first: flag, environment (both via clap), file.
pub struct Setting<'a> {
    pub matches: &'a clap::ArgMatches,
    /// The config file table (`agent`, `worker`).
    pub table: &'static str,
    /// The clap argument id, which is also the file key.
    pub id: &'static str,
    pub flag: &'static str,
    pub env: &'static str,
}

impl Setting<'_> {
    /// The highest-precedence value given, with where it came from.
    pub fn pick(
        &self,
        cli: Option<&String>,
        file: Option<&String>,
        loaded: &LoadedFile,
    ) -> Option<Sourced> {
        if let Some(v) = cli {
            let origin = match self.matches.value_source(self.id) {
                Some(clap::parser::ValueSource::EnvVariable) => Origin::Env(self.env),
                _ => Origin::Flag(self.flag),
            };
            return Some(Sourced {
                value: v.clone(),
                origin,
            });
        }
        file.map(|v| Sourced {
            value: v.clone(),
            origin: loaded.origin(&format!("{}.{}", self.table, self.id)),
        })
    }
}

/// Parses a whole number within `[min, max]`.
pub fn number(s: &Sourced, min: u32, max: u32, why: &str) -> Result<u32, ConfigError> {
    match s.value.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            origin: s.origin.clone(),
            value: s.value.clone(),
            problem: format!("must be a whole number from {min} to {max} ({why})"),
            fix: "choose a value in that range".to_string(),
        }),
    }
}

/// A loaded config file and its path (for error messages).
#[derive(Debug, Default)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub config: ConfigFile,
}

impl LoadedFile {
    /// Reads and parses `path`.
    ///
    /// # Errors
    /// Unreadable file, invalid TOML, unknown keys, wrong value types.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config = parse_config_text(path, &text)?;
        Ok(Self {
            path: path.to_path_buf(),
            config,
        })
    }

    pub fn origin(&self, key: &str) -> Origin {
        Origin::File {
            key: key.to_string(),
            path: self.path.clone(),
        }
    }
}

/// Parses the text of a config file read from `path` (named in errors only).
///
/// # Errors
/// Invalid TOML, unknown keys, wrong value types: the message names the key and line.
pub fn parse_config_text(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

/// A raw value with its origin.
#[derive(Clone, Debug)]
pub struct Sourced {
    pub value: String,
    pub origin: Origin,
}

/// Parses a human duration (`1s`, `500ms`, `2m`) within `[min, max]`.
pub fn duration(
    s: &Sourced,
    min: Duration,
    max: Duration,
    why: &str,
) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(s.value.trim()).map_err(|e| ConfigError::Invalid {
        origin: s.origin.clone(),
        value: s.value.clone(),
        problem: format!("not a duration ({e})"),
        fix: "write it like 1s, 500ms or 2m".to_string(),
    })?;
    if d < min || d > max {
        return Err(ConfigError::Invalid {
            origin: s.origin.clone(),
            value: s.value.clone(),
            problem: format!(
                "must be between {} and {} ({why})",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
            fix: "choose a value in that range".to_string(),
        });
    }
    Ok(d)
}

/// Parses an http(s) URL.
pub fn url(s: &Sourced) -> Result<String, ConfigError> {
    match reqwest::Url::parse(s.value.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(s.value.trim().to_string())
        }
        Ok(u) => Err(ConfigError::Invalid {
            origin: s.origin.clone(),
            value: s.value.clone(),
            problem: format!("scheme {:?} or missing host", u.scheme()),
            fix: "use an http:// or https:// URL with a host".to_string(),
        }),
        Err(e) => Err(ConfigError::Invalid {
            origin: s.origin.clone(),
            value: s.value.clone(),
            problem: format!("not a URL ({e})"),
            fix: "use a full URL such as http://127.0.0.1:8080/path".to_string(),
        }),
    }
}

/// Parses a listen address and insists on an explicit port.
pub fn socket_addr(s: &Sourced) -> Result<SocketAddr, ConfigError> {
    s.value.trim().parse().map_err(|e| ConfigError::Invalid {
        origin: s.origin.clone(),
        value: s.value.clone(),
        problem: format!("not an IP:PORT address ({e})"),
        fix: "write it like 127.0.0.1:9464".to_string(),
    })
}

/// Applies `TYPE=REACTION` entries on top of the defaults.
pub fn reactions(entries: &[Sourced]) -> Result<Reactions, ConfigError> {
    let mut r = Reactions::default();
    for entry in entries {
        let (ty, reaction) = entry
            .value
            .split_once('=')
            .ok_or_else(|| ConfigError::Invalid {
                origin: entry.origin.clone(),
                value: entry.value.clone(),
                problem: "expected TYPE=REACTION".to_string(),
                fix: "write it like Freeze=hook".to_string(),
            })?;
        let event_type = EventType::parse(ty).ok_or_else(|| ConfigError::Invalid {
            origin: entry.origin.clone(),
            value: entry.value.clone(),
            problem: format!("unknown event type {ty:?}"),
            fix: "use one of Freeze, Reboot, Redeploy, Preempt, Terminate".to_string(),
        })?;
        let reaction = match reaction.trim().to_ascii_lowercase().as_str() {
            "drain" => Reaction::Drain,
            "hook" => Reaction::Hook,
            "ignore" => Reaction::Ignore,
            other => {
                return Err(ConfigError::Invalid {
                    origin: entry.origin.clone(),
                    value: entry.value.clone(),
                    problem: format!("unknown reaction {other:?}"),
                    fix: "use drain, hook or ignore".to_string(),
                });
            }
        };
        r.set(event_type, reaction);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(v: &str) -> Sourced {
        Sourced {
            value: v.to_string(),
            origin: Origin::Flag("--poll-interval"),
        }
    }

    #[test]
    fn duration_errors_name_the_setting_the_value_and_the_fix() {
        let err = duration(
            &flag("50ms"),
            Duration::from_millis(250),
            Duration::from_secs(30),
            "IMDS allows 5 requests/s",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--poll-interval"), "{err}");
        assert!(err.contains("\"50ms\""), "{err}");
        assert!(err.contains("250ms"), "{err}");
        let err = duration(&flag("fast"), Duration::ZERO, Duration::MAX, "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("write it like 1s"), "{err}");
    }

    #[test]
    fn file_errors_name_the_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spotkit.toml");
        std::fs::write(&path, "[agent]\npoll_intervl = \"1s\"\n").unwrap();
        let err = LoadedFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("poll_intervl"), "{err}");
        assert!(err.contains("spotkit.toml"), "{err}");
    }

    #[test]
    fn policy_entries_are_validated() {
        let ok = reactions(&[flag("freeze=drain"), flag("Preempt=ignore")]).unwrap();
        assert_eq!(ok.freeze, Reaction::Drain);
        assert_eq!(ok.preempt, Reaction::Ignore);
        assert!(
            reactions(&[flag("Hibernate=drain")])
                .unwrap_err()
                .to_string()
                .contains("Hibernate")
        );
        assert!(
            reactions(&[flag("Freeze=panic")])
                .unwrap_err()
                .to_string()
                .contains("drain, hook or ignore")
        );
        assert!(reactions(&[flag("Freeze")]).is_err());
    }

    #[test]
    fn urls_must_be_http() {
        assert!(url(&flag("http://127.0.0.1:1/x")).is_ok());
        assert!(url(&flag("ftp://x")).is_err());
        assert!(url(&flag("not a url")).is_err());
    }
}
