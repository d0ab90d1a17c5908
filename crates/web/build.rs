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
    let installed = web.join("node_modules/.package-lock.json");
    let stale = match (
        std::fs::metadata(&installed).and_then(|m| m.modified()),
        std::fs::metadata(web.join("package-lock.json")).and_then(|m| m.modified()),
    ) {
        (Ok(have), Ok(want)) => have < want,
        _ => true,
    };
    if stale {
        run(
            Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&web),
            "npm ci",
        );
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
