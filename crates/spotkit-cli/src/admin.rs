//! Drives a running `spotkit imds-emulator` through its admin API (crates/spotkit-sim/IMDS-EMULATOR.md).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// An emulator child process and a client for its admin API.
pub struct EmulatorProcess {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl EmulatorProcess {
    /// Starts `spotkit imds-emulator` (this executable) on 127.0.0.1 with an OS-assigned port.
    pub fn start(vm_name: &str) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the spotkit executable")?;
        let mut child = Command::new(exe)
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
            .context("cannot start the IMDS emulator")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("emulator stdout")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("cannot read the emulator's address")?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("the emulator printed {line:?} instead of its address");
        };
        let url = url.to_string();
        let http = reqwest::Client::builder().no_proxy().build()?;
        Ok(Self { child, url, http })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("emulator admin {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("emulator admin {path} answered {status}: {text}");
        }
        Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("emulator admin {path}: {text}"))?
        })
    }

    /// Schedules an event; returns its id.
    pub async fn schedule(
        &self,
        event_type: &str,
        vm: &str,
        notice_seconds: u64,
    ) -> anyhow::Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/admin/events",
                Some(json!({"type": event_type, "notice_seconds": notice_seconds, "resources": [vm]})),
            )
            .await?;
        v["event_id"]
            .as_str()
            .map(str::to_string)
            .context("no event_id in the emulator's answer")
    }

    /// Approvals received so far: `[{event_ids, at_unix_ms, body}]`.
    pub async fn approvals(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .call(reqwest::Method::GET, "/admin/approvals", None)
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// GETs of /metadata/scheduledevents answered so far.
    pub async fn scheduled_event_gets(&self) -> anyhow::Result<u64> {
        let v = self
            .call(reqwest::Method::GET, "/admin/stats", None)
            .await?;
        Ok(v["scheduled_events_gets"].as_u64().unwrap_or(0))
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
