//! Secrets generated on first start and kept in the data directory (mode 0600), so a single
//! node needs no configuration; multi-node deployments set them in the config instead.
use anyhow::Context;
use iris_model::Secret;
use std::path::Path;

/// Returns `configured` if set, else the secret stored in `dir/name`, creating it if absent.
pub fn load_or_create(configured: &Secret, dir: &Path, name: &str) -> anyhow::Result<Secret> {
    if !configured.is_empty() {
        return Ok(configured.clone());
    }
    let path = dir.join("secrets").join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(Secret::new(existing));
        }
    }
    std::fs::create_dir_all(path.parent().unwrap_or(dir))
        .with_context(|| format!("cannot create {}", dir.join("secrets").display()))?;
    let value = iris_services::tokens::random_token();
    write_private(&path, &value).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Secret::new(value))
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(value.as_bytes())
}
