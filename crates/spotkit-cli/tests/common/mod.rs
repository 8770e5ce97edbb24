//! Test harness: the real `spotkit` binary, as agent and as IMDS emulator, on loopback.
#![allow(dead_code)] // each test file uses a different part of the harness
#![allow(clippy::disallowed_methods)] // tests measure real elapsed time

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub fn spotkit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spotkit"));
    c.env_remove("SPOTKIT_LOG_FORMAT")
        .env("SPOTKIT_LOG", "info,spotkit_agent=debug");
    c
}

pub fn unix_ms_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

pub fn http_date_ms(s: &str) -> i64 {
    let t = httpdate::parse_http_date(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `spotkit imds-emulator` on 127.0.0.1 with an OS-assigned port.
pub struct Emulator {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Emulator {
    pub fn start(vm_name: &str) -> Self {
        let mut child = spotkit()
            .args([
                "imds-emulator",
                "--listen",
                "127.0.0.1:0",
                "--vm-name",
                vm_name,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self { child, url, http }
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "admin {path}: {status} {text}");
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    /// Schedules an event; returns (event id, NotBefore in Unix ms if any).
    pub async fn schedule(&self, request: Value) -> (String, Option<i64>) {
        let v = self
            .admin(reqwest::Method::POST, "/admin/events", Some(request))
            .await;
        let id = v["event_id"].as_str().unwrap().to_string();
        let nb = v["not_before"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(http_date_ms);
        (id, nb)
    }

    pub async fn preempt(&self, vm: &str, notice_seconds: u64) -> (String, Option<i64>) {
        self.schedule(
            json!({"type": "Preempt", "notice_seconds": notice_seconds, "resources": [vm]}),
        )
        .await
    }

    pub async fn approvals(&self) -> Vec<Value> {
        self.admin(reqwest::Method::GET, "/admin/approvals", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn fault(&self, fault: Value) {
        self.admin(reqwest::Method::POST, "/admin/faults", Some(fault))
            .await;
    }

    pub async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/admin/stats", None).await
    }

    pub async fn scheduled_event_gets(&self) -> u64 {
        self.stats().await["scheduled_events_gets"]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn settings(&self, settings: Value) {
        self.admin(reqwest::Method::PUT, "/admin/settings", Some(settings))
            .await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Workloads stop by themselves after about a minute, so a failed test never leaks them.
///
/// A workload script that records "started" and "term" (with a Unix-ms time) in `dir/workload`.
pub fn polite_workload(dir: &Path, exit_code: i32) -> Vec<String> {
    let f = dir.join("workload");
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "trap 'echo term $(date +%s%3N) >> {f}; exit {exit_code}' TERM; echo started >> {f}; i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
            f = f.display()
        ),
    ]
}

/// A workload that ignores SIGTERM (and so do its children, which inherit the ignored disposition).
pub fn stubborn_workload(dir: &Path) -> Vec<String> {
    let f = dir.join("workload");
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "trap '' TERM; echo started >> {f}; i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done",
            f = f.display()
        ),
    ]
}

/// `spotkit agent` with stderr captured in a file.
pub struct Agent {
    child: Child,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Agent {
    pub fn spawn(emulator: &Emulator, args: &[&str], workload: Option<Vec<String>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_in(dir, emulator, args, workload, &[])
    }

    pub fn spawn_in(
        dir: tempfile::TempDir,
        emulator: &Emulator,
        args: &[&str],
        workload: Option<Vec<String>>,
        env: &[(&str, &str)],
    ) -> Self {
        let log = dir.path().join("agent.log");
        let mut cmd = spotkit();
        cmd.arg("agent")
            .args(["--imds-url", &emulator.url, "--poll-interval", "250ms"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(w) = workload {
            cmd.arg("--").args(w);
        }
        let child = cmd.spawn().expect("start the agent");
        Self { child, dir, log }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "agent still running after {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the workload wrote "started" and the emulator has answered a poll.
    pub async fn wait_started(&mut self, emulator: &Emulator) {
        let dir = self.dir.path().to_path_buf();
        eventually(
            "the workload to start",
            Duration::from_secs(10),
            async || {
                std::fs::read_to_string(dir.join("workload"))
                    .ok()
                    .filter(|s| s.contains("started"))
            },
        )
        .await;
        eventually("a first poll", Duration::from_secs(10), async || {
            (emulator.scheduled_event_gets().await > 0).then_some(())
        })
        .await;
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
