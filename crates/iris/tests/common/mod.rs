//! Starts the real `iris` binary on loopback with ephemeral ports and a fresh data directory
//! (SQLite, or a scratch PostgreSQL database when TEST_DATABASE_URL is set and asked for).
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    pub db_url: Option<String>,
    child: Option<Child>,
    pub banner: Vec<String>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_iris")
}

fn unique_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("iris-it-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Which database a test server uses.
#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The databases to run a test against: SQLite always, PostgreSQL when TEST_DATABASE_URL is set.
pub fn databases() -> Vec<Db> {
    let mut dbs = vec![Db::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok() {
        dbs.push(Db::Postgres);
    } else {
        eprintln!("TEST_DATABASE_URL not set: PostgreSQL variant skipped");
    }
    dbs
}

impl Server {
    pub async fn start(db: Db) -> Server {
        Self::start_with(db, &[]).await
    }

    pub async fn start_with(db: Db, extra_env: &[(&str, &str)]) -> Server {
        let data_dir = unique_dir("srv");
        let db_url = match db {
            Db::Sqlite => None,
            Db::Postgres => {
                let base = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
                Some(
                    iris_store::testing::scratch_postgres(&base)
                        .await
                        .expect("scratch database"),
                )
            }
        };
        let mut s = Server {
            base: String::new(),
            data_dir,
            db_url,
            child: None,
            banner: Vec::new(),
        };
        s.spawn(extra_env);
        s
    }

    /// Starts `iris serve` on this data directory and database; waits for the banner.
    fn spawn(&mut self, extra_env: &[(&str, &str)]) {
        let mut cmd = Command::new(bin());
        cmd.arg("serve").arg("--data-dir").arg(&self.data_dir);
        for (k, v) in base_env(self.db_url.as_deref()) {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let (child, base, banner) = spawn_until_banner(cmd, "iris");
        self.base = base;
        self.child = Some(child);
        self.banner = banner;
    }

    /// SIGKILL (`kill -9`): no shutdown, no flush; waits until the process is gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory and database (new ports).
    pub fn restart(&mut self, extra_env: &[(&str, &str)]) {
        self.kill9();
        self.spawn(extra_env);
    }

    /// `wss://…/xmpp-websocket` on the HTTPS listener.
    pub fn xmpp_websocket(&self) -> String {
        format!(
            "{}/xmpp-websocket",
            self.base.replacen("https://", "wss://", 1)
        )
    }

    /// Runs `iris <args>` against the same data directory and database.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(args).arg("--data-dir").arg(&self.data_dir);
        for (k, v) in base_env(self.db_url.as_deref()) {
            cmd.env(k, v);
        }
        cmd.output().expect("run iris")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        None
    }
}

fn base_env(db_url: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "IRIS_HTTP__LISTEN".to_owned(),
            "[\"127.0.0.1:0\"]".to_owned(),
        ),
        ("IRIS_HTTP__PLAIN_LISTEN".to_owned(), "[]".to_owned()),
        (
            "IRIS_RELAY__UDP_LISTEN".to_owned(),
            "[\"127.0.0.1:0\"]".to_owned(),
        ),
        ("IRIS_RELAY__TCP_LISTEN".to_owned(), "[]".to_owned()),
        (
            "IRIS_RELAY__RELAY_IPS".to_owned(),
            "[\"127.0.0.1\"]".to_owned(),
        ),
        (
            "IRIS_XMPP__C2S_LISTEN".to_owned(),
            "[\"127.0.0.1:0\"]".to_owned(),
        ),
        (
            "IRIS_XMPP__DIRECT_TLS_LISTEN".to_owned(),
            "[\"127.0.0.1:0\"]".to_owned(),
        ),
        // Conference media on loopback only.
        ("IRIS_CONFERENCE__BIND".to_owned(), "127.0.0.1".to_owned()),
        // Cheap hashes keep the suite fast; the production cost is tested in services.
        ("IRIS_AUTH__ARGON2_MEMORY_KIB".to_owned(), "1024".to_owned()),
        ("IRIS_AUTH__ARGON2_PASSES".to_owned(), "1".to_owned()),
    ];
    if let Some(url) = db_url {
        env.push(("IRIS_DATABASE__URL".to_owned(), url.to_owned()));
    }
    env
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Debian's Chromium, driven by the browser tests through playwright-core.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The repository root (for `tests/browser`, `target/screenshots`).
pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Why a browser test cannot run here (no Chromium, node or playwright-core), if so.
pub fn browser_skip_reason(browser_dir: &std::path::Path) -> Option<String> {
    if !std::path::Path::new(CHROMIUM).exists() {
        return Some(format!(
            "{CHROMIUM} not installed (apt-get install -y chromium)"
        ));
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        return Some(format!(
            "{} missing (npm ci --prefix tests/browser)",
            browser_dir.join("node_modules").display()
        ));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.map(|o| o.status.success()).unwrap_or(false) {
        return Some("node not installed".to_owned());
    }
    None
}

/// A separate `iris conference` process (a remote conference unit) on loopback.
pub struct ConferenceUnit {
    pub base: String,
    pub data_dir: PathBuf,
    pub banner: Vec<String>,
    child: Option<Child>,
}

impl ConferenceUnit {
    /// Starts `iris conference` with loopback media in single-port mode and `extra_env`
    /// (the control channel settings); waits for its banner.
    pub fn start(extra_env: &[(&str, &str)]) -> ConferenceUnit {
        let data_dir = unique_dir("unit");
        let mut cmd = Command::new(bin());
        cmd.arg("conference").arg("--data-dir").arg(&data_dir);
        for (k, v) in base_env(None) {
            cmd.env(k, v);
        }
        cmd.env("IRIS_CONFERENCE__SINGLE_PORT", "0");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let (child, base, banner) = spawn_until_banner(cmd, "iris conference");
        ConferenceUnit {
            base,
            data_dir,
            banner,
            child: Some(child),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGKILL: the unit vanishes without a goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (a drain) without waiting.
    pub fn sigterm(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for ConferenceUnit {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Spawns `cmd` (an `iris` subcommand), reads its stdout until the banner names the HTTPS
/// address (60 s at most), then keeps draining stdout; returns the child, `https://addr` and
/// the banner lines.
fn spawn_until_banner(mut cmd: Command, what: &str) -> (Child, String, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut banner = Vec::new();
    let mut base = None;
    while base.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{what} printed its banner in time"));
        if let Some(rest) = line.split("(listening on ").nth(1) {
            let addr = rest.trim_end_matches(')').split(',').next().unwrap_or("");
            base = Some(format!("https://{}", addr.trim()));
        }
        banner.push(line);
    }
    std::thread::spawn(move || while rx.recv().is_ok() {});
    (child, base.unwrap_or_default(), banner)
}

/// The password of the users [`add_web_users`] creates.
pub const WEB_PASSWORD: &str = "correct-horse";

/// Creates Ann, Bob and Cat (`…@localhost`, password [`WEB_PASSWORD`]) with the CLI.
pub fn add_web_users(s: &Server) {
    for (login, name) in [
        ("ann@localhost", "Ann Lee"),
        ("bob@localhost", "Bob Stone"),
        ("cat@localhost", "Cat Diaz"),
    ] {
        let out = s.cli(&[
            "user",
            "add",
            login,
            "--password",
            WEB_PASSWORD,
            "--name",
            name,
        ]);
        assert!(
            out.status.success(),
            "iris user add {login}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `tests/browser/<script>` with node's test runner against `s` (killed after
/// `timeout_secs`), screenshots to target/screenshots; panics if it fails.
pub fn run_browser_script(s: &Server, script: &str, timeout_secs: u32) {
    let browser_dir = repo_root().join("tests/browser");
    let shots = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let started = Instant::now();
    let status = Command::new("timeout")
        .args([
            "-k",
            "10",
            &timeout_secs.to_string(),
            "node",
            "--test",
            "--test-reporter=spec",
        ])
        .arg(browser_dir.join(script))
        .current_dir(&browser_dir)
        .env("IRIS_BASE_URL", &s.base)
        .env("IRIS_PASSWORD", WEB_PASSWORD)
        .env("IRIS_SCREENSHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .status()
        .expect("run node");
    println!(
        "{script} finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "tests/browser/{script} failed ({status}); see its output above"
    );
}
