//! `spotkit queue`: load and inspect a queue without other tools.

use std::io::{BufRead as _, Read as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use spotkit_cloud::{Clock, Queue, SystemClock};
use spotkit_worker::{PoisonRecord, encode_envelope};

use crate::Failure;
use crate::backends::{open_queue, poison_url};

#[derive(Debug, clap::Subcommand)]
pub enum QueueCommand {
    /// Create the queue (and nothing else) if it does not exist.
    Create {
        /// The queue URL.
        #[arg(long, env = "SPOTKIT_QUEUE")]
        queue: String,
    },
    /// Put messages: the BODY arguments, or --lines FILE (one per line, - for stdin), or --count N
    /// copies of --template with {i} replaced by 0..N.
    Put {
        /// The queue URL.
        #[arg(long, env = "SPOTKIT_QUEUE")]
        queue: String,
        /// Producer idempotency key (wraps the body in a spotkit envelope); with several messages,
        /// {i} is replaced by the message's index.
        #[arg(long)]
        key: Option<String>,
        /// Read bodies from this file, one per line ("-" for stdin).
        #[arg(long)]
        lines: Option<String>,
        /// How many messages from --template.
        #[arg(long, requires = "template")]
        count: Option<u64>,
        /// Body template for --count; {i} becomes the index.
        #[arg(long)]
        template: Option<String>,
        /// Bodies.
        bodies: Vec<String>,
    },
    /// Show up to --max visible messages without leasing them.
    Peek {
        /// The queue URL.
        #[arg(long, env = "SPOTKIT_QUEUE")]
        queue: String,
        /// How many (1-32).
        #[arg(long, default_value_t = 10)]
        max: u32,
    },
    /// Message counts of the queue and its poison queue.
    Stats {
        /// The queue URL.
        #[arg(long, env = "SPOTKIT_QUEUE")]
        queue: String,
        /// The poison queue [default: the queue's name + "-poison"].
        #[arg(long)]
        poison_queue: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn main(cmd: QueueCommand) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    runtime.block_on(run(cmd))
}

async fn run(cmd: QueueCommand) -> Result<u8, Failure> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cmd {
        QueueCommand::Create { queue } => {
            let q = open_queue(&queue, clock).map_err(Failure::usage)?;
            q.create_if_missing().await.map_err(Failure::runtime)?;
            println!("queue ready: {queue}");
        }
        QueueCommand::Put {
            queue,
            key,
            lines,
            count,
            template,
            bodies,
        } => {
            let q = open_queue(&queue, clock).map_err(Failure::usage)?;
            let bodies = collect_bodies(bodies, lines, count, template).map_err(Failure::usage)?;
            q.create_if_missing().await.map_err(Failure::runtime)?;
            for (i, body) in bodies.iter().enumerate() {
                let message = match &key {
                    Some(k) => encode_envelope(&k.replace("{i}", &i.to_string()), body.as_bytes()),
                    None => body.as_bytes().to_vec(),
                };
                q.send(&message, Duration::ZERO)
                    .await
                    .with_context(|| format!("message {i} not sent; the {i} before it were"))
                    .map_err(Failure::runtime)?;
            }
            println!("put {} message(s) on {queue}", bodies.len());
        }
        QueueCommand::Peek { queue, max } => {
            let q = open_queue(&queue, clock).map_err(Failure::usage)?;
            for m in q.peek(max.clamp(1, 32)).await.map_err(Failure::runtime)? {
                let body = String::from_utf8_lossy(&m.body);
                let shown = match serde_json::from_slice::<PoisonRecord>(&m.body) {
                    Ok(p) => format!(
                        "POISON ({}): {}",
                        p.reason,
                        String::from_utf8_lossy(&p.body())
                    ),
                    Err(_) => body.chars().take(200).collect(),
                };
                println!("{}\tdequeued {}\t{shown}", m.message_id, m.dequeue_count);
            }
        }
        QueueCommand::Stats {
            queue,
            poison_queue,
            json,
        } => {
            let q = open_queue(&queue, clock.clone()).map_err(Failure::usage)?;
            let poison = match poison_queue {
                Some(p) => p,
                None => poison_url(&queue).map_err(Failure::usage)?,
            };
            let p = open_queue(&poison, clock).map_err(Failure::usage)?;
            let messages = q.approximate_len().await.map_err(Failure::runtime)?;
            let poisoned = match p.approximate_len().await {
                Ok(n) => n,
                Err(spotkit_cloud::QueueError::QueueNotFound { .. }) => 0,
                Err(e) => return Err(Failure::runtime(e)),
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"messages": messages, "poison_messages": poisoned})
                );
            } else {
                println!("messages {messages}\npoison_messages {poisoned}");
            }
        }
    }
    Ok(0)
}

fn collect_bodies(
    bodies: Vec<String>,
    lines: Option<String>,
    count: Option<u64>,
    template: Option<String>,
) -> anyhow::Result<Vec<String>> {
    let mut out = bodies;
    if let Some(path) = lines {
        let mut text = String::new();
        if path == "-" {
            std::io::stdin().read_to_string(&mut text)?;
        } else {
            let file = std::fs::File::open(&path).with_context(|| format!("--lines {path}"))?;
            for line in std::io::BufReader::new(file).lines() {
                text.push_str(&line?);
                text.push('\n');
            }
        }
        out.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    if let Some(n) = count {
        let template = template.unwrap_or_default();
        out.extend((0..n).map(|i| template.replace("{i}", &i.to_string())));
    }
    if out.is_empty() {
        bail!("no messages given: pass bodies, --lines FILE or --count N --template T");
    }
    Ok(out)
}
