//! Where events go: stderr and/or rotating files, with a level that a reload can change.
//!
//! Files are written through tracing-appender's non-blocking writer, so a slow disk never
//! holds up a session. It drops lines rather than block when its queue is full; the count is
//! in `natterctl stats` and logged. Its guard lives in [`Logs`] until [`Logs::finish`], so
//! "shutdown complete" reaches the file.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config;
use crate::logfile::{LogFile, Writer};

/// The running logging setup.
#[derive(Default)]
pub struct Logs {
    filter: Option<reload::Handle<EnvFilter, Registry>>,
    /// RUST_LOG was set, and wins over `[log] level`.
    env_override: bool,
    file: Option<Arc<LogFile>>,
    dropped: Option<ErrorCounter>,
    guard: Mutex<Option<WorkerGuard>>,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs").field("file", &self.file).finish()
    }
}

impl Logs {
    /// Installs the global subscriber as `[log]` says. A log directory that is missing or
    /// not writable is an error.
    pub fn init(config: &config::Log) -> anyhow::Result<Logs> {
        let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
        let directive = from_env.as_deref().unwrap_or(&config.level);
        let filter = EnvFilter::try_new(directive)
            .with_context(|| format!("bad log filter {directive:?}"))?;
        let (filter, handle) = reload::Layer::new(filter);
        let stderr = config.stderr.then(|| {
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
        });
        let mut logs = Logs {
            filter: Some(handle),
            env_override: from_env.is_some(),
            ..Logs::default()
        };
        let file_layer = match &config.directory {
            Some(dir) => {
                let file = LogFile::open(dir, &config.prefix, config.rotation, config.max_files)
                    .context("cannot open the log file")?;
                let file = Arc::new(file);
                let (writer, guard) = NonBlockingBuilder::default()
                    .lossy(true)
                    .finish(Writer(file.clone()));
                logs.dropped = Some(writer.error_counter());
                logs.file = Some(file);
                logs.guard = Mutex::new(Some(guard));
                Some(fmt::layer().with_writer(writer).with_ansi(false))
            }
            None => None,
        };
        tracing_subscriber::registry()
            .with(filter)
            .with(stderr)
            .with(file_layer)
            .try_init()
            .context("cannot start logging")?;
        Ok(logs)
    }

    /// Applies a new `[log] level`, unless RUST_LOG overrides it.
    pub fn set_level(&self, level: &str) {
        if self.env_override {
            info!(level, "RUST_LOG is set and keeps overriding [log] level");
            return;
        }
        let Some(handle) = &self.filter else {
            return;
        };
        match EnvFilter::try_new(level) {
            Ok(filter) => {
                // Said before the switch, so it is written whatever the new level.
                info!(level, "log level changing");
                let _ = handle.reload(filter);
            }
            Err(e) => warn!(level, error = %e, "bad log level"),
        }
    }

    /// Reopens the log file by name, after logrotate or an operator moved it.
    pub fn reopen(&self) {
        if let Some(file) = &self.file {
            file.reopen();
            info!(path = %file.current_path().display(), "log file reopened");
        }
    }

    /// Lines the file writer dropped because it could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped
            .as_ref()
            .map_or(0, |c| c.dropped_lines() as u64)
    }

    /// Flushes and closes the file writer; nothing is written to the file after this.
    pub fn finish(&self) {
        drop(
            self.guard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    /// Logs how many lines were dropped whenever that number grows. Runs forever.
    pub async fn watch_dropped(self: Arc<Self>) {
        let mut reported = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let dropped = self.dropped();
            if dropped > reported {
                warn!(dropped, "log writer fell behind; lines were dropped");
                reported = dropped;
            }
        }
    }
}
