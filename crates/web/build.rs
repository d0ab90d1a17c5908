//! Builds the web client in `web/` (npm ci once, then `npm run build` into OUT_DIR whenever its
//! sources change) and writes the asset table that `src/lib.rs` embeds. With `IRIS_WEB_DIST`
//! set it embeds that prebuilt directory instead and never runs npm.
use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=IRIS_WEB_DIST");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let dist = match env::var_os("IRIS_WEB_DIST") {
        Some(d) => {
            let d = PathBuf::from(d);
            println!("cargo:rerun-if-changed={}", d.display());
            d
        }
        None => build_with_npm(&out),
    };
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    assert!(
        files.iter().any(|(p, _)| p == "/index.html"),
        "{} holds no index.html: is it a build of web/?",
        dist.display()
    );
    let mut table = String::from("&[\n");
    for (url, file) in &files {
        let _ = writeln!(
            table,
            "    Asset {{ path: {url:?}, mime: {:?}, body: include_bytes!({:?}) }},",
            mime(url),
            file.display().to_string()
        );
    }
    table.push(']');
    std::fs::write(out.join("assets.rs"), table).expect("write assets.rs");
}

fn build_with_npm(out: &Path) -> PathBuf {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let web = web.canonicalize().unwrap_or(web);
    for input in [
        "src",
        "public",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if npm_ci_needed(&web) {
        // Cargo may run this script for two profiles at once: one `npm ci` at a time.
        let _lock = DirLock::acquire(&web.join(".npm-ci.lock"));
        if npm_ci_needed(&web) {
            run(
                Command::new(npm)
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&web),
                "npm ci",
            );
        }
    }
    let dist = out.join("web-dist");
    run(
        Command::new(npm)
            .args(["run", "build", "--", "--emptyOutDir", "--outDir"])
            .arg(&dist)
            .current_dir(&web),
        "npm run build",
    );
    dist
}

/// `node_modules` is missing or older than `package-lock.json`.
fn npm_ci_needed(web: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(web.join("node_modules/.package-lock.json")),
        modified(web.join("package-lock.json")),
    ) {
        (Some(have), Some(want)) => have < want,
        _ => true,
    }
}

/// A directory used as a cross-process mutex (a lock older than 10 minutes is stale).
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: &Path) -> DirLock {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        loop {
            if std::fs::create_dir(path).is_ok() || std::time::Instant::now() > deadline {
                return DirLock(path.to_owned());
            }
            let stale = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 600);
            if stale {
                let _ = std::fs::remove_dir(path);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`{what}` in web/ failed ({s}); see its output above"),
        Err(e) => panic!(
            "cannot run `{what}` to build the web client: {e}. Install Node.js 20+ and npm \
             (e.g. `apt-get install nodejs npm`), or set IRIS_WEB_DIST to a prebuilt web/dist"
        ),
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("cannot read {}", dir.display());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
            files.push((url, path.canonicalize().unwrap_or(path)));
        }
    }
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        _ => "application/octet-stream",
    }
}
