//! `iris netcheck`: turns flags into probe options, prints live progress on stderr and the verdict on stdout; the probes live in `iris-netcheck`.
use crate::cli::NetcheckArgs;
use iris_netcheck::connect::{Proxy, Trust};
use iris_netcheck::probe::Auth;
use iris_netcheck::report::{path_line, probe_line, PathResult, ProbeResult};
use iris_netcheck::{Options, Progress};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

struct Stderr;

impl Progress for Stderr {
    fn probe(&mut self, r: &ProbeResult) {
        eprintln!("{}", probe_line(r));
    }
    fn path(&mut self, r: &PathResult) {
        eprintln!("{}", path_line(r));
    }
}

fn password(args: &NetcheckArgs) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("IRIS_PASSWORD") {
        return Ok(p);
    }
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no password: set IRIS_PASSWORD, --password-file, or run in a terminal");
    }
    eprint!("Password for {}: ", args.user.as_deref().unwrap_or(""));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn run(args: NetcheckArgs) -> anyhow::Result<ExitCode> {
    let usage = |e: String| -> anyhow::Result<ExitCode> {
        eprintln!("error: {e}");
        Ok(ExitCode::from(64))
    };
    let proxy = match args.proxy.as_deref().map(Proxy::parse).transpose() {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let auth = match (&args.user, &args.token) {
        (Some(login), _) => match password(&args) {
            Ok(password) => Auth::Password {
                login: login.clone(),
                password,
            },
            Err(e) => return usage(e.to_string()),
        },
        (None, Some(t)) => Auth::Token(t.clone()),
        (None, None) => Auth::None,
    };
    let trust = match (&args.ca, args.insecure) {
        (Some(ca), _) => Trust::CaFile(ca.clone()),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::WebPki,
    };
    let opts = Options {
        server: args.server.clone(),
        proxy,
        trust,
        auth,
        udp_port: args.udp_port,
        timeout: Duration::from_secs(args.timeout.clamp(1, 30)),
        quick: args.quick,
    };
    eprintln!("Checking {} from this network…", args.server);
    let report = iris_netcheck::run(&opts, &mut Stderr).await;
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.human());
    }
    Ok(ExitCode::from(report.exit_code()))
}
