//! `xmpp-loadgen`: XMPP load over WebSocket against any server (Iris, Prosody, ejabberd) —
//! logins/s and memory per idle session, 1:1 chat and MUC fan-out with XEP-0198 acks —
//! printing one `RESULT key=value …` line per scenario. Bounded in count and time.
use anyhow::{bail, Context, Result};
use clap::Parser;
use iris_xmpp_loadgen::{
    attr, connect, connect_features, login_with, text_of, Reader, Sasl, Target, Writer, SM,
};
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(about = "XMPP over WebSocket load generator (bench/xmpp)")]
struct Args {
    /// ws:// or wss:// URL of the XMPP WebSocket endpoint.
    #[arg(long)]
    url: String,
    /// XMPP domain; users are user0..user{N-1}@domain.
    #[arg(long, default_value = "localhost")]
    domain: String,
    #[arg(long, default_value = "bench-password")]
    password: String,
    /// Register the users first with in-band registration (XEP-0077; Prosody, ejabberd).
    #[arg(long)]
    register: bool,
    /// Clients (and users) in the 1:1 and MUC scenarios.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Messages each client sends in the 1:1 scenario.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Clients that send in the MUC scenario (all `clients` are occupants).
    #[arg(long, default_value_t = 5)]
    muc_senders: usize,
    /// Messages each MUC sender sends.
    #[arg(long, default_value_t = 40)]
    muc_messages: usize,
    /// Idle sessions per batch (see `idle`).
    #[arg(long, default_value_t = 200)]
    idle: usize,
    /// Sessions per user in the idle scenario (each batch uses its own users).
    #[arg(long, default_value_t = 4)]
    idle_resources: usize,
    /// Batches of `idle` sessions in the idle scenario.
    #[arg(long, default_value_t = 2)]
    idle_batches: usize,
    /// Seconds to wait after each idle batch before reading the server's memory.
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Messages in flight per client before it waits for the server's ack.
    #[arg(long, default_value_t = 10)]
    window: usize,
    /// Server process id, for its resident memory (VmRSS).
    #[arg(long)]
    server_pid: Option<u32>,
    /// MUC service host (default conference.<domain>).
    #[arg(long)]
    muc_service: Option<String>,
    /// SASL mechanism of every login: scram (SCRAM-SHA-256 if offered, else SCRAM-SHA-1),
    /// scram-sha-256, scram-sha-1 or plain.
    #[arg(long, default_value = "scram")]
    mechanism: Sasl,
    /// Scenarios to run: any of idle,idle-plain,chat,muc (idle-plain: the idle scenario with
    /// PLAIN logins, whatever --mechanism says).
    #[arg(long, default_value = "idle,chat,muc")]
    scenarios: String,
}

fn user(i: usize) -> String {
    format!("user{i}")
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn register(args: &Args, n: usize) -> Result<()> {
    let target = target(args);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(n.div_ceil(8).max(1)) {
        let (chunk, target, pw) = (chunk.to_vec(), target.clone(), args.password.clone());
        tasks.spawn(async move {
            for i in chunk {
                let (mut w, mut r) = connect(&target).await?;
                w.send(&format!(
                    "<iq xmlns='jabber:client' type='set' id='reg'><query xmlns='jabber:iq:register'><username>{}</username><password>{pw}</password></query></iq>",
                    user(i)
                ))
                .await?;
                let el = r.until("id='reg'").await?;
                if el.contains("type='error'") && !el.contains("conflict") {
                    bail!("registering {}: {el}", user(i));
                }
                w.close().await;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

fn target(args: &Args) -> Target {
    Target {
        url: args.url.clone(),
        domain: args.domain.clone(),
    }
}

/// The mechanism `sasl` resolves to on this server (what `login_with` will use).
async fn mechanism_name(args: &Args, sasl: Sasl) -> Result<&'static str> {
    let (mut w, _, features) = connect_features(&target(args)).await?;
    w.close().await;
    Ok(sasl.pick(&features)?.map_or("PLAIN", |h| h.mechanism()))
}

/// Users the idle scenario logs in: `idle_batches` batches of `ceil(idle / idle_resources)`.
fn idle_users(args: &Args) -> usize {
    args.idle_batches.max(1) * args.idle.div_ceil(args.idle_resources.max(1))
}

/// Opens `n` sessions (8 logins at a time) of users `first..first + n / resources`, each
/// sending available presence; returns them open.
async fn open_idle(
    args: &Args,
    sasl: Sasl,
    first: usize,
    tag: &str,
) -> Result<Vec<(Writer, Reader)>> {
    let n = args.idle;
    let users = n.div_ceil(args.idle_resources.max(1)).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(n.div_ceil(8).max(1)) {
        let (chunk, args, tag) = (chunk.to_vec(), args.clone(), tag.to_owned());
        tasks.spawn(async move {
            let mut held = Vec::new();
            for i in chunk {
                let (mut w, r, _) = login_with(
                    &target(&args),
                    &user(first + i % users),
                    &args.password,
                    &format!("{tag}{i}"),
                    true,
                    sasl,
                )
                .await
                .with_context(|| format!("login {tag}{i}"))?;
                w.send("<presence xmlns='jabber:client'/>").await?;
                held.push((w, r));
            }
            Ok::<_, anyhow::Error>(held)
        });
    }
    let mut sessions = Vec::new();
    while let Some(r) = tasks.join_next().await {
        sessions.extend(r??);
    }
    Ok(sessions)
}

/// Idle sessions, measured by the server's RSS as batches are added: after a warm-up (8
/// logins, closed), `idle_batches` batches of `idle` sessions log in one after the other (8
/// at a time, SCRAM or PLAIN, bind, XEP-0198, presence) and stay open; each batch has its
/// own users (`idle_resources` sessions each, so the same presence fan-out per batch), and
/// the RSS is read `settle_secs` after each batch. Reported: the growth per session of each
/// batch (`kib_batches`), `kib_per_idle_session` = total growth over all sessions (what an
/// operator provisions: it includes whatever the server keeps from the login peak), and
/// `kib_marginal` = growth per session after the first batch (without the allocator's or VM's
/// warm-up, but also without memory the first batch freed and later batches reused).
async fn idle(args: &Args, sasl: Sasl, name: &str) -> Result<()> {
    let mechanism = mechanism_name(args, sasl).await?;
    let mut warm = tokio::task::JoinSet::new();
    for i in 0..args.idle.min(8) {
        let args = args.clone();
        warm.spawn(async move {
            let (mut w, _, _) = login_with(
                &target(&args),
                &user(i),
                &args.password,
                &format!("warm{i}"),
                true,
                sasl,
            )
            .await?;
            w.close().await;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = warm.join_next().await {
        r??;
    }
    let settle = Duration::from_secs(args.settle_secs);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let n = args.idle.max(1);
    let batches = args.idle_batches.max(1);
    let users_per_batch = n.div_ceil(args.idle_resources.max(1));
    let mut rss = vec![rss_kib(args.server_pid)];
    let mut sessions = Vec::new();
    let mut login_time = Duration::ZERO;
    for b in 0..batches {
        let started = Instant::now();
        sessions.extend(open_idle(args, sasl, b * users_per_batch, &format!("idle{b}x")).await?);
        login_time += started.elapsed();
        tokio::time::sleep(settle).await;
        rss.push(rss_kib(args.server_pid));
    }
    let per = |from: usize, to: usize| match (rss[from], rss[to]) {
        (Some(a), Some(b)) => format!("{:.1}", (b as f64 - a as f64) / ((to - from) * n) as f64),
        _ => "n/a".into(),
    };
    let steps: Vec<String> = (0..batches).map(|b| per(b, b + 1)).collect();
    let marginal = if batches > 1 {
        per(1, batches)
    } else {
        "n/a".into()
    };
    let readings: Vec<String> = rss.iter().map(|r| r.unwrap_or(0).to_string()).collect();
    println!(
        "RESULT scenario={name} sasl={mechanism} sessions={} per_user={} settle_s={} logins_per_s={:.1} rss_kib={} kib_batches={} kib_marginal={marginal} kib_per_idle_session={}",
        batches * n,
        args.idle_resources,
        args.settle_secs,
        (batches * n) as f64 / login_time.as_secs_f64(),
        readings.join(","),
        steps.join(","),
        per(0, batches),
    );
    for (mut w, _) in sessions {
        w.close().await;
    }
    Ok(())
}

/// One client's share of a messaging scenario.
struct Job {
    writer: Writer,
    reader: Reader,
    /// stanzas to send, in order (each becomes one message, its body stamped with the time)
    to: String,
    kind: &'static str,
    count: usize,
    /// messages this client expects to receive
    expect: usize,
    /// stanzas sent since XEP-0198 was enabled, before the job (they count in `h`)
    base: usize,
}

/// Runs one client: windowed sends with `<r/>` after each burst, answers `<r/>`, records the
/// latency of every bench message received. Returns (latencies µs, acked, received).
async fn run_client(
    mut job: Job,
    window: usize,
    t0: Instant,
    deadline: Instant,
) -> (Vec<u64>, usize, usize) {
    let (mut sent, mut acked, mut inbound) = (0usize, 0usize, 0u32);
    let mut lat = Vec::with_capacity(job.expect);
    loop {
        if sent < job.count && sent - acked < window {
            let burst = (job.count - sent).min(window - (sent - acked));
            let mut items = Vec::with_capacity(burst + 1);
            for _ in 0..burst {
                let us = t0.elapsed().as_micros();
                items.push(format!(
                    "<message xmlns='jabber:client' type='{}' to='{}' id='l{sent}'><body>lg {us}</body></message>",
                    job.kind, job.to
                ));
                sent += 1;
            }
            items.push(format!("<r xmlns='{SM}'/>"));
            if job.writer.send_all(items).await.is_err() {
                break;
            }
        }
        if sent == job.count && acked >= job.count && lat.len() >= job.expect {
            break;
        }
        let el = match tokio::time::timeout_at(deadline.into(), job.reader.next()).await {
            Ok(Some(el)) => el,
            _ => break,
        };
        if el.starts_with("<a ") {
            if let Some(h) = attr(&el, "h").and_then(|h| h.parse::<usize>().ok()) {
                acked = acked.max(h.saturating_sub(job.base));
            }
        } else if el.starts_with("<r ") {
            let _ = job
                .writer
                .send(&format!("<a xmlns='{SM}' h='{inbound}'/>"))
                .await;
        } else if ["<message", "<presence", "<iq"]
            .iter()
            .any(|p| el.starts_with(p))
        {
            inbound = inbound.wrapping_add(1);
            if el.starts_with("<message") && !el.contains("<delay") {
                if let Some(us) = text_of(&el, "body")
                    .and_then(|b| b.strip_prefix("lg "))
                    .and_then(|t| t.parse::<u128>().ok())
                {
                    lat.push((t0.elapsed().as_micros().saturating_sub(us)) as u64);
                }
            }
        }
    }
    job.writer.close().await;
    (lat, acked, sent)
}

async fn run_jobs(name: &str, jobs: Vec<Job>, window: usize, extra: String) -> Result<()> {
    let total_sent: usize = jobs.iter().map(|j| j.count).sum();
    let total_expect: usize = jobs.iter().map(|j| j.expect).sum();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(180);
    let mut set = tokio::task::JoinSet::new();
    for j in jobs {
        set.spawn(run_client(j, window, t0, deadline));
    }
    let (mut lat, mut acked) = (Vec::new(), 0usize);
    while let Some(r) = set.join_next().await {
        let (l, a, _) = r?;
        lat.extend(l);
        acked += a;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    println!(
        "RESULT scenario={name} sent={total_sent} acked={acked} delivered={}/{total_expect} seconds={elapsed:.2} msgs_per_s={:.0} deliveries_per_s={:.0} p50_ms={:.1} p99_ms={:.1}{extra}",
        lat.len(),
        acked as f64 / elapsed,
        lat.len() as f64 / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    );
    Ok(())
}

/// 1:1: client i and i^1 chat; each sends `messages` to the other.
async fn chat(args: &Args) -> Result<()> {
    let n = args.clients & !1;
    let mut jobs = Vec::new();
    for i in 0..n {
        let (writer, reader, _) = login_with(
            &target(args),
            &user(i),
            &args.password,
            "chat",
            true,
            args.mechanism,
        )
        .await?;
        jobs.push(Job {
            writer,
            reader,
            to: format!("{}@{}", user(i ^ 1), args.domain),
            kind: "chat",
            count: args.messages,
            expect: args.messages,
            base: 1,
        });
    }
    for j in jobs.iter_mut() {
        j.writer.send("<presence xmlns='jabber:client'/>").await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    run_jobs("chat", jobs, args.window, format!(" clients={n}")).await
}

/// MUC fan-out: all clients join one room; `muc_senders` of them send.
async fn muc(args: &Args) -> Result<()> {
    let service = args
        .muc_service
        .clone()
        .unwrap_or_else(|| format!("conference.{}", args.domain));
    let room = format!("bench{}@{service}", std::process::id());
    let n = args.clients;
    let mut clients = Vec::new();
    for i in 0..n {
        clients.push(
            login_with(
                &target(args),
                &user(i),
                &args.password,
                "muc",
                true,
                args.mechanism,
            )
            .await?,
        );
    }
    // owner creates the room, accepts the default configuration, makes everyone a member
    {
        let (w, r, _) = &mut clients[0];
        w.send(&format!(
            "<presence xmlns='jabber:client' to='{room}/u0'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ))
        .await?;
        r.until("status code='110'").await?;
        w.send(&format!(
            "<iq xmlns='jabber:client' type='set' to='{room}' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"
        ))
        .await?;
        r.until("id='cfg'").await?;
        let items: String = (1..n)
            .map(|i| {
                format!(
                    "<item affiliation='member' jid='{}@{}'/>",
                    user(i),
                    args.domain
                )
            })
            .collect();
        w.send(&format!(
            "<iq xmlns='jabber:client' type='set' to='{room}' id='aff'><query xmlns='http://jabber.org/protocol/muc#admin'>{items}</query></iq>"
        ))
        .await?;
        let el = r.until("id='aff'").await?;
        if el.contains("type='error'") {
            bail!("setting affiliations: {el}");
        }
    }
    for (i, (w, r, _)) in clients.iter_mut().enumerate().skip(1) {
        w.send(&format!(
            "<presence xmlns='jabber:client' to='{room}/u{i}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
        ))
        .await?;
        r.until("status code='110'").await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let senders = args.muc_senders.min(n);
    let jobs = clients
        .into_iter()
        .enumerate()
        .map(|(i, (writer, reader, _))| Job {
            writer,
            reader,
            to: room.clone(),
            kind: "groupchat",
            count: if i < senders { args.muc_messages } else { 0 },
            expect: senders * args.muc_messages,
            // the join presence; the owner also sent the configuration and affiliation iqs
            base: if i == 0 { 3 } else { 1 },
        })
        .collect();
    run_jobs(
        "muc",
        jobs,
        args.window,
        format!(" occupants={n} senders={senders}"),
    )
    .await
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.register {
        let idle = args
            .scenarios
            .split(',')
            .any(|s| s.trim().starts_with("idle"));
        let n = if idle {
            args.clients.max(idle_users(&args))
        } else {
            args.clients
        };
        register(&args, n).await.context("register")?;
    }
    for s in args.scenarios.split(',') {
        match s.trim() {
            "idle" => idle(&args, args.mechanism, "idle").await.context("idle")?,
            "idle-plain" => idle(&args, Sasl::Plain, "idle-plain")
                .await
                .context("idle-plain")?,
            "chat" => chat(&args).await.context("chat")?,
            "muc" => muc(&args).await.context("muc")?,
            other => bail!("unknown scenario {other}"),
        }
    }
    Ok(())
}
