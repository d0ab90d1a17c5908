//! Log output: human-readable lines by default, JSON lines for collectors.
use crate::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("IRIS_LOG_FILTER")
        .or_else(|_| EnvFilter::try_new(&config.level))
        .map_err(|e| anyhow::anyhow!("invalid log level {:?}: {e}", config.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("logging: {e}"))
}
