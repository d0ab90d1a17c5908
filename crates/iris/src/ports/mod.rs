//! `iris ports`: every flow an administrator must allow for the running configuration, as a table, nftables rules or JSON; opens no listener.
mod flows;
mod render;

use crate::config::Config;
pub use flows::Profile;
use std::time::Duration;

/// Output formats of `iris ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Nft,
    Json,
}

/// Prints the flows of `profiles` (all when empty) in `format`. Names are resolved (2 s at
/// most each) unless `resolve` is false, so nftables sets carry today's addresses.
pub async fn run(config: &Config, format: Format, profiles: &[Profile], resolve: bool) -> String {
    let flows: Vec<flows::Flow> = flows::flows(config)
        .into_iter()
        .filter(|f| profiles.is_empty() || profiles.contains(&f.profile))
        .collect();
    let mut resolved = render::Resolved::new();
    if resolve && format != Format::Table {
        let mut names: Vec<&String> = flows.iter().flat_map(|f| &f.names).collect();
        names.sort_unstable();
        names.dedup();
        for name in names.into_iter().filter(|n| !n.starts_with('*')) {
            let lookup = tokio::net::lookup_host((name.as_str(), 0));
            let mut addrs: Vec<std::net::IpAddr> =
                match tokio::time::timeout(Duration::from_secs(2), lookup).await {
                    Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                    _ => Vec::new(),
                };
            addrs.sort_unstable();
            addrs.dedup();
            resolved.insert(name.clone(), addrs);
        }
    }
    // Relay addresses the configuration states outright (1:1 NAT) count as resolved.
    if config.relay.servers.is_empty() && !config.relay.public_ips.is_empty() {
        for relay in flows::relays(config) {
            let entry = resolved.entry(relay.name).or_default();
            entry.extend(config.relay.public_ips.iter().copied());
            entry.sort_unstable();
            entry.dedup();
        }
    }
    match format {
        Format::Table => render::table(&config.domain, &flows),
        Format::Nft => render::nft(&config.domain, &flows, &resolved),
        Format::Json => {
            let value = render::json(&config.domain, &flows, &resolved);
            serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
        }
    }
}
